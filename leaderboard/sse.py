"""Server-Sent Events streams: a second kind of hub follower, beside the
socket (docs/protocol.md, "Server-Sent Events").

A stream follows one game for clients that cannot hold a WebSocket. It joins
through the same sequence as a socket's `join` (leaderboard.joining: the
participant check, the follow, the snapshot, the hold-back), filters events
by seq as the socket does, and so gets the same delivery guarantee from the
same per-process hub, recovery included. It only writes: nothing is read
from the client after its request.

One encode per event: the hub hands every follower the same message, whose
frame is already JSON text. The first stream to get it builds the SSE bytes
(`id:`/`event:`/`data:` lines) and keeps them on the message; every other
stream of the process writes those bytes.

A stream's writes wait in a queue of its own, drained by the response body.
A client that stops reading fills it, and at `ENVELOPE_SSE_MAX_QUEUED`
frames the stream is dropped (EventSource reconnects with Last-Event-ID and
resumes). Keep-alive comments come from one timer per process, not one per
stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import weakref
from collections.abc import AsyncIterator
from typing import Any

from channels.consumer import get_handler_name
from django.conf import settings

from leaderboard import joining
from leaderboard.fanout import Hub
from leaderboard.protocol import encode, error_frame

logger = logging.getLogger(__name__)

# Sent once per stream: a comment that makes some proxies flush at once, and
# EventSource's reconnection delay, spread so a restart's clients do not all
# come back in the same instant.
RETRY_MIN_MS = 1000
RETRY_MAX_MS = 3000
KEEPALIVE = b": keepalive\n\n"
# How long a stream that was joined may wait for its response to start
# reading it; a client gone in between never starts it (see `SseStream.opened`).
START_GRACE_SECONDS = 30.0

# Frames are compact JSON objects whose first key is their type, or whose
# first key is `seq` (a frame read back from PostgreSQL's jsonb, which orders
# keys by length); anything else is parsed to find it.
_TYPE = re.compile(r'\{(?:"seq":[0-9]+,)?"type":"([^"\\]+)"')


def frame_type(text: str) -> str:
    match = _TYPE.match(text)
    if match is not None:
        return match.group(1)
    return str(json.loads(text).get("type", "message"))


def sse_bytes(text: str, *, event: str, seq: int | None) -> bytes:
    """One SSE event: `id: <seq>` (only for frames with a seq), `event:` the
    frame's type, `data:` the frame's JSON text."""
    head = f"id: {seq}\nevent: {event}\n" if seq is not None else f"event: {event}\n"
    # Compact JSON holds no line break (they are escaped inside strings); a
    # text that did would need one `data:` line per line.
    if "\n" in text or "\r" in text:
        data = "".join(f"data: {line}\n" for line in re.split(r"\r\n|\r|\n", text))
    else:
        data = f"data: {text}\n"
    return f"{head}{data}\n".encode()


def _shared_bytes(message: dict[str, Any], *, seq: int | None) -> bytes:
    """The SSE bytes of a hub message, made by the first stream that writes
    it and shared by the others (the message is the same dict for all)."""
    chunk = message.get("sse")
    if chunk is None:
        text = message["text"]
        chunk = message["sse"] = sse_bytes(text, event=frame_type(text), seq=seq)
    return chunk


def _release_request_thread() -> None:
    """Let the request's worker thread go for as long as the stream lasts.

    Django runs each ASGI request in a `ThreadSensitiveContext`, and its
    middleware's sync steps on a thread made for that context, kept until
    the request ends. For a stream that is hours, idle: 300 open streams
    held 300 such threads (312 threads in the process, 12 with this). The
    body starts after every middleware step; a later sync call (Django's
    `response.close()`) simply makes a new thread, which the context's exit
    shuts down as usual. asgiref's attributes are looked up defensively: on a
    version without them the thread is merely kept."""
    from asgiref.sync import SyncToAsync

    contexts = getattr(SyncToAsync, "thread_sensitive_context", None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    context = contexts.get(None) if contexts is not None else None
    if context is None or executors is None or getattr(context, "_executor", None) is not None:
        return  # no per-request thread, or one its caller owns
    executor = executors.pop(context, None)
    if executor is not None:
        executor.shutdown(wait=False)


class Streams:
    """The streams of one hub (one process): per-user counts for the cap, and
    the keep-alive timer."""

    def __init__(self, hub: Hub) -> None:
        self.streams: set[SseStream] = set()
        self.per_user: dict[int, int] = {}
        hub.every(keepalive_seconds(), self.keepalive)

    def reserve(self, user_id: int) -> bool:
        """Count a new stream of the user; False when they are at the cap."""
        count = self.per_user.get(user_id, 0)
        if count >= streams_per_user():
            return False
        self.per_user[user_id] = count + 1
        return True

    def release(self, user_id: int) -> None:
        count = self.per_user.get(user_id, 0) - 1
        if count > 0:
            self.per_user[user_id] = count
        else:
            self.per_user.pop(user_id, None)

    async def keepalive(self) -> None:
        for stream in list(self.streams):
            stream.write(KEEPALIVE)


_streams: weakref.WeakKeyDictionary[Hub, Streams] = weakref.WeakKeyDictionary()


def streams_of(hub: Hub) -> Streams:
    streams = _streams.get(hub)
    if streams is None:
        streams = _streams[hub] = Streams(hub)
    return streams


def keepalive_seconds() -> float:
    return float(settings.ENVELOPE_SSE_KEEPALIVE_SECONDS)


def streams_per_user() -> int:
    return int(settings.ENVELOPE_SSE_STREAMS_PER_USER)


def max_queued() -> int:
    return int(settings.ENVELOPE_SSE_MAX_QUEUED)


class SseStream:
    """One SSE response following one game: a hub `Follower` and, for the
    join sequence, a `JoiningSocket`."""

    # Read by the join sequence (leaderboard.joining.JoiningSocket).
    top_games: frozenset[int] = frozenset()

    def __init__(self, hub: Hub, *, user_id: int, name: str, auth_at: float) -> None:
        self.hub = hub
        self.user_id: int | None = user_id
        self.name = name
        self.auth_at = auth_at
        self.socket_id = hub.new_socket_id()
        # game id → the last seq written to this stream (absent while it joins)
        self.games: dict[int, int] = {}
        # game id → hub messages held back while the join is answered
        self.joining: dict[int, list[dict[str, Any]]] = {}
        self.closed = False
        self._chunks: list[bytes] = []
        self._wake = asyncio.Event()
        self._ending = False
        self._started = False
        self._left = False
        self._leaving: asyncio.Task[None] | None = None
        self._registry = streams_of(hub)

    # --- writing ------------------------------------------------------------------

    def write(self, chunk: bytes) -> None:
        """Queue bytes for the client; drops the stream when it stopped reading."""
        if self.closed:
            return
        if len(self._chunks) >= max_queued():
            # What waits is let go too: the client resumes from the last id it read.
            logger.warning("SSE stream %s dropped: its client stopped reading", self.socket_id)
            self._chunks = []
            self.end()
            return
        self._chunks.append(chunk)
        self._wake.set()

    def end(self, last: bytes | None = None) -> None:
        """Write `last` (if any) and end the response; the stream stops
        following its game now. EventSource reconnects with Last-Event-ID."""
        if self.closed:
            return
        if last is not None:
            self._chunks.append(last)
        self.closed = self._ending = True
        self._wake.set()
        self._leaving = asyncio.get_running_loop().create_task(self.leave())

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        """The join sequence's writes: `joined`, then the replay. Not counted
        against the queue's bound: they are written before the response starts."""
        assert text_data is not None
        frame = json.loads(text_data)
        seq = frame.get("seq")
        self._chunks.append(
            sse_bytes(text_data, event=frame["type"], seq=seq if isinstance(seq, int) else None)
        )
        self._wake.set()

    def body(self) -> AsyncIterator[bytes]:
        """The response body; closing it (the client left) leaves the game."""
        return self._body()

    async def _body(self) -> AsyncIterator[bytes]:
        self._started = True
        _release_request_thread()
        try:
            yield f": stream\nretry: {random.randint(RETRY_MIN_MS, RETRY_MAX_MS)}\n\n".encode()
            while True:
                if not self._chunks:
                    if self._ending:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                chunks, self._chunks = self._chunks, []
                # One write for what piled up since the last one.
                yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
        finally:
            await asyncio.shield(self.leave())

    def opened(self) -> None:
        """The join succeeded and the response is on its way. If the client
        left before the response started, Django never opens the body, whose
        `finally` would leave the game: leave after a grace period instead."""
        self._registry.streams.add(self)
        asyncio.get_running_loop().call_later(START_GRACE_SECONDS, self._abandon_unstarted)

    def _abandon_unstarted(self) -> None:
        if not self._started and not self._left:
            self.closed = True
            self._leaving = asyncio.get_running_loop().create_task(self.leave())

    async def leave(self) -> None:
        """Stop following: the game (hub and presence), the user, the cap.
        Never raises; runs once."""
        if self._left:
            return
        self._left = True
        self.closed = True
        self._registry.streams.discard(self)
        for game_id in list(self.games):
            await joining.leave_game(self, game_id)
        if self.user_id is not None:
            self.hub.unfollow_user(self.user_id, self)
            self._registry.release(self.user_id)

    # --- the hub's messages (handlers by Channels' naming of their type) -----------

    async def dispatch(self, message: dict[str, Any]) -> None:
        """A held-back message, handed over after the join (as the socket's)."""
        await getattr(self, get_handler_name(message))(message)

    async def game_event(self, message: dict[str, Any]) -> None:
        """`game.event`: in seq order, as a socket's (joining.take_in_order)."""
        if self.closed or not joining.take_in_order(self, message):
            return
        game_id, seq = message["game_id"], message["seq"]
        if message.get("removed") == self.user_id:
            # As on a socket: the removed user gets `game:removed` instead of
            # the event, and the stream ends (a reconnect is NOT_PARTICIPANT).
            removed = encode({"type": "game:removed", "gameId": game_id})
            self.end(sse_bytes(removed, event="game:removed", seq=None))
            return
        self.write(_shared_bytes(message, seq=seq))

    async def game_broadcast(self, message: dict[str, Any]) -> None:
        """`game.broadcast`: presence diffs and reactions, without an id."""
        if self.closed or joining.hold_back(self, message):
            return
        if message["game_id"] in self.games:
            self.write(_shared_bytes(message, seq=None))

    async def user_signed_out(self, message: dict[str, Any]) -> None:
        frame = error_frame("AUTH_REQUIRED", "You signed out.")
        self.end(sse_bytes(encode(frame), event="leaderboard:error", seq=None))

    async def restart_notice(self) -> None:
        """The process is shutting down: end the response, so EventSource
        reconnects (to another process) and resumes with Last-Event-ID."""
        self.end()
