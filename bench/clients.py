"""Load client: one process holding many real WebSocket connections.

Started by bench/fanout.py (several at once for large runs, so the client is
not the bottleneck) and driven by JSON lines on stdin; it answers with JSON
lines on stdout. Commands:

- `connect` {targets: [[ws_url, origin, user_id], ...], game_id, secret_key,
  concurrency, retries, deadline, sample}: open every socket (at most
  `concurrency` handshakes at once, 0 = all together; a failed one is retried
  `retries` times with backoff, as a browser would; sockets not joined after
  `deadline` seconds are given up and count as failed). With a game_id each
  socket authenticates with a ticket minted here (same SECRET_KEY as the
  servers), waits for `hello`, sends `join` and waits for `joined`; without
  one (the reference server) it is ready once open. A target may carry a
  4th element, its own game id (`[ws_url, origin, user_id, game_id]`,
  bench/parties.py: many games at once), which overrides `game_id` for that
  socket. Answers `connected` with each socket's join time.
- `count` {key}: how many sockets have received the leaderboard:update of
  category `key` (the parent polls this to know a reveal has fanned out),
  and how many frames this process has received in all (to wait for quiet).
- `storm` {seconds, rate, emoji}: every socket starts sending `rate`
  reactions a second for `seconds`; answers `storm_started` at once (so the
  parent can keep polling `count`), and `storm_wait` answers `storm_done`
  once it is over.
- `report`: per socket, when it first received each leaderboard:update
  (keyed by lastRevealed.categoryId), plus reaction rates, closes and errors.
  A socket that receives a game event whose seq is more than one past the
  last seq it saw counts a `seq gap` error (an event it never got).
- `close`: close every socket and exit.

Times are `time.monotonic()` (CLOCK_MONOTONIC), comparable with the parent's.
The receive path does no JSON parsing: it stamps the time first and then
only looks at the bytes it needs, so thousands of big frames stay cheap.
"""

from __future__ import annotations

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
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # accounts.tickets

MAX_FRAME = 64 * 2**20  # a leaderboard of thousands of players is hundreds of KB
OPEN_TIMEOUT = 120  # a burst of thousands queues on the server's accept
HEAD = 96  # the frame type and seq are within the first bytes of every frame
LEADERBOARD = b'"type":"leaderboard:update"'
REACTION = b'"type":"reaction:broadcast"'
ERROR = b'"type":"leaderboard:error"'
LAST_REVEALED = b'"lastRevealed":{'
CATEGORY_RE = re.compile(rb'"lastRevealed":\{[^{}]*?"categoryId":(\d+)')
SEQ_RE = re.compile(rb'"seq":(\d+)')
CODE_RE = re.compile(rb'"code":"([A-Z_]+)"')
RECONNECT_ATTEMPTS = 5


class Stats:
    """Counters shared by every socket of this process."""

    def __init__(self) -> None:
        self.errors: collections.Counter[str] = collections.Counter()
        self.closes = 0
        self.reconnects = 0
        self.connect_retries = 0
        self.frames = 0
        # The first copy of each leaderboard:update, from any socket (if sampling).
        self.samples: dict[int, str] = {}
        self.reaction_frames = 0
        self.sent_reactions = 0


