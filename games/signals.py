"""Domain signals: the seam between games and leaderboard.

They are sent inside the writing transaction; receivers must only schedule
work with transaction.on_commit, never broadcast from inside the transaction.
"""

from django.dispatch import Signal

# event_ids: list[int] of GameEvent rows appended by the transaction.
game_events_recorded = Signal()
# game_id: int, user_id: int — the user was removed from the game.
participant_removed = Signal()
