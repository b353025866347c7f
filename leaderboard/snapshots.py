"""What a `join` is answered with: the `joined` snapshot (the game at its
current seq, its board rendered by games.standings.game_board and shared by
every socket joining at that seq) and the stored events that follow a
client's `lastSeq`, to replay after it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from games.formatting import iso_utc
from games.models import PICKABLE_STATUSES, Game, GameEvent
from games.standings import game_board
from leaderboard.player_names import online_text
from leaderboard.protocol import encode
from leaderboard.top import top_text


def events_after(*, game_id: int, last_seq: int, current_seq: int) -> list[dict[str, Any]] | None:
    """Every event of the game after `last_seq`, or None when some were pruned
    (or `last_seq` is from the future): the client must take the snapshot."""
    if last_seq > current_seq or last_seq < 0:
        return None
    payloads = list(
        GameEvent.objects.filter(game_id=game_id, seq__gt=last_seq, seq__lte=current_seq)
        .order_by("seq")
        .values_list("payload", flat=True)
    )
    # A payload is stored with its event; only rows written by versions that
    # rendered leaderboard frames after commit can lack one.
    if len(payloads) != current_seq - last_seq or None in payloads:
        return None
    return payloads


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A `joined` frame whose large parts (the leaderboard, shared by every
    socket at this seq, and the online list) arrive already encoded."""

    frame: dict[str, Any]  # every field of `joined` but `leaderboard` and `online`
    leaderboard_text: str
    online_text: str
    replay: list[dict[str, Any]]

    @property
    def seq(self) -> int:
        return self.frame["seq"]

    def text(self, ref: str | None = None, *, top: bool = False) -> str:
        """This socket's `joined` text; `top`: the leaderboard in its top form."""
        frame = {**self.frame, "ref": ref} if ref is not None else self.frame
        head = encode(frame)
        leaderboard = top_text(self.leaderboard_text) if top else self.leaderboard_text
        # Splice the encoded parts into this socket's frame.
        return f'{head[:-1]},"leaderboard":{leaderboard},"online":{self.online_text}}}'


@dataclass(frozen=True, slots=True)
class _Board:
    seq: int
    created_at: datetime
    text: str  # the encoded leaderboard:update at this seq
    participant_count: int
    made_at: float


# Per process, per game: a burst of joins (thousands of sockets after a
# restart) computes and encodes a game's standings once per seq, not once per
# socket. Joins and removals bump the seq, so the participant count rides along.
_boards: dict[int, _Board] = {}
# While picks are open, standings change without a seq (picks send no event).
OPEN_BOARD_SECONDS = 2.0
clock = time.monotonic  # tests replace it


def _board(game: Game) -> tuple[Game, _Board]:
    """The cached board of the game's seq, else a fresh one (with the game
    as read for it, which may be newer than `game`)."""
    cached = _boards.get(game.pk)
    # created_at guards against a reused id (test databases are flushed).
    if (
        cached is not None
        and (cached.seq, cached.created_at) == (game.seq, game.created_at)
        and (game.status not in PICKABLE_STATUSES or clock() - cached.made_at < OPEN_BOARD_SECONDS)
    ):
        return game, cached
    board = game_board(game_id=game.pk)
    game = board.game
    cached = _boards[game.pk] = _Board(
        seq=game.seq,
        created_at=game.created_at,
        text=encode(board.frame),
        participant_count=board.participant_count,
        made_at=clock(),
    )
    return game, cached


def join_snapshot(
    *, game_id: int, last_seq: int | None, online_user_ids: list[int], online_count: int
) -> Snapshot:
    """The `joined` frame at the game's current seq, and the events to replay
    after it (empty unless `last_seq` was given and all its successors are kept).

    Raises Game.DoesNotExist if the game vanished since the participant check.
    """
    return _snapshot_of(Game.objects.get(pk=game_id), last_seq, online_user_ids, online_count)


# A request for `join_snapshots`: (game id, last seq, the online users to
# list, how many are online).
SnapshotRequest = tuple[int, "int | None", list[int], int]


def join_snapshots(requests: list[SnapshotRequest]) -> list[Snapshot | Exception]:
    """`join_snapshot` of many joins: one read of their games' rows, and the
    `online` text encoded once per game and list of users, whatever the
    number of sockets joining with them. Each answer is a Snapshot or the
    Game.DoesNotExist to raise in that join."""
    games = Game.objects.in_bulk({game_id for game_id, *_ in requests})
    online_texts: dict[tuple[int, tuple[int, ...]], str] = {}
    answers: list[Snapshot | Exception] = []
    for game_id, last_seq, online_user_ids, online_count in requests:
        game = games.get(game_id)
        if game is None:
            answers.append(Game.DoesNotExist(f"game {game_id} vanished"))
            continue
        key = (game_id, tuple(online_user_ids))
        text = online_texts.get(key)
        if text is None:
            text = online_texts[key] = online_text(game_id=game_id, user_ids=online_user_ids)
        answers.append(_snapshot_of(game, last_seq, online_user_ids, online_count, online=text))
    return answers


def _snapshot_of(
    game: Game,
    last_seq: int | None,
    online_user_ids: list[int],
    online_count: int,
    *,
    online: str | None = None,
) -> Snapshot:
    game, board = _board(game)
    replay = None
    if last_seq is not None:
        replay = events_after(game_id=game.pk, last_seq=last_seq, current_seq=game.seq)
    frame = {
        "type": "joined",
        "gameId": game.pk,
        "seq": game.seq,
        "recovered": replay is not None,
        "game": {
            "status": game.status,
            "picksLockAt": iso_utc(game.picks_lock_at),
            "completedAt": iso_utc(game.completed_at),
            "participantCount": board.participant_count,
        },
        "onlineCount": online_count,
    }
    return Snapshot(
        frame=frame,
        leaderboard_text=board.text,
        online_text=(
            online if online is not None else online_text(game_id=game.pk, user_ids=online_user_ids)
        ),
        replay=replay or [],
    )