class Refused(Exception):
    """The server answered the handshake or the join with leaderboard:error."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def error_name(exc: BaseException) -> str:
    if isinstance(exc, Refused):
        return f"refused {exc.code}"
    if isinstance(exc, InvalidStatus):
        return f"http {exc.response.status_code}"
    if isinstance(exc, ConnectionClosed):
        return f"closed {exc.rcvd.code if exc.rcvd else 'without close frame'}"
    return type(exc).__name__


class Socket:
    def __init__(
        self,
        *,
        url: str,
        origin: str,
        user_id: int,
        game_id: int | None,
        ticket_for: Callable[[int], str] | None,
        stats: Stats,
        keep_samples: bool,
        board: str = "full",
    ) -> None:
        self.url = url
        self.board = board
        self.origin = origin
        self.user_id = user_id
        self.game_id = game_id
        self.ticket_for = ticket_for
        self.stats = stats
        self.keep_samples = keep_samples
        self.ws: ClientConnection | None = None
        self.closing = False
        self.joined_at: float | None = None
        self.last_seq: int | None = None
        # categoryId of a leaderboard:update's lastRevealed -> first receive time
        self.received: dict[int, float] = {}
        self.reaction_window: collections.deque[float] = collections.deque()
        self.reaction_max = 0
        self.reader: asyncio.Task[None] | None = None  # held: the loop keeps weak refs

    # --- connecting --------------------------------------------------------------

    async def open(self, ticket: str | None = None) -> bool:
        """Connect (and hello + join when following a game); False on failure."""
        url = self.url
        if self.game_id is not None:
            assert self.ticket_for is not None
            url = f"{url}?ticket={ticket or self.ticket_for(self.user_id)}"
        try:
            self.ws = await connect(
                url,
                origin=self.origin,  # type: ignore[arg-type]
                compression=None,  # daphne does not compress; the reference must not either
                proxy=None,
                open_timeout=OPEN_TIMEOUT,
                ping_interval=None,  # the server pings; client pings would only add load
                max_size=MAX_FRAME,
                max_queue=None,
            )
            if self.game_id is not None:
                await self._expect(b'"type":"hello"')
                join: dict[str, Any] = {"type": "join", "gameId": self.game_id}
                if self.board != "full":
                    join["board"] = self.board
                if self.last_seq is not None:
                    join["lastSeq"] = self.last_seq
                await self.ws.send(json.dumps(join))
                await self._expect(b'"type":"joined"')
        except Exception as exc:
            self.stats.errors[error_name(exc)] += 1
            if self.ws is not None:
                with contextlib.suppress(Exception):
                    await self.ws.close()
            return False
        self.joined_at = time.monotonic()
        return True

    async def _expect(self, marker: bytes) -> None:
        assert self.ws is not None
        while True:
            frame = await asyncio.wait_for(self.ws.recv(decode=False), OPEN_TIMEOUT)
            if marker in frame[:HEAD]:
                seq = SEQ_RE.search(frame[:HEAD])
                if seq:
                    self.last_seq = int(seq.group(1))
                return
            if ERROR in frame[:HEAD]:
                code = CODE_RE.search(frame)
                raise Refused(code.group(1).decode() if code else "?")
            self.on_frame(frame)

    # --- receiving -----------------------------------------------------------------

    def on_frame(self, frame: bytes) -> None:
        now = time.monotonic()  # first, so nothing below inflates the latency
        self.stats.frames += 1
        head = frame[:HEAD]
        if LEADERBOARD in head:
            start = frame.rfind(LAST_REVEALED)  # near the end: players come before it
            match = CATEGORY_RE.match(frame, start) if start >= 0 else None
            key = int(match.group(1)) if match else 0  # 0: lock or undo, nothing revealed
            self.received.setdefault(key, now)
            if self.keep_samples and key not in self.stats.samples:
                self.stats.samples[key] = frame.decode()
        elif REACTION in head:
            self.stats.reaction_frames += 1
            window = self.reaction_window
            window.append(now)
            while window[0] <= now - 1.0:
                window.popleft()
            self.reaction_max = max(self.reaction_max, len(window))
        elif ERROR in head:
            code = CODE_RE.search(frame)
            self.stats.errors[f"frame {code.group(1).decode() if code else '?'}"] += 1
        seq = SEQ_RE.search(head)
        if seq:
            number = int(seq.group(1))
            last = self.last_seq
            if last is not None and number > last + 1:
                self.stats.errors["seq gap"] += 1  # an event this socket never got
            self.last_seq = number

    async def read_loop(self) -> None:
        """Receive until closed by us; an unexpected close reconnects like a
        browser (1 s doubling, with jitter) and resumes from the last seq."""
        while True:
            assert self.ws is not None
            try:
                while True:
                    self.on_frame(await self.ws.recv(decode=False))
            except ConnectionClosed as exc:
                if self.closing:
                    return
                self.stats.closes += 1
                self.stats.errors[error_name(exc)] += 1
            for attempt in range(RECONNECT_ATTEMPTS):
                await asyncio.sleep(min(30, 2**attempt) * random.uniform(0.5, 1.0))
                if self.closing:
                    return
                if await self.open():
                    self.stats.reconnects += 1
                    break
            else:
                return

    async def run(self, gate: asyncio.Semaphore | None, ticket: str | None, retries: int) -> bool:
        """Open (retrying like a browser, if asked) and start the read loop."""
        for attempt in range(retries + 1):
            if attempt:
                self.stats.connect_retries += 1
                await asyncio.sleep(min(30, 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))
                ticket = None  # the first one may have expired meanwhile
            if gate is None:
                ok = await self.open(ticket)
            else:
                async with gate:
                    ok = await self.open(ticket)
            if ok:
                self.reader = asyncio.create_task(self.read_loop())
                return True
        return False

    # --- sending -------------------------------------------------------------------

    async def storm(self, *, seconds: float, rate: float, emoji: str) -> None:
        message = json.dumps({"type": "reaction:send", "gameId": self.game_id, "emoji": emoji})
        interval = 1.0 / rate
        end = time.monotonic() + seconds
        # Random phase: a thousand sockets must not all send in the same millisecond.
        next_at = time.monotonic() + random.uniform(0, interval)
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            if self.ws is None or self.closing:
                return
            with contextlib.suppress(ConnectionClosed):  # the read loop reconnects
                await self.ws.send(message)
                self.stats.sent_reactions += 1

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 10)


class Client:
    def __init__(self) -> None:
        self.stats = Stats()
        self.sockets: list[Socket] = []
        self.ticket_issue: Callable[..., str] | None = None
        self.storming: asyncio.Future[list[None]] | None = None

    def _tickets(self, secret_key: str) -> Callable[[int], str]:
        if self.ticket_issue is None:
            from django.conf import settings

            settings.configure(SECRET_KEY=secret_key)
            from accounts.tickets import ticket_issue

            self.ticket_issue = ticket_issue
        issue = self.ticket_issue
        return lambda user_id: issue(user_id=user_id)

    async def connect(self, command: dict[str, Any]) -> dict[str, Any]:
        game_id = command.get("game_id")
        # [ws_url, origin, user_id] follows `game_id`; a 4th element is the
        # socket's own game id (many games at once, bench/parties.py).
        targets = [
            (target[0], target[1], target[2], target[3] if len(target) > 3 else game_id)
            for target in command["targets"]
        ]
        following = any(target[3] is not None for target in targets)
        ticket_for = self._tickets(command["secret_key"]) if following else None
        sockets = [
            Socket(
                url=url,
                origin=origin,
                user_id=user_id,
                game_id=socket_game_id,
                ticket_for=ticket_for,
                stats=self.stats,
                keep_samples=command.get("sample", False),
                board=command.get("board", "full"),
            )
            for url, origin, user_id, socket_game_id in targets
        ]
        concurrency = command.get("concurrency", 0)
        # A burst mints every ticket first so that the handshakes start together;
        # otherwise each is minted just before its handshake (tickets last 60 s).
        burst = ticket_for is not None and not concurrency
        tickets = [
            ticket_for(s.user_id) if burst and s.game_id is not None else None for s in sockets
        ]
        gate = asyncio.Semaphore(concurrency) if concurrency else None
        started = time.monotonic()
        retries = command.get("retries", 0)
        runs = [
            asyncio.create_task(sock.run(gate, ticket, retries))
            for sock, ticket in zip(sockets, tickets, strict=True)
        ]
        # A deadline keeps a run bounded when the server cannot take them all.
        _, late = await asyncio.wait(runs, timeout=command.get("deadline"))
        for run in late:
            run.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        if late:
            self.stats.errors["connect deadline"] += len(late)
        ok = [not run.cancelled() and run.result() for run in runs]
        for sock, joined in zip(sockets, ok, strict=True):
            if not joined:
                await sock.close()
        self.sockets = [sock for sock, joined in zip(sockets, ok, strict=True) if joined]
        return {
            "event": "connected",
            "ok": len(self.sockets),
            "failed": len(sockets) - len(self.sockets),
            "started": started,
            "join_times": [sock.joined_at for sock in self.sockets],
            "retries": self.stats.connect_retries,
            "errors": dict(self.stats.errors),
        }

    def count(self, key: int) -> dict[str, Any]:
        received = sum(1 for sock in self.sockets if key in sock.received)
        return {"event": "count", "n": received, "frames": self.stats.frames}

    def storm(self, command: dict[str, Any]) -> dict[str, Any]:
        self.storming = asyncio.gather(
            *(
                sock.storm(seconds=command["seconds"], rate=command["rate"], emoji=command["emoji"])
                for sock in self.sockets
            )
        )
        return {"event": "storm_started"}

    async def storm_wait(self) -> dict[str, Any]:
        if self.storming is not None:
            await self.storming
        return {"event": "storm_done", "sent": self.stats.sent_reactions}

    def report(self) -> dict[str, Any]:
        keys = sorted({key for sock in self.sockets for key in sock.received})
        return {
            "event": "report",
            "sockets": len(self.sockets),
            "recv": {str(key): [sock.received.get(key) for sock in self.sockets] for key in keys},
            "samples": {str(key): text for key, text in self.stats.samples.items()},
            "reaction_max_per_s": max((sock.reaction_max for sock in self.sockets), default=0),
            "reaction_frames": self.stats.reaction_frames,
            "sent_reactions": self.stats.sent_reactions,
            "closes": self.stats.closes,
            "reconnects": self.stats.reconnects,
            "errors": dict(self.stats.errors),
        }

    async def close(self) -> dict[str, Any]:
        await asyncio.gather(*(sock.close() for sock in self.sockets))
        return {"event": "closed"}


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    client = Client()
    reply({"event": "ready"})
    while line := await reader.readline():
        command = json.loads(line)
        name = command["cmd"]
        if name == "connect":
            reply(await client.connect(command))
        elif name == "count":
            reply(client.count(command["key"]))
        elif name == "storm":
            reply(client.storm(command))
        elif name == "storm_wait":
            reply(await client.storm_wait())
        elif name == "report":
            reply(client.report())
        elif name == "close":
            reply(await client.close())
            return
        else:
            reply({"event": "error", "message": f"unknown command {name!r}"})


if __name__ == "__main__":
    uvloop.run(main())
