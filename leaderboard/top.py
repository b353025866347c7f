"""The `top` board: a leaderboard frame for games of thousands of players.

A socket that joins with `board: "top"` gets every leaderboard-shaped payload
of that game (`joined.leaderboard`, `leaderboard:update`) in this form:

- `players`: the first TOP_ROWS rows of the board, as in the full frame;
- `ranks`: `[userId, rank, totalScore, correctCount]` for every ranked
  player, in board order, so each client finds its own row without names;
- `playerCount`: how many players are ranked.

Every other field is the full frame's. It stays one text per event, shared
by every socket that asked for it (no per-socket row).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from leaderboard.protocol import encode

TOP_ROWS = 50
LEADERBOARD_UPDATE = "leaderboard:update"


def top_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The top form of a leaderboard payload (a `leaderboard:update` frame or
    `joined.leaderboard`); any other frame unchanged."""
    if payload.get("type") != LEADERBOARD_UPDATE or "ranks" in payload:
        return payload
    players = payload["players"]
    return {
        **payload,
        "players": players[:TOP_ROWS],
        "ranks": [
            [row["userId"], row["rank"], row["totalScore"], row["correctCount"]] for row in players
        ],
        "playerCount": len(players),
    }


# One event's text is shared by every socket of a process: the top form is
# made once per text. A few entries cover the events in flight and the
# current board of the games being joined.
@lru_cache(maxsize=16)
def top_text(text: str) -> str:
    """The top form of an encoded frame; any other frame's text unchanged."""
    if LEADERBOARD_UPDATE not in text:  # cheap test before parsing
        return text
    payload = json.loads(text)
    compact = top_payload(payload)
    return text if compact is payload else encode(compact)
