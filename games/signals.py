"""Domain signals: the seam between games and leaderboard.

They are sent inside the writing transaction; receivers must only schedule
work with transaction.on_commit, never broadcast from inside the transaction.
"""

from django.dispatch import Signal

# events: list[GameEvent] appended by the transaction, each with its payload
# rendered and its `game` loaded (games.event_log).
game_events_recorded = Signal()
