"""Fast load client: one process holding many WebSocket connections (picows on uvloop).

bench/sidebyside.py starts several of these and drives the same clients
against Envelope, the bare broadcast and a Socket.IO peer, so that the
client side costs the same for every server and is never the bottleneck:
picows parses frames in Cython and hands each one to a plain callback, with
no per-frame coroutine, queue or decode.

Driven by JSON lines on stdin, answered by JSON lines on stdout (like
bench/clients.py). The dialect is chosen on the command line
(`--dialect envelope|bare|socketio`). Commands:

- `connect` {url, origin, count, user_ids?, game_id?, secret_key?,
  concurrency, retries, deadline, sample}: open `count` sockets (at most
  `concurrency` sessions starting at once, 0 = all together; a failed one is
  retried `retries` times, with a fresh ticket for Envelope since tickets are
  one-use; sessions not joined after `deadline` seconds are given up).
  A session is done ("joined") when:
    - envelope: `?ticket=` handshake, `hello` received, `join` sent, `joined` received;
    - bare: the WebSocket is open;
    - socketio: Engine.IO open packet `0{...}` received, `40` sent, `40{...}`
      received, `420["join",gameId]` sent and its ack `430[...]` received.
  Answers `connected` {ok, failed, started, join_times, errors}.
- `frames`: frames received so far, by type, in total and the most any one
  socket got (the parent reads it after the join burst has gone quiet).
- `wait` {key, timeout}: answers `waited` {n} once every joined socket of
  this process has the reveal `key` (or after `timeout` seconds).
- `report`: per reveal key, each socket's arrival time (None: never), plus
  the first copy of each reveal frame (Envelope, when `sample` was set) so
  the other servers can broadcast the very same bytes.
- `close`: close every socket and exit.

A reveal's key is `lastRevealed.categoryId` of its `leaderboard:update`
(also inside the bare broadcast and the Socket.IO `update` event, which carry
the same frame). Times are `time.monotonic()` (CLOCK_MONOTONIC), comparable
with the parent's. A frame is stamped before anything else is done with it;
its type comes from its first bytes, and the key is found by a byte search
near the end, once per distinct frame head per process (every socket gets
the same frame: the head, which carries `seq`, identifies it).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

ROOT = Path(__file__).resolve().parent.parent

DIALECTS = ("envelope", "bare", "socketio")
MAX_FRAME = 64 * 2**20  # a leaderboard of thousands of players is hundreds of KB
HANDSHAKE_TIMEOUT = 120.0  # a burst of thousands queues on the server's accept
HEAD = 96  # the frame type and seq are within the first bytes of every frame
TYPE_RE = re.compile(rb'"type":"([^"]{1,40})"')
LAST_REVEALED = b'"lastRevealed":{'
CATEGORY_RE = re.compile(rb'"lastRevealed":\{[^{}]*?"categoryId":(\d+)')
CODE_RE = re.compile(rb'"code":"([A-Z_]+)"')
LEADERBOARD = b'"type":"leaderboard:update"'
SIO_EVENT_RE = re.compile(rb'^42\d*\["([^"]{1,40})"')


class Refused(Exception):
    """The server turned the session away (an error frame or a close)."""


class Stats:
    """Counters shared by every socket of this process."""

    def __init__(self) -> None:
        self.errors: collections.Counter[str] = collections.Counter()
        self.frames: collections.Counter[str] = collections.Counter()
        self.closes = 0  # unexpected closes after the session was joined
        self.retries = 0
        # frame head -> reveal key (0: a leaderboard:update that revealed nothing)
        self.keys: dict[bytes, int] = {}
        self.samples: dict[int, str] = {}  # key -> first copy of the Envelope frame
        self.received: collections.Counter[int] = collections.Counter()  # key -> sockets
        self.waiters: dict[int, asyncio.Event] = {}
        self.joined = 0


class Session(WSListener):
    """One socket: the dialect's handshake, then counting and stamping frames."""

    def __init__(self, dialect: str, stats: Stats, game_id: int | None, keep_samples: bool) -> None:
        super().__init__()
        self.dialect = dialect
        self.stats = stats
        self.game_id = game_id
        self.keep_samples = keep_samples
        self.transport: WSTransport | None = None
        self.ready: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.joined_at: float | None = None
        self.closing = False
        self.frames: collections.Counter[str] = collections.Counter()
        self.received: dict[int, float] = {}  # reveal key -> first arrival
        self.partial: bytearray | None = None  # a fragmented message being assembled

    # --- picows callbacks (plain functions on the loop: no task per frame) -----------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if self.dialect == "bare":
            self._joined(time.monotonic())
        # envelope waits for `hello`, socketio for the Engine.IO open packet.

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        now = time.monotonic()  # first, so nothing below inflates the latency
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if kind not in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
            return  # pings are answered by picows itself (enable_auto_pong)
        if not frame.fin or self.partial is not None:
            # Fragmented (none of the three servers fragments frames of this
            # size, but a client must not misread one if it happens).
            if self.partial is None:
                self.partial = bytearray()
            self.partial += frame.get_payload_as_bytes()
            if not frame.fin:
                return
            payload, self.partial = bytes(self.partial), None
            self.on_message(payload[:HEAD], lambda: payload, now)
            return
        self.on_message(
            bytes(frame.get_payload_as_memoryview()[:HEAD]), frame.get_payload_as_bytes, now
        )

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.ready.done():
            self.ready.set_exception(Refused("closed before joined"))
        elif not self.closing:
            self.stats.closes += 1
            self.stats.errors["closed after join"] += 1

    # --- messages -------------------------------------------------------------------

    def on_message(self, head: bytes, whole: Callable[[], bytes], now: float) -> None:
        if self.dialect == "envelope":
            self.on_envelope(head, whole, now)
        elif self.dialect == "socketio":
            self.on_socketio(head, whole, now)
        else:
            self.count("broadcast")
            self.reveal(head, whole, now)

    def on_envelope(self, head: bytes, whole: Callable[[], bytes], now: float) -> None:
        match = TYPE_RE.search(head)
        kind = match.group(1).decode() if match else "?"
        self.count(kind)
        if kind == "leaderboard:update":
            self.reveal(head, whole, now)
        elif kind == "hello" and not self.ready.done():
            assert self.transport is not None
            self.transport.send(
                WSMsgType.TEXT, json.dumps({"type": "join", "gameId": self.game_id}).encode()
            )
        elif kind == "joined" and not self.ready.done():
            self._joined(now)
        elif kind == "leaderboard:error":
            code = CODE_RE.search(whole())
            name = code.group(1).decode() if code else "?"
            if not self.ready.done():
                self.ready.set_exception(Refused(f"refused {name}"))
            else:
                self.stats.errors[f"frame {name}"] += 1

    def on_socketio(self, head: bytes, whole: Callable[[], bytes], now: float) -> None:
        assert self.transport is not None
        if head == b"2":  # Engine.IO ping: answer at once, or the server drops us
            self.count("ping")
            self.transport.send(WSMsgType.TEXT, b"3")
        elif head.startswith(b"42"):
            match = SIO_EVENT_RE.match(head)
            event = match.group(1).decode() if match else "?"
            self.count(f"event {event}")
            if event == "update":
                self.reveal(head, whole, now)
        elif head.startswith(b"43"):  # our join's ack
            self.count("ack")
            if not self.ready.done():
                self._joined(now)
        elif head.startswith(b"40"):  # connected to the namespace: join the game
            self.count("connect")
            self.transport.send(WSMsgType.TEXT, b'420["join",%d]' % (self.game_id or 0))
        elif head.startswith(b"0"):  # Engine.IO open: connect to the namespace
            self.count("open")
            self.transport.send(WSMsgType.TEXT, b"40")
        elif head.startswith(b"44"):  # connect_error
            self.count("connect_error")
            if not self.ready.done():
                self.ready.set_exception(Refused("socket.io connect_error"))
        else:
            self.count(f"packet {head[:2].decode(errors='replace')}")

    def count(self, kind: str) -> None:
        self.frames[kind] += 1
        self.stats.frames[kind] += 1

    def reveal(self, head: bytes, whole: Callable[[], bytes], now: float) -> None:
        stats = self.stats
        key = stats.keys.get(head)
        if key is None:  # the first copy of this frame in this process
            payload = whole()
            start = payload.rfind(LAST_REVEALED)  # near the end: players come before it
            match = CATEGORY_RE.match(payload, start) if start >= 0 else None
            key = int(match.group(1)) if match else 0
            stats.keys[head] = key
            if self.keep_samples and key not in stats.samples and LEADERBOARD in head[:40]:
                stats.samples[key] = payload.decode()
        if key in self.received:
            return
        self.received[key] = now
        stats.received[key] += 1
        waiter = stats.waiters.get(key)
        if waiter is not None and stats.received[key] >= stats.joined:
            waiter.set()

    def _joined(self, now: float) -> None:
        self.joined_at = now
        if not self.ready.done():
            self.ready.set_result(now)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close()
            self.transport.disconnect()


