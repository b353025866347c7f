"""leaderboard.top: the top-of-the-board form of leaderboard frames."""

from __future__ import annotations

import json

from leaderboard import top
from leaderboard.protocol import encode


def board(count: int) -> dict:
    players = [
        {
            "userId": 100 + index,
            "name": f"Player {index}",
            "totalScore": 3 * (count - index) // 2,
            "correctCount": (count - index) // 2,
            "rank": index + 1 - (index % 2),  # pairs tie: 1, 1, 3, 3, ...
        }
        for index in range(count)
    ]
    return {
        "type": "leaderboard:update",
        "gameId": 7,
        "seq": 12,
        "players": players,
        "revealedCount": 4,
        "categoryCount": 24,
        "incompleteCount": 9,
        "lastRevealed": {"categoryId": 3, "categoryName": "Best", "nominationId": 5, "title": "X"},
        "timestamp": 1_790_000_000_000,
    }


def test_a_large_board_keeps_the_top_rows_and_ranks_everyone():
    full = board(120)
    compact = top.top_payload(full)
    assert compact["players"] == full["players"][: top.TOP_ROWS]
    assert compact["playerCount"] == 120
    assert compact["ranks"] == [
        [p["userId"], p["rank"], p["totalScore"], p["correctCount"]] for p in full["players"]
    ]
    assert compact["ranks"][:4] == [
        [100, 1, 180, 60],
        [101, 1, 178, 59],
        [102, 3, 177, 59],
        [103, 3, 175, 58],
    ]
    rest = {k: v for k, v in compact.items() if k not in ("players", "ranks", "playerCount")}
    assert rest == {k: v for k, v in full.items() if k != "players"}
    assert len(full["players"]) == 120  # the full payload is not modified
    # The size won: the names of all but the top rows stay home.
    thousands = board(2000)
    assert len(encode(top.top_payload(thousands))) < len(encode(thousands)) / 3


def test_a_small_board_keeps_every_row():
    full = board(3)
    compact = top.top_payload(full)
    assert compact["players"] == full["players"]
    assert [row[0] for row in compact["ranks"]] == [100, 101, 102]
    assert compact["playerCount"] == 3


def test_other_frames_and_top_forms_pass_unchanged():
    status = {"type": "game:status", "gameId": 7, "seq": 3, "status": "LIVE", "picksLockAt": None}
    assert top.top_payload(status) is status
    compact = top.top_payload(board(60))
    assert top.top_payload(compact) is compact


def test_top_text_matches_the_payload_form_and_leaves_other_texts_alone():
    full_text = encode(board(80))
    assert json.loads(top.top_text(full_text)) == top.top_payload(board(80))
    assert top.top_text(full_text) is top.top_text(full_text)  # made once
    # A name that merely contains the type is not a leaderboard frame.
    joined = encode(
        {
            "type": "participant:joined",
            "gameId": 7,
            "seq": 4,
            "userId": 9,
            "name": "leaderboard:update",
            "participantCount": 3,
        }
    )
    assert top.top_text(joined) is joined
