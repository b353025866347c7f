"""Domain signals: the seam between games and leaderboard.

They are sent inside the writing transaction; receivers must only schedule
work with transaction.on_commit, never broadcast from inside the transaction.
"""

from django.dispatch import Signal

# events: list[games.event_log.RecordedEvent] the transaction appended, each
# with its frame rendered and encoded.
game_events_recorded = Signal()
