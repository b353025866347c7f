"""`GET /api/games/{id}/events` (docs/api.md, docs/protocol.md "Server-Sent
Events") against real daphne processes, read by a real streaming HTTP client
(asyncio sockets, chunked transfer decoded here): refusals, the snapshot
first, live events with ids in seq order, resume, keep-alive, the per-user
cap, presence, sign-out and removal, and delivery when the fast path is lost.
The bounded queue and the shared bytes are checked on the stream object."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import require_live_stack_services, require_service
from tests.e2e.conftest import Party, Player, http, joined, make_party, recv_until
from tests.e2e.fault_watch import reveal, reveal_without_redis
from tests.faults import PrivateRedis, require_redis_server
from tests.liveserver import LiveStack, Server

# Generous on a loaded machine; the recovery check runs every 2 s.
WAIT = 15.0
KEEPALIVE_SECONDS = 0.5
STREAMS_PER_USER = 3


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    """Two daphne processes sharing PostgreSQL and Redis, with a short
    keep-alive and a small cap so both can be seen."""
    require_live_stack_services()
    extra = {
        "ENVELOPE_SSE_KEEPALIVE_SECONDS": str(KEEPALIVE_SECONDS),
        "ENVELOPE_SSE_STREAMS_PER_USER": str(STREAMS_PER_USER),
    }
    with LiveStack(processes=2, extra_env=extra) as live:
        yield live


# --- a streaming HTTP client ----------------------------------------------------------


@dataclass
class Event:
    event: str
    data: str
    id: str | None

    @property
    def frame(self) -> dict[str, Any]:
        return json.loads(self.data)


@dataclass
class Stream:
    """One GET on a raw socket: the status and headers, then the body read
    as it arrives (chunked transfer decoded), parsed as SSE."""

    status: int
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    ended: bool = False
    complete: bool = False  # ended with chunked encoding's last chunk, not a reset
    _text: str = ""
    _chunk_left: int = 0

    async def _more(self, wait: float) -> bool:
        """Append the next piece of the body to the text; False at its end."""
        if self.headers.get("transfer-encoding") != "chunked":
            if self.ended:
                return False
            # An error: its declared length (the connection stays open).
            length = int(self.headers.get("content-length", "0"))
            self._text += (await asyncio.wait_for(self.reader.readexactly(length), wait)).decode()
            self.ended = True
            return True
        if self._chunk_left == 0:
            size_line = await asyncio.wait_for(self.reader.readline(), wait)
            if not size_line:
                return False
            self._chunk_left = int(size_line.split(b";")[0].strip(), 16)
            if self._chunk_left == 0:  # the last chunk: the response ended properly
                await asyncio.wait_for(self.reader.readline(), wait)
                self.complete = True
                return False
        data = await asyncio.wait_for(self.reader.read(self._chunk_left), wait)
        if not data:
            return False
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            await asyncio.wait_for(self.reader.readexactly(2), wait)  # the chunk's CRLF
        self._text += data.decode()
        return True

    async def next_event(self, wait: float = WAIT) -> Event | None:
        """The next event (comments are collected on the way); None when the
        response ended."""
        deadline = time.monotonic() + wait
        while True:
            while "\n\n" in self._text:
                block, self._text = self._text.split("\n\n", 1)
                event = self._parse(block)
                if event is not None:
                    return event
            if self.ended:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no SSE event in time")
            if not await self._more(left):
                self.ended = True

    def _parse(self, block: str) -> Event | None:
        name, data, id_ = "message", [], None
        for line in block.split("\n"):
            field_name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field_name == "":
                self.comments.append(value)
            elif field_name == "event":
                name = value
            elif field_name == "data":
                data.append(value)
            elif field_name == "id":
                id_ = value
            elif field_name == "retry":
                self.retry = int(value)
        return Event(name, "\n".join(data), id_) if data else None

    async def events_until(self, type_: str, wait: float = WAIT) -> list[Event]:
        events: list[Event] = []
        while not events or events[-1].event != type_:
            event = await self.next_event(wait)
            assert event is not None, f"the stream ended before {type_}: {events}"
            events.append(event)
        return events

    async def json(self) -> Any:
        while await self._more(WAIT):
            pass
        return json.loads(self._text)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def open_stream(
    server: Server,
    game_id: int,
    *,
    token: str | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> Stream:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    lines = [
        f"{method} /api/games/{game_id}/events{query} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Accept: text/event-stream",
    ]
    if token is not None:
        lines.append(f"Authorization: Token {token}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), WAIT)
    status = int(status_line.split()[1])
    found: dict[str, str] = {}
    while (line := await asyncio.wait_for(reader.readline(), WAIT)) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        found[name.strip().lower()] = value.strip()
    return Stream(status, found, reader, writer)


async def joined_stream(server: Server, party: Party, player: Player, **kwargs: Any) -> Stream:
    stream = await open_stream(server, party.game_id, token=player.token, **kwargs)
    assert stream.status == 200, await stream.json()
    return stream


async def refused(server: Server, game_id: int, **kwargs: Any) -> tuple[int, str]:
    stream = await open_stream(server, game_id, **kwargs)
    try:
        assert stream.headers["content-type"] == "application/json", stream.headers
        body = await stream.json()
    finally:
        await stream.close()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    return stream.status, body["error"]["code"]


def reveal_ok(server: Server, party: Party, index: int, nominee: int = 0) -> None:
    status, body, _ = reveal(server, party, index, nominee)
    assert status == 200, body


async def wait_for(check: Any, what: str, wait: float = WAIT) -> None:
    deadline = time.monotonic() + wait
    while not await check():
        assert time.monotonic() < deadline, f"not in {wait:.0f}s: {what}"
        await asyncio.sleep(0.2)


# --- refusals ---------------------------------------------------------------------------


async def test_refusals_in_the_api_error_shape(stack: LiveStack) -> None:
    party = await asyncio.to_thread(make_party, stack, "sse-refusals", 2, [5])
    outsider = (await asyncio.to_thread(make_party, stack, "sse-outsider", 1, [1])).players[0]
    server, player = stack.servers[0], party.players[1]
    assert await refused(server, party.game_id) == (401, "AUTH_REQUIRED")
    assert await refused(server, party.game_id, token="0" * 40) == (401, "AUTH_REQUIRED")
    assert await refused(server, party.game_id, token=outsider.token) == (403, "NOT_PARTICIPANT")
    assert await refused(server, 987654, token=player.token) == (404, "NOT_FOUND")
    assert await refused(server, 2**63, token=player.token) == (404, "NOT_FOUND")
    for bad in ("?lastSeq=-1", "?lastSeq=abc", "?lastSeq=1.5"):
        assert await refused(server, party.game_id, token=player.token, query=bad) == (
            400,
            "VALIDATION_ERROR",
        ), bad
    assert await refused(
        server, party.game_id, token=player.token, headers={"Last-Event-ID": "x"}
    ) == (400, "VALIDATION_ERROR")
    assert await refused(
        server, party.game_id, token=player.token, method="POST", headers={"Content-Length": "0"}
    ) == (405, "METHOD_NOT_ALLOWED")


# --- the stream --------------------------------------------------------------------------


async def test_snapshot_first_then_every_event_with_its_seq_as_id(stack: LiveStack) -> None:
    party = await asyncio.to_thread(make_party, stack, "sse-live", 3, [5, 3, 2])
    host, player = party.players[0], party.players[1]
    # A socket on the other process, to compare the frames byte for byte.
    socket, _ = await joined(stack.servers[0], host, party.game_id)
    stream = await joined_stream(stack.servers[1], party, player)
    try:
        assert stream.headers["content-type"] == "text/event-stream"
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"
        first = await stream.next_event()
        assert first is not None and first.event == "joined", first
        snapshot = first.frame
        assert snapshot["gameId"] == party.game_id and snapshot["recovered"] is False
        assert first.id == str(snapshot["seq"])
        assert set(snapshot["game"]) == {"status", "picksLockAt", "completedAt", "participantCount"}
        assert snapshot["leaderboard"]["type"] == "leaderboard:update"
        assert player.id in {user["userId"] for user in snapshot["online"]}
        assert stream.retry is not None and 1000 <= stream.retry <= 3000

        await asyncio.to_thread(reveal_ok, stack.servers[0], party, 0)
        await asyncio.to_thread(reveal_ok, stack.servers[1], party, 1)
        got = [e for e in await stream.events_until("leaderboard:update") if e.id is not None]
        got += [e for e in await stream.events_until("leaderboard:update") if e.id is not None]
        base = snapshot["seq"]
        assert [(e.event, e.id) for e in got] == [
            ("game:status", str(base + 1)),
            ("leaderboard:update", str(base + 2)),
            ("leaderboard:update", str(base + 3)),
        ]
        for event in got:
            assert event.frame["seq"] == int(event.id or 0) and event.frame["type"] == event.event
        # The same text the socket got, for each event.
        texts = []
        while len(texts) < 3:
            text = await asyncio.wait_for(socket.recv(), WAIT)
            if '"seq"' in text and json.loads(text).get("seq", 0) > base:
                texts.append(text)
        assert [e.data for e in got] == texts
        assert got[-1].frame["revealedCount"] == 2
    finally:
        await stream.close()
        await socket.close()


async def test_keepalive_comments_while_nothing_happens(stack: LiveStack) -> None:
    party = await asyncio.to_thread(make_party, stack, "sse-keepalive", 2, [1])
    stream = await joined_stream(stack.servers[0], party, party.players[1])
    try:
        assert (await stream.next_event()).event == "joined"  # type: ignore[union-attr]
        before = stream.comments.count("keepalive")
        deadline = time.monotonic() + KEEPALIVE_SECONDS * 5
        with contextlib.suppress(TimeoutError):
            while (left := deadline - time.monotonic()) > 0:
                event = await stream.next_event(wait=left)  # its own presence:diff
                assert event is not None and event.event == "presence:diff", event
        # One every KEEPALIVE_SECONDS: at least a few in five periods.
        assert stream.comments.count("keepalive") - before >= 3, stream.comments
    finally:
        await stream.close()


async def test_resume_by_last_event_id_and_by_last_seq(stack: LiveStack) -> None:
    party = await asyncio.to_thread(make_party, stack, "sse-resume", 2, [5, 3, 2])
    server, player = stack.servers[0], party.players[1]
    stream = await joined_stream(server, party, player)
    first = (await stream.events_until("joined"))[-1]
    start = first.frame["seq"]
    await asyncio.to_thread(reveal_ok, server, party, 0)
    live = [e for e in await stream.events_until("leaderboard:update") if e.id is not None]
    await stream.close()
    await asyncio.to_thread(reveal_ok, server, party, 1)  # missed while away
    current = start + 3

    async def resumed(count: int = current - start + 1, **kwargs: Any) -> list[Event]:
        again = await joined_stream(stack.servers[1], party, player, **kwargs)
        try:
            events = [await again.next_event() for _ in range(count)]
            return [e for e in events if e is not None]
        finally:
            await again.close()

    for how in (
        {"headers": {"Last-Event-ID": str(start)}},
        {"query": f"?lastSeq={start}"},
        # EventSource's reconnect keeps the page's URL: the header wins.
        {"query": "?lastSeq=0", "headers": {"Last-Event-ID": str(start)}},
    ):
        events = await resumed(**how)
        head, replay = events[0], events[1:]
        assert head.event == "joined" and head.frame["recovered"] is True, how
        assert head.frame["seq"] == current and head.id == str(current)
        assert [int(e.id or 0) for e in replay] == list(range(start + 1, current + 1)), how
        # The frames the live stream had written (the stored copy's keys
        # may come back from PostgreSQL in another order).
        assert [e.frame for e in replay[:2]] == [e.frame for e in live], how

    # Beyond the current seq: the snapshot alone, not recovered.
    events = await resumed(2, query=f"?lastSeq={current + 50}")
    assert events[0].frame["recovered"] is False and events[0].frame["seq"] == current
    assert events[1].event == "presence:diff" and events[1].id is None


async def test_per_user_cap_and_a_closed_stream_frees_its_place(stack: LiveStack) -> None:
    party = await asyncio.to_thread(make_party, stack, "sse-cap", 2, [1])
    server, player = stack.servers[0], party.players[1]
    streams = [await joined_stream(server, party, player) for _ in range(STREAMS_PER_USER)]
    try:
        assert await refused(server, party.game_id, token=player.token) == (429, "RATE_LIMITED")
        # Another user, and the same user on another process, are not limited here.
        other = await joined_stream(server, party, party.players[0])
        await other.close()
        elsewhere = await joined_stream(stack.servers[1], party, player)
        await elsewhere.close()
        await streams.pop().close()

        async def place_freed() -> bool:
            attempt = await open_stream(server, party.game_id, token=player.token)
            await attempt.close()
            if attempt.status == 200:
                return True
            assert attempt.status == 429
            return False

        await wait_for(place_freed, "the closed stream's place freed")
    finally:
        for stream in streams:
            await stream.close()


def _threads(server: Server) -> int:
    assert server.process is not None
    with open(f"/proc/{server.process.pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


async def test_an_open_stream_holds_no_thread(stack: LiveStack) -> None:
    """Django keeps a worker thread per request until it ends: a stream lets
    it go once its body starts (else every idle stream held one)."""
    party = await asyncio.to_thread(make_party, stack, "sse-threads", 4, [1])
    server = stack.servers[0]

    async def open_all() -> list[Stream]:
        streams = [
            await joined_stream(server, party, player)
            for player in party.players
            for _ in range(STREAMS_PER_USER)
        ]
        for stream in streams:
            await stream.events_until("joined")
        return streams

    # Once first, so the server's thread pools have grown to what joins use.
    for stream in await open_all():
        await stream.close()
    await asyncio.sleep(1)
    before = _threads(server)
    streams = await open_all()
    try:
        await asyncio.sleep(1)
        grew = _threads(server) - before
        assert grew < len(streams) // 2, f"{grew} threads more for {len(streams)} open streams"
    finally:
        for stream in streams:
            await stream.close()


async def test_an_sse_viewer_counts_in_presence(stack: LiveStack) -> None:
    party = await asyncio.to_thread(make_party, stack, "sse-presence", 2, [1])
    host, viewer = party.players
    socket, frame = await joined(stack.servers[0], host, party.game_id)
    try:
        assert viewer.id not in {user["userId"] for user in frame["online"]}
        stream = await joined_stream(stack.servers[1], party, viewer)
        snapshot = (await stream.events_until("joined"))[-1].frame
        assert {user["userId"] for user in snapshot["online"]} == {host.id, viewer.id}
        diff = await _diff_about(socket, viewer.id)
        assert diff["joins"] == [{"userId": viewer.id, "name": viewer.name}], diff
        assert diff["onlineCount"] == 2
        # A socket joining now lists the viewer.
        again, frame = await joined(stack.servers[0], host, party.game_id)
        await again.close()
        assert viewer.id in {user["userId"] for user in frame["online"]}
        await stream.close()  # the client leaves: the server notices
        diff = await _diff_about(socket, viewer.id)
        assert diff["leaves"] == [{"userId": viewer.id, "name": viewer.name}], diff
    finally:
        await socket.close()


async def _diff_about(socket: Any, user_id: int) -> dict[str, Any]:
    while True:
        frame = (await recv_until(socket, "presence:diff", wait=WAIT))[-1]
        if user_id in {u["userId"] for u in frame["joins"] + frame["leaves"]}:
            return frame


async def test_sign_out_and_removal_end_the_stream(stack: LiveStack) -> None:
    party = await asyncio.to_thread(make_party, stack, "sse-ends", 3, [1])
    host, leaver, removed = party.players
    server = stack.servers[0]
    signed_in = await joined_stream(stack.servers[1], party, leaver)
    to_remove = await joined_stream(server, party, removed)
    try:
        await signed_in.events_until("joined")
        await to_remove.events_until("joined")
        status, _ = await asyncio.to_thread(
            http, server, "POST", "/api/auth/logout", token=leaver.token
        )
        assert status == 204
        error = (await signed_in.events_until("leaderboard:error"))[-1]
        assert error.frame["code"] == "AUTH_REQUIRED" and error.id is None
        assert await signed_in.next_event() is None and signed_in.complete
        assert await refused(server, party.game_id, token=leaver.token) == (401, "AUTH_REQUIRED")

        status, _ = await asyncio.to_thread(
            http,
            server,
            "DELETE",
            f"/api/games/{party.game_id}/participants/{removed.id}",
            token=host.token,
        )
        assert status == 204
        events = await to_remove.events_until("game:removed")
        assert events[-1].frame == {"type": "game:removed", "gameId": party.game_id}
        # No participant:left about themself: removal is `game:removed` only, as on a socket.
        assert all(e.event != "participant:left" for e in events)
        assert await to_remove.next_event() is None and to_remove.complete
        assert await refused(server, party.game_id, token=removed.token) == (
            403,
            "NOT_PARTICIPANT",
        )
    finally:
        await signed_in.close()
        await to_remove.close()


async def test_an_event_whose_fast_path_is_lost_still_reaches_the_stream(
    stack: LiveStack,
) -> None:
    """The reveal commits in a process whose channel layer cannot reach Redis:
    no message is ever sent; each server's recovery check must find the
    events in the log and feed its streams, in order, once."""
    party = await asyncio.to_thread(make_party, stack, "sse-lost", 2, [5, 3])
    streams = [await joined_stream(server, party, party.players[1]) for server in stack.servers]
    try:
        starts = [int((await s.events_until("joined"))[-1].id or 0) for s in streams]
        committed = await reveal_without_redis(stack, party)
        for stream, start in zip(streams, starts, strict=True):
            events = [e for e in await stream.events_until("leaderboard:update") if e.id]
            assert [(e.event, int(e.id or 0)) for e in events] == [
                ("game:status", start + 1),
                ("leaderboard:update", start + 2),
            ]
            assert time.monotonic() - committed < WAIT
        # And the stream goes on from there with the fast path.
        await asyncio.to_thread(reveal_ok, stack.servers[0], party, 1)
        for stream, start in zip(streams, starts, strict=True):
            events = [e for e in await stream.events_until("leaderboard:update") if e.id]
            assert [int(e.id or 0) for e in events] == [start + 3]
    finally:
        for stream in streams:
            await stream.close()


async def test_a_server_shutdown_ends_the_stream_cleanly_for_a_resume_elsewhere(
    stack: LiveStack,
) -> None:
    party = await asyncio.to_thread(make_party, stack, "sse-shutdown", 2, [5, 3])
    player, leaving = party.players[1], stack.servers[1]
    stream = await joined_stream(leaving, party, player)
    try:
        last = (await stream.events_until("joined"))[-1].id
        await asyncio.to_thread(reveal_ok, stack.servers[0], party, 0)
        last = [e for e in await stream.events_until("leaderboard:update") if e.id][-1].id
        await asyncio.to_thread(leaving.stop)  # SIGTERM: the drain
        # The response ends properly (its last chunk), not with a reset.
        with contextlib.suppress(TimeoutError):
            while (event := await stream.next_event()) is not None:
                assert event.event == "presence:diff", event
        assert stream.ended and stream.complete
    finally:
        await stream.close()
        await asyncio.to_thread(leaving.start)
    await asyncio.to_thread(reveal_ok, stack.servers[0], party, 1)
    # EventSource's reconnect, landing on the other process.
    again = await joined_stream(stack.servers[0], party, player, headers={"Last-Event-ID": last})
    try:
        head, missed = await again.next_event(), await again.next_event()
        assert head is not None and head.frame["recovered"] is True
        assert missed is not None and missed.id == str(int(last or 0) + 1)
    finally:
        await again.close()


# --- the stream object: shared bytes, the bounded queue -----------------------------------


class _Hub:
    """What an SseStream needs of a hub, for the in-process tests below."""

    def __init__(self) -> None:
        self.catching_up: list[int] = []
        self.ids = iter(range(1, 1000))

    def new_socket_id(self) -> str:
        return f"test#{next(self.ids)}"

    def every(self, interval: float, job: Any) -> None:
        pass

    def catch_up(self, game_id: int) -> None:
        self.catching_up.append(game_id)

    async def unfollow_game(self, game_id: int, follower: Any) -> None:
        pass

    def unfollow_user(self, user_id: int, follower: Any) -> None:
        pass


def _event(game_id: int, seq: int, removed: int | None = None) -> dict[str, Any]:
    text = json.dumps({"type": "leaderboard:update", "gameId": game_id, "seq": seq})
    return {"type": "game.event", "game_id": game_id, "seq": seq, "text": text, "removed": removed}


@pytest.fixture
def memory_presence(monkeypatch: pytest.MonkeyPatch) -> None:
    from leaderboard import presence

    monkeypatch.setattr(presence, "_store", presence.MemoryPresence())


async def test_streams_share_one_encoding_of_each_event(memory_presence: None) -> None:
    from leaderboard.sse import SseStream

    hub = _Hub()
    a, b = (SseStream(hub, user_id=u, name="x", auth_at=0.0) for u in (1, 2))  # type: ignore[arg-type]
    for stream in (a, b):
        stream.games[7] = 4
    message = _event(7, 5)
    await a.game_event(message)
    await b.game_event(message)
    assert a._chunks[-1] is b._chunks[-1]
    assert a._chunks[-1].startswith(b"id: 5\nevent: leaderboard:update\ndata: {")
    # Old and gapped events are not written; a gap asks the hub to catch up.
    await a.game_event(_event(7, 5))
    await a.game_event(_event(7, 7))
    assert len(a._chunks) == 1 and hub.catching_up == [7]


def test_frame_type_of_every_key_order() -> None:
    from leaderboard.sse import frame_type

    assert frame_type('{"type":"game:status","gameId":1,"seq":2}') == "game:status"
    assert frame_type('{"seq":2,"type":"game:status","gameId":1}') == "game:status"  # jsonb
    assert frame_type('{"gameId":1,"type":"presence:diff"}') == "presence:diff"


async def test_a_stream_whose_client_stops_reading_is_dropped(
    memory_presence: None, settings: Any
) -> None:
    from leaderboard.sse import SseStream

    settings.ENVELOPE_SSE_MAX_QUEUED = 5
    stream = SseStream(_Hub(), user_id=1, name="x", auth_at=0.0)  # type: ignore[arg-type]
    stream.games[7] = 0
    for seq in range(1, 20):
        await stream.game_event(_event(7, seq))
    # Dropped at the sixth: what waited is let go, and the game left.
    assert stream.closed and stream._chunks == []
    await asyncio.sleep(0)  # the leave runs as a task
    assert stream.games == {}
    # The body ends at once, so EventSource reconnects (with Last-Event-ID).
    body = [chunk async for chunk in stream.body()]
    assert len(body) == 1 and body[0].startswith(b": stream\nretry: ")


# --- an outage before the stream starts ------------------------------------------------------


async def test_redis_down_answers_503_in_the_error_shape_then_streams_again() -> None:
    """A server on a Redis of its own (tests/faults.py), killed: the join's
    presence step cannot run, so the request is refused 503 before any byte
    of the stream; with Redis back, the same request streams."""
    database_url = require_service("DATABASE_URL", 5432, "PostgreSQL")
    if not database_url.startswith(("postgres://", "postgresql://")):
        pytest.skip("DATABASE_URL is not PostgreSQL")
    with PrivateRedis(require_redis_server()) as private:
        live = LiveStack(processes=1, database_url=database_url, redis_url=private.url)
        try:
            await asyncio.to_thread(live.start)
            party = await asyncio.to_thread(make_party, live, "sse-outage", 2, [1])
            server, player = live.servers[0], party.players[1]
            await asyncio.to_thread(private.stop)
            stream = await open_stream(server, party.game_id, token=player.token)
            try:
                assert stream.status == 503, stream.status
                assert stream.headers["content-type"] == "application/json"
                assert stream.headers["retry-after"]
                assert (await stream.json())["error"]["code"] == "SERVICE_UNAVAILABLE"
            finally:
                await stream.close()
            await asyncio.to_thread(private.start)
            stream = await joined_stream(server, party, player)
            try:
                assert (await stream.next_event()).event == "joined"  # type: ignore[union-attr]
            finally:
                await stream.close()
        finally:
            await asyncio.to_thread(live.close)
