"""Inbound WebSocket frames (docs/protocol.md): parsing and shape validation.

Pure functions, no I/O: the consumer hands over the raw text and gets back a
typed message or a `ProtocolError` carrying the contract's error code. Checks
run in a fixed order so the same bad frame always gets the same code:
JSON object → `ref` → `type` → per-type fields.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from games.formatting import json_text

MAX_FRAME_BYTES = 4096
# Largest id PostgreSQL's bigint holds: anything above can name no game, and
# must not reach the database (it would overflow the query parameter).
MAX_ID = 2**63 - 1

GAME_TYPES = frozenset({"join", "leave", "reaction:send"})
TYPES = GAME_TYPES | {"ping"}
# `join`'s optional `board`: the contract's full leaderboard frames, or the
# top of the board plus a rank table (leaderboard.top) for very large games.
BOARDS = ("full", "top")


class ProtocolError(Exception):
    """A frame the server refuses; the socket stays open."""

    def __init__(
        self, code: str, message: str, *, ref: str | None = None, game_id: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.game_id = game_id


@dataclass(frozen=True, slots=True)
class Inbound:
    type: str
    ref: str | None = None
    game_id: int | None = None
    last_seq: int | None = None
    board: str = "full"
    emoji: str | None = None
    # ping: `t` is echoed as given, any JSON value; `has_t` tells null from absent.
    t: Any = None
    has_t: bool = False


# An outbound frame as compact JSON text (encoded once, sent to many).
encode = json_text

# "Any JSON text is valid input": `"\ud800"` is valid JSON, and json.loads
# turns it into a lone surrogate, a code point UTF-8 cannot encode. Echoed
# raw (encode keeps non-ASCII as is), it made daphne's UTF-8 encode of the
# reply raise: the socket closed 1011 and skipped its disconnect, so the user
# stayed online. Lone surrogates are the only such code points a frame can
# bring (the socket's own text was valid UTF-8), and they can only sit inside
# JSON strings, where `\uXXXX` is the same code point: escaping them gives
# valid, encodable JSON text that parses back to the same values.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def wire_text(text: str) -> str:
    """JSON text `text`, encodable as UTF-8: each lone surrogate written as its
    `\\uXXXX` escape. Every other text is returned as it is (the same object):
    an ASCII text at once (`isascii` reads a flag), any other after one scan."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(_escaped, text)


def encode_reply(frame: dict[str, Any]) -> str:
    """A reply's text: it may echo values of the client's frame (`ref`, `t`)."""
    return wire_text(encode(frame))


def error_frame(
    code: str, message: str, *, ref: str | None = None, game_id: int | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "leaderboard:error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    if game_id is not None:
        frame["gameId"] = game_id
    return frame


def is_int(value: Any) -> bool:
    # bool is a subclass of int in Python, but `true` is not an id.
    return isinstance(value, int) and not isinstance(value, bool)


def _reject_constant(name: str) -> Any:
    # NaN / Infinity are not JSON: echoing them back would send invalid JSON.
    raise ValueError(f"{name} is not valid JSON")


def parse_frame(text: str) -> Inbound:
    """Validate one text frame. Precondition: its size was already checked.

    Any JSON text is valid input: strings may hold lone surrogates (from
    `\\ud800` escapes), anywhere. Nothing here encodes them; replies that
    echo them go out through `encode_reply`."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ProtocolError("INVALID_MESSAGE", "The frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("INVALID_MESSAGE", "A frame must be a JSON object.")

    ref = data.get("ref")
    if ref is not None and not isinstance(ref, str):
        raise ProtocolError("INVALID_MESSAGE", "ref must be a string.")
    type_ = data.get("type")
    if not isinstance(type_, str):
        raise ProtocolError("INVALID_MESSAGE", "type is required and must be a string.", ref=ref)
    if type_ not in TYPES:
        raise ProtocolError("UNKNOWN_TYPE", f"Unknown message type {type_[:40]!r}.", ref=ref)
    if type_ == "ping":
        return Inbound(type=type_, ref=ref, t=data.get("t"), has_t="t" in data)

    if "gameId" not in data or data["gameId"] is None:
        raise ProtocolError("GAME_ID_REQUIRED", "gameId is required.", ref=ref)
    game_id = data["gameId"]
    if not is_int(game_id):
        raise ProtocolError("INVALID_MESSAGE", "gameId must be an integer.", ref=ref)

    last_seq = data.get("lastSeq")
    emoji = data.get("emoji")
    if type_ == "join" and last_seq is not None and not (is_int(last_seq) and last_seq >= 0):
        raise ProtocolError(
            "INVALID_MESSAGE", "lastSeq must be an integer ≥ 0.", ref=ref, game_id=game_id
        )
    board = data.get("board")
    board = "full" if board is None else board
    if type_ == "join" and board not in BOARDS:
        raise ProtocolError(
            "INVALID_MESSAGE", 'board must be "full" or "top".', ref=ref, game_id=game_id
        )
    if type_ == "reaction:send":
        if not isinstance(emoji, str):
            raise ProtocolError(
                "INVALID_MESSAGE",
                "emoji is required and must be a string.",
                ref=ref,
                game_id=game_id,
            )
        if emoji not in settings.ENVELOPE_REACTIONS:
            raise ProtocolError(
                "INVALID_EMOJI", "That reaction is not allowed.", ref=ref, game_id=game_id
            )
    return Inbound(
        type=type_,
        ref=ref,
        game_id=game_id,
        last_seq=last_seq if type_ == "join" else None,
        board=board if type_ == "join" else "full",
        emoji=emoji if type_ == "reaction:send" else None,
    )


# --- per-socket rate limits ---------------------------------------------------


class TokenBucket:
    """`capacity` tokens, refilled at `rate` per second on the given clock."""

    # Two per socket: slots keep thousands of them small.
    __slots__ = ("capacity", "clock", "rate", "tokens", "updated")

    def __init__(self, *, capacity: float, rate: float, clock: Callable[[], float]) -> None:
        self.capacity = capacity
        self.rate = rate
        self.clock = clock
        self.tokens = capacity
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class FloodGuard:
    """Counts refusals in a sliding window: a client that keeps sending after
    RATE_LIMITED is not a client we can serve, so the socket closes (4429)."""

    __slots__ = ("clock", "hits", "limit", "window")

    def __init__(self, *, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        # Made on the first refusal: most sockets never get one.
        self.hits: deque[float] | None = None

    def hit(self) -> bool:
        """Record a refusal; True once `limit` refusals fell within `window` seconds."""
        now = self.clock()
        if self.hits is None:
            self.hits = deque()
        self.hits.append(now)
        while self.hits and self.hits[0] <= now - self.window:
            self.hits.popleft()
        return len(self.hits) >= self.limit
