"""The contract's ranking rules (docs/api.md, Scoring) as a pure function."""

from __future__ import annotations

from typing import NamedTuple

# Named tuples rather than frozen dataclasses: a render builds two per player,
# a reveal renders every board of its ceremony, and a frozen dataclass's
# __init__ pays one object.__setattr__ per field (figures in bench/README.md,
# "Figures moved out of the code").


class PlayerScore(NamedTuple):
    user_id: int
    name: str
    total_score: int
    correct_count: int


class RankedPlayer(NamedTuple):
    user_id: int
    name: str
    total_score: int
    correct_count: int
    rank: int

    def as_json(self) -> dict[str, int | str]:
        return {
            "userId": self.user_id,
            "name": self.name,
            "totalScore": self.total_score,
            "correctCount": self.correct_count,
            "rank": self.rank,
        }


def sort_key(player: PlayerScore) -> tuple[int, int, str, int]:
    return (-player.total_score, -player.correct_count, player.name.casefold(), player.user_id)


def rank_players(players: list[PlayerScore]) -> list[RankedPlayer]:
    """Order by score desc, correct desc, name (case-insensitive), user id; equal
    (score, correct) share a rank and the next rank skips (1, 1, 3)."""
    ordered = sorted(players, key=sort_key)
    ranked: list[RankedPlayer] = []
    previous: tuple[int, int] | None = None
    rank = 0
    for position, player in enumerate(ordered, start=1):
        key = (player.total_score, player.correct_count)
        if key != previous:
            rank = position
            previous = key
        ranked.append(RankedPlayer(*player, rank))
    return ranked