class Client:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.stats = Stats()
        self.sessions: list[Session] = []
        self.ticket_issue: Callable[..., str] | None = None

    def _ticket_maker(self, secret_key: str) -> Callable[[int], str]:
        """Tickets minted here with the servers' SECRET_KEY: the same function
        `POST /api/auth/ws-ticket` calls (accounts.tickets.ticket_issue), without
        putting 2,000 HTTP requests on the server being measured."""
        if self.ticket_issue is None:
            sys.path.insert(0, str(ROOT))
            from django.conf import settings

            settings.configure(SECRET_KEY=secret_key)
            from accounts.tickets import ticket_issue

            self.ticket_issue = ticket_issue
        issue = self.ticket_issue
        return lambda user_id: issue(user_id=user_id)

    async def open(
        self, url: str, origin: str, game_id: int | None, sample: bool, deadline: float
    ) -> Session:
        """One session, from the TCP connect to the dialect's join answer."""
        session: Session | None = None

        def factory() -> Session:
            nonlocal session
            session = Session(self.dialect, self.stats, game_id, sample)
            return session

        try:
            await ws_connect(
                factory,
                url,
                websocket_handshake_timeout=HANDSHAKE_TIMEOUT,
                enable_auto_ping=False,  # the servers ping; client pings would only add load
                max_frame_size=MAX_FRAME,
                extra_headers={"Origin": origin},
            )
            assert session is not None
            await asyncio.wait_for(asyncio.shield(session.ready), deadline)
        except BaseException:
            if session is not None:
                session.close()
            raise
        return session

    async def run(
        self,
        gate: asyncio.Semaphore | None,
        url_for: Callable[[int], str],
        attempt_args: tuple[str, int | None, bool, float],
        retries: int,
    ) -> Session | None:
        origin, game_id, sample, deadline = attempt_args
        for attempt in range(retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(min(30, 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))
            try:
                if gate is None:
                    return await self.open(url_for(attempt), origin, game_id, sample, deadline)
                async with gate:
                    return await self.open(url_for(attempt), origin, game_id, sample, deadline)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                name = str(exc)[:60] if isinstance(exc, Refused) else type(exc).__name__
                self.stats.errors[name] += 1
        return None

    async def connect(self, command: dict[str, Any]) -> dict[str, Any]:
        url, origin = command["url"], command["origin"]
        count = command["count"]
        game_id = command.get("game_id")
        deadline = float(command.get("deadline", 240))
        retries = int(command.get("retries", 0))
        urls: list[Callable[[int], str]]
        if self.dialect == "envelope":
            # One-use tickets: each socket's first is minted before the clock
            # starts (so the burst starts together), a retry mints a fresh one.
            make = self._ticket_maker(command["secret_key"])
            user_ids: list[int] = command["user_ids"]
            first = [make(user_id) for user_id in user_ids]

            def envelope_url(index: int) -> Callable[[int], str]:
                return lambda attempt: (
                    f"{url}?ticket={first[index] if attempt == 0 else make(user_ids[index])}"
                )

            urls = [envelope_url(index) for index in range(count)]
        else:
            urls = [lambda attempt: url] * count
        concurrency = int(command.get("concurrency", 0))
        gate = asyncio.Semaphore(concurrency) if concurrency else None
        sample = bool(command.get("sample", False))
        started = time.monotonic()
        runs = [
            asyncio.create_task(
                self.run(gate, urls[index], (origin, game_id, sample, deadline), retries)
            )
            for index in range(count)
        ]
        _, late = await asyncio.wait(runs, timeout=deadline)
        for run in late:
            run.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        if late:
            self.stats.errors["connect deadline"] += len(late)
        sessions = [run.result() for run in runs if not run.cancelled() and run.result()]
        self.sessions = [s for s in sessions if s is not None]
        self.stats.joined = len(self.sessions)
        return {
            "event": "connected",
            "ok": len(self.sessions),
            "failed": count - len(self.sessions),
            "started": started,
            "join_times": [s.joined_at for s in self.sessions],
            "retries": self.stats.retries,
            "errors": dict(self.stats.errors),
        }

    def frames(self) -> dict[str, Any]:
        kinds = sorted(self.stats.frames)
        return {
            "event": "frames",
            "sockets": len(self.sessions),
            "total": dict(self.stats.frames),
            "max": {k: max((s.frames[k] for s in self.sessions), default=0) for k in kinds},
            "all": sum(self.stats.frames.values()),
        }

    async def wait(self, key: int, seconds: float) -> dict[str, Any]:
        stats = self.stats
        if stats.received[key] < stats.joined:
            waiter = stats.waiters.setdefault(key, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await waiter.wait()
        return {"event": "waited", "n": stats.received[key]}

    def report(self) -> dict[str, Any]:
        keys = sorted({key for s in self.sessions for key in s.received})
        return {
            "event": "report",
            "sockets": len(self.sessions),
            "recv": {str(key): [s.received.get(key) for s in self.sessions] for key in keys},
            "samples": {str(key): text for key, text in self.stats.samples.items()},
            "closes": self.stats.closes,
            "errors": dict(self.stats.errors),
        }

    async def close(self) -> dict[str, Any]:
        for session in self.sessions:
            session.close()
        await asyncio.sleep(0.5)  # let the close frames go out
        return {"event": "closed"}


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main(dialect: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    client = Client(dialect)
    reply({"event": "ready"})
    while line := await reader.readline():
        command = json.loads(line)
        name = command["cmd"]
        if name == "connect":
            reply(await client.connect(command))
        elif name == "frames":
            reply(client.frames())
        elif name == "wait":
            reply(await client.wait(int(command["key"]), float(command["timeout"])))
        elif name == "report":
            reply(client.report())
        elif name == "close":
            reply(await client.close())
            return
        else:
            reply({"event": "error", "message": f"unknown command {name!r}"})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", choices=DIALECTS, required=True)
    uvloop.run(main(parser.parse_args().dialect))
