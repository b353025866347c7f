"""Fan-out benchmark: how long until a reveal reaches every socket.

Starts the real server (daphne, `--processes` of them; `--server uvicorn`
for a comparison) on PostgreSQL and
Redis, seeds a game, connects real WebSocket clients from separate processes
(bench/clients.py), makes real reveals through `games.services` in this
process, and measures when each socket receives its `leaderboard:update`.
In the same run it measures a bare `websockets` broadcast of the very same
frames (bench/reference_server.py) as the floor to compare with.

Modes (`--mode`, `all` runs them in sequence): fanout, connect-burst, memory,
reaction-storm. See bench/README.md. The last line printed is the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/fanout.py` from anywhere

from tests.liveserver import SERVERS, LiveStack  # noqa: E402

if TYPE_CHECKING:  # bench.seed imports models: only after django.setup()
    from bench.seed import SeededGame

BENCH = ROOT / "bench"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/envelope"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/2"
MODES = ("connect-burst", "memory", "reaction-storm", "fanout")
POLL_SECONDS = 0.05
# Handshakes in flight when not measuring a burst, and retries of a failed one:
# the point of those modes is every socket joined, not the connect path.
STEADY_CONCURRENCY = 50
STEADY_RETRIES = 5


def raise_fd_limit() -> int:
    """Soft NOFILE up to the hard limit; children (clients, daphne) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- statistics ------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    p50: float
    p99: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(math.nan, math.nan, math.nan, 0)
        ordered = sorted(values)

        def rank(q: float) -> float:  # nearest rank
            return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

        return cls(rank(0.50), rank(0.99), ordered[-1], len(ordered))

    def text(self, unit: str = " s") -> str:
        return f"p50 {self.p50:.3f}{unit} p99 {self.p99:.3f}{unit} max {self.max:.3f}{unit}"


@dataclass
class Delivery:
    """Receive latencies of a set of broadcasts, from the client reports."""

    latencies: list[float] = field(default_factory=list)
    missed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    closes: int = 0
    reaction_max_per_s: int = 0
    reaction_frames: int = 0
    sent_reactions: int = 0

    @classmethod
    def of(cls, reports: list[dict[str, Any]], sent_at: dict[int, float]) -> Delivery:
        result = cls()
        for report in reports:
            for key, started in sent_at.items():
                times = report["recv"].get(str(key), [None] * report["sockets"])
                result.latencies.extend(t - started for t in times if t is not None)
                result.missed += sum(1 for t in times if t is None)
            result.errors.update(report["errors"])
            result.reconnects += report["reconnects"]
            result.closes += report["closes"]
            result.reaction_max_per_s = max(result.reaction_max_per_s, report["reaction_max_per_s"])
            result.reaction_frames += report["reaction_frames"]
            result.sent_reactions += report["sent_reactions"]
        return result

    @property
    def spread(self) -> Spread:
        return Spread.of(self.latencies)


def errors_text(errors: Counter[str]) -> str:
    return ", ".join(f"{name}: {n}" for name, n in errors.most_common()) or "none"


# --- client processes ---------------------------------------------------------------


class ClientProcess:
    """One bench/clients.py process, spoken to in JSON lines."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "clients.py")],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.expect("ready")

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"client process {self.proc.pid} exited ({self.proc.wait()})")
        return json.loads(line)

    def expect(self, event: str) -> dict[str, Any]:
        message = self.read()
        if message.get("event") != event:
            raise RuntimeError(f"client process answered {message!r}, expected {event!r}")
        return message

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, RuntimeError):
                self.send({"cmd": "close"})
                self.expect("closed")
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass(frozen=True)
class Connected:
    ok: int
    failed: int
    started: float  # when the first process began its handshakes
    join_times: list[float]
    retries: int
    errors: Counter[str]


class ClientPool:
    """Enough client processes that the clients are not the bottleneck."""

    def __init__(self, sockets: int, per_process: int) -> None:
        self.processes: list[ClientProcess] = []
        for _ in range(max(1, math.ceil(sockets / per_process))):
            self.processes.append(ClientProcess())

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.stop()

    def _all(self, command: dict[str, Any], event: str) -> list[dict[str, Any]]:
        for process in self.processes:
            process.send(command)
        return [process.expect(event) for process in self.processes]

    def connect(
        self,
        targets: list[tuple[Any, ...]],  # [ws_url, origin, user_id(, game_id)]
        *,
        game_id: int | None,
        secret_key: str,
        concurrency: int,
        retries: int,
        deadline: float,
        board: str = "full",
    ) -> Connected:
        """Open every target; all processes start their handshakes together."""
        count = len(self.processes)
        for index, process in enumerate(self.processes):
            process.send(
                {
                    "cmd": "connect",
                    "targets": targets[index::count],
                    "game_id": game_id,
                    "secret_key": secret_key,
                    "concurrency": math.ceil(concurrency / count) if concurrency else 0,
                    "retries": retries,
                    "deadline": deadline,
                    "board": board,
                    "sample": index == 0,
                }
            )
        replies = [process.expect("connected") for process in self.processes]
        errors: Counter[str] = Counter()
        for message in replies:
            errors.update(message["errors"])
        return Connected(
            ok=sum(m["ok"] for m in replies),
            failed=sum(m["failed"] for m in replies),
            started=min(m["started"] for m in replies),
            join_times=[t for m in replies for t in m["join_times"]],
            retries=sum(m["retries"] for m in replies),
            errors=errors,
        )

    def received(self, key: int) -> int:
        return sum(m["n"] for m in self._all({"cmd": "count", "key": key}, "count"))

    def frames(self) -> int:
        return sum(m["frames"] for m in self._all({"cmd": "count", "key": 0}, "count"))

    def settle(self, busy: Callable[[], bool], *, timeout: float, quiet: float = 2.0) -> None:
        """Wait until no frame has arrived and the servers were idle for `quiet`
        seconds: the backlog that joins cause (presence frames) must not queue
        in front of the measured reveal. Frames alone are not enough: a server
        working through its channel-layer queues can be silent for seconds."""
        started = time.monotonic()
        last, last_change = self.frames(), time.monotonic()
        while time.monotonic() - last_change < quiet and time.monotonic() - started < timeout:
            time.sleep(0.5)
            frames = self.frames()
            if frames != last or busy():
                last, last_change = frames, time.monotonic()
        print(f"  quiet after {time.monotonic() - started:.1f} s ({last} frames received so far)")

    def wait_for(self, key: int, expected: int, timeout: float) -> int:
        """Poll until `expected` sockets have the update of `key` (or time out)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received(key)
            if got >= expected or time.monotonic() >= deadline:
                return got
            time.sleep(POLL_SECONDS)

    def storm(self, *, seconds: float, rate: float, emoji: str) -> None:
        self._all(
            {"cmd": "storm", "seconds": seconds, "rate": rate, "emoji": emoji}, "storm_started"
        )

    def storm_wait(self) -> None:
        self._all({"cmd": "storm_wait"}, "storm_done")

    def reports(self) -> list[dict[str, Any]]:
        return self._all({"cmd": "report"}, "report")


# --- the stack and the game -----------------------------------------------------------


class ServiceThread:
    """Calls a sync service the way daphne does for a view (the API, the admin,
    the host page): in a worker thread of a running event loop. The service's
    channel-layer sends (async_to_sync) then run on that loop and reuse its
    Redis connections. Called from a bare script instead, each send would
    start a new event loop and open a new Redis connection (5-6 ms per reveal
    here), a cost no request served by daphne pays."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def warm(self) -> None:
        """Open the thread's database connection and the loop's Redis
        connections, as a running server has them before the show."""
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer
        from django.db import connection

        def touch() -> None:
            connection.ensure_connection()
            async_to_sync(get_channel_layer().group_send)("bench.warm", {"type": "bench.warm"})

        self.call(touch)

    def call(self, function: Callable[..., Any], **kwargs: Any) -> Any:
        from asgiref.sync import sync_to_async

        return asyncio.run_coroutine_threadsafe(
            sync_to_async(function)(**kwargs), self.loop
        ).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Bench:
    """The running stack, Django configured against it, and the seeded games."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stack = LiveStack(
            processes=args.processes,
            server=args.server,
            database_url=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
        )
        self.games = 0
        self.services = ServiceThread()
        self._cpu: dict[int, tuple[float, float]] = {}  # pid -> (when, CPU seconds)

    def start(self) -> None:
        self.stack.start()
        # The same database, REDIS_URL and SECRET_KEY as the servers: reveals made
        # here reach their sockets through the channel layer, tickets are valid.
        os.environ.update(self.stack.env())
        import django

        django.setup()
        self.services.warm()

    def close(self) -> None:
        if self.args.logs:
            self.args.logs.mkdir(parents=True, exist_ok=True)
            for server in self.stack.servers:
                if server.log_path.exists():
                    (self.args.logs / server.log_path.name).write_text(server.log())
            print(f"server logs copied to {self.args.logs}")
        self.services.close()
        self.stack.close()

    @property
    def secret_key(self) -> str:
        return self.stack.env()["SECRET_KEY"]

    def restart_servers(self) -> None:
        """Fresh server processes per mode: no memory or sockets left from the last."""
        for server in self.stack.servers:
            server.restart()

    def seed(self, participants: int, players: int) -> SeededGame:
        from bench.seed import game_seed

        self.games += 1
        started = time.monotonic()
        seeded = game_seed(
            participants=participants,
            players=min(players, participants),
            label=f"{os.getpid()}-{self.games}",
        )
        print(
            f"  seeded game {seeded.game_id}: {participants} participants, "
            f"{min(players, participants)} players, in {time.monotonic() - started:.1f} s"
        )
        return seeded

    def targets(self, user_ids: list[int]) -> list[tuple[str, str, int]]:
        """One socket per user, round-robin over the server processes."""
        servers = self.stack.servers
        return [
            (servers[i % len(servers)].ws_url, servers[i % len(servers)].url, user_id)
            for i, user_id in enumerate(user_ids)
        ]

    def pool(self, sockets: int) -> ClientPool:
        return ClientPool(sockets, self.args.sockets_per_client)

    def connect(self, pool: ClientPool, seeded: SeededGame, *, burst: bool = False) -> Connected:
        return self.connect_targets(
            pool, self.targets(seeded.user_ids), game_id=seeded.game_id, burst=burst
        )

    def connect_targets(
        self,
        pool: ClientPool,
        targets: list[Any],
        *,
        game_id: int | None,
        burst: bool = False,
    ) -> Connected:
        """Open and join every target (a target may name its own game), and
        print how it went."""
        connected = pool.connect(
            targets,
            game_id=game_id,
            secret_key=self.secret_key,
            concurrency=0 if burst else STEADY_CONCURRENCY,
            retries=0 if burst else STEADY_RETRIES,
            deadline=self.args.connect_timeout,
            board=getattr(self.args, "board", "full"),
        )
        took = max(connected.join_times, default=connected.started) - connected.started
        print(
            f"  connected {connected.ok} sockets over {len(pool.processes)} client processes "
            f"in {took:.1f} s, {connected.failed} failed, {connected.retries} retried "
            f"(errors: {errors_text(connected.errors)})"
        )
        return connected

    def reveals(
        self, pool: ClientPool, seeded: SeededGame, indexes: Iterator[int], expected: int
    ) -> dict[int, float]:
        """Reveal categories one at a time; each fans out fully (or times out)
        before the next, so a reveal's latency is never another's queue."""
        from games.services import category_reveal

        sent_at: dict[int, float] = {}
        for index in indexes:
            category_id, nominations = seeded.categories[index]
            sent_at[category_id] = time.monotonic()
            self.services.call(
                category_reveal, category_id=category_id, nomination_id=nominations[0]
            )
            # The service call returns once the event is committed, rendered
            # and handed to the channel layer: the part no broadcast avoids.
            service = time.monotonic() - sent_at[category_id]
            got = pool.wait_for(category_id, expected, self.args.reveal_timeout)
            took = time.monotonic() - sent_at[category_id]
            print(
                f"  reveal {index + 1}: {got}/{expected} sockets in {took:.3f} s "
                f"(service call {service * 1000:.0f} ms)"
            )
        return sent_at

    def server_rss_kb(self) -> list[int]:
        sizes = []
        for server in self.stack.servers:
            assert server.process is not None
            status = Path(f"/proc/{server.process.pid}/status").read_text()
            line = next(ln for ln in status.splitlines() if ln.startswith("VmRSS:"))
            sizes.append(int(line.split()[1]))
        return sizes

    def servers_busy(self, threshold: float = 0.2) -> bool:
        """Whether any server process used more than `threshold` of a core since
        the last call (CPU time from /proc/<pid>/stat)."""
        now = time.monotonic()
        ticks = os.sysconf("SC_CLK_TCK")
        busy = False
        for server in self.stack.servers:
            assert server.process is not None
            fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
            previous = self._cpu.get(server.process.pid)
            if previous is None or (cpu - previous[1]) / (now - previous[0]) > threshold:
                busy = True
            self._cpu[server.process.pid] = (now, cpu)
        return busy

    def server_tracebacks(self) -> int:
        return sum(server.log().count("Traceback") for server in self.stack.servers)


# --- modes --------------------------------------------------------------------------------


def reference_delivery(bench: Bench, samples: dict[int, str], sockets: int) -> Delivery:
    """Broadcast the server's own frames from the bare websockets server."""
    server = subprocess.Popen(
        [sys.executable, str(BENCH / "reference_server.py")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        port = json.loads(server.stdout.readline())["port"]
        url, origin = f"ws://127.0.0.1:{port}/", f"http://127.0.0.1:{port}"
        with bench.pool(sockets) as pool:
            connected = pool.connect(
                [(url, origin, 0)] * sockets,
                game_id=None,
                secret_key="",
                concurrency=STEADY_CONCURRENCY,
                retries=STEADY_RETRIES,
                deadline=bench.args.connect_timeout,
            )
            print(f"  reference: connected {connected.ok}, {connected.failed} failed")
            sent_at: dict[int, float] = {}
            for index, (key, text) in enumerate(samples.items()):
                sent_at[key] = time.monotonic()
                server.stdin.write(json.dumps({"cmd": "broadcast", "text": text}) + "\n")
                server.stdin.flush()
                server.stdout.readline()
                got = pool.wait_for(key, connected.ok, bench.args.reveal_timeout)
                took = time.monotonic() - sent_at[key]
                print(f"  reference broadcast {index + 1}: {got}/{connected.ok} in {took:.3f} s")
            return Delivery.of(pool.reports(), sent_at)
    finally:
        with contextlib.suppress(OSError):
            server.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            server.stdin.flush()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def mode_fanout(bench: Bench) -> str:
    args = bench.args
    seeded = bench.seed(args.clients, args.payload_players)
    with bench.pool(args.clients) as pool:
        connected = bench.connect(pool, seeded)
        pool.settle(bench.servers_busy, timeout=args.settle_timeout)
        sent_at = bench.reveals(pool, seeded, iter(range(args.reveals)), connected.ok)
        reports = pool.reports()
    server = Delivery.of(reports, sent_at)  # the reports' errors include connect failures
    samples = {int(k): v for report in reports for k, v in report["samples"].items()}
    sizes = sorted({len(text.encode()) for text in samples.values()})
    frame = f"frame {sizes[-1] / 1024:.1f} KB" if sizes else "no frame captured"
    print(f"  server: {server.spread.text()} ({frame}; errors: {errors_text(server.errors)})")
    reference_text, ratio_text = "reference skipped", ""
    if not args.skip_reference and not samples:
        reference_text = "no reference: no socket received a frame to replay"
    elif not args.skip_reference:
        reference = reference_delivery(bench, samples, connected.ok)
        print(f"  reference: {reference.spread.text()}; missed {reference.missed}")
        ref = reference.spread
        reference_text = (
            f"reference p50 {ref.p50:.3f} p99 {ref.p99:.3f} max {ref.max:.3f}"
            f" missed {reference.missed}"
        )
        ratio_text = f" | ratio p99 {server.spread.p99 / ref.p99:.1f}x"
    return (
        f"fanout: {args.clients} sockets, {args.processes} {args.server}, "
        f"{min(args.payload_players, args.clients)} players ({frame}, {args.board} board), "
        f"{args.reveals} reveals: "
        f"{server.spread.text()} | {reference_text}{ratio_text} | missed {server.missed} "
        f"errors {connected.failed + server.closes} reconnects {server.reconnects}"
    )


def mode_connect_burst(bench: Bench) -> str:
    args = bench.args
    seeded = bench.seed(args.clients, args.payload_players)
    with bench.pool(args.clients) as pool:
        connected = bench.connect(pool, seeded, burst=True)  # all together
        joined = Spread.of([t - connected.started for t in connected.join_times])
    print(f"  joined after: {joined.text()}")
    return (
        f"connect-burst: {args.clients} sockets at once, {args.processes} {args.server}: "
        f"all joined in {joined.max:.2f} s (p50 {joined.p50:.2f} s) | "
        f"joined {connected.ok} failed {connected.failed} | "
        f"errors {errors_text(connected.errors)}"
    )


def mode_memory(bench: Bench) -> str:
    args = bench.args
    seeded = bench.seed(args.clients, args.payload_players)
    time.sleep(args.settle)
    before = bench.server_rss_kb()
    with bench.pool(args.clients) as pool:
        connected = bench.connect(pool, seeded)
        # Idle, joined sockets; no forced gc: this is what a real show would hold.
        pool.settle(bench.servers_busy, timeout=args.settle_timeout)
        time.sleep(args.settle)
        after = bench.server_rss_kb()
    grown = sum(after) - sum(before)
    per_socket = grown / max(1, connected.ok)
    print(f"  RSS per process before {before} KB, after {after} KB")
    return (
        f"memory: {connected.ok} idle joined sockets, {args.processes} {args.server}: "
        f"RSS {sum(before) / 1024:.1f} -> {sum(after) / 1024:.1f} MB, "
        f"{per_socket:.1f} KB per connection (target <= 25) | failed {connected.failed}"
    )


def mode_reaction_storm(bench: Bench) -> str:
    args = bench.args
    sockets = args.storm_clients
    seeded = bench.seed(sockets, args.payload_players)
    storm_reveals = max(1, int((args.storm_seconds - 4) // args.storm_reveal_every))
    if args.reveals + storm_reveals > len(seeded.categories) - 1:
        raise SystemExit("too many reveals for the ceremony: lower --reveals or --storm-seconds")
    with bench.pool(sockets) as pool:
        connected = bench.connect(pool, seeded)
        pool.settle(bench.servers_busy, timeout=args.settle_timeout)
        print("  quiet reveals")
        quiet_at = bench.reveals(pool, seeded, iter(range(args.reveals)), connected.ok)
        print(f"  storm: {sockets} sockets x 1 reaction/s for {args.storm_seconds:.0f} s")
        storm_start = time.monotonic()
        pool.storm(seconds=args.storm_seconds, rate=1.0, emoji="🔥")
        storm_at: dict[int, float] = {}
        for number in range(storm_reveals):
            # First reveal 2 s in, when every socket is sending.
            time.sleep(
                max(0.0, storm_start + 2 + number * args.storm_reveal_every - time.monotonic())
            )
            index = args.reveals + number
            storm_at.update(bench.reveals(pool, seeded, iter([index]), connected.ok))
        pool.storm_wait()
        reports = pool.reports()
    quiet = Delivery.of(reports, quiet_at)
    storm = Delivery.of(reports, storm_at)
    rate_limited = storm.errors.get("frame RATE_LIMITED", 0)
    print(f"  quiet: {quiet.spread.text()}")
    print(f"  storm: {storm.spread.text()}")
    print(
        f"  reactions sent {storm.sent_reactions}, reaction frames received "
        f"{storm.reaction_frames}, RATE_LIMITED {rate_limited}; errors: {errors_text(storm.errors)}"
    )
    return (
        f"reaction-storm: {sockets} sockets, {args.processes} {args.server}, "
        f"{args.storm_seconds:.0f} s: reveal p99 quiet {quiet.spread.p99:.3f} s, "
        f"storm {storm.spread.p99:.3f} s (max {storm.spread.max:.3f} s) | "
        f"max {storm.reaction_max_per_s} reaction frames/s per client (target <= 5) | "
        f"missed {quiet.missed + storm.missed} errors {connected.failed + storm.closes} "
        f"reconnects {storm.reconnects}"
    )


RUNNERS = {
    "fanout": mode_fanout,
    "connect-burst": mode_connect_burst,
    "memory": mode_memory,
    "reaction-storm": mode_reaction_storm,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=(*MODES, "all"), default="fanout")
    parser.add_argument("--clients", type=int, default=2000, help="sockets (default 2000)")
    parser.add_argument("--processes", type=int, default=1, help="server processes (default 1)")
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default="daphne",
        help="daphne (production) or uvicorn (a comparison); default daphne",
    )
    parser.add_argument(
        "--payload-players", type=int, default=None, help="leaderboard rows (default: --clients)"
    )
    parser.add_argument(
        "--board",
        choices=("full", "top"),
        default="full",
        help="the leaderboard form clients join with (default full; top: leaderboard.top)",
    )
    parser.add_argument("--reveals", type=int, default=3, help="measured reveals (default 3)")
    parser.add_argument("--skip-reference", action="store_true", help="no websockets reference")
    parser.add_argument(
        "--sockets-per-client", type=int, default=1000, help="sockets per client process"
    )
    parser.add_argument("--reveal-timeout", type=float, default=30.0, help="seconds per reveal")
    parser.add_argument(
        "--connect-timeout", type=float, default=240.0, help="give up joining after (s)"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=120.0, help="most to wait for idle servers (s)"
    )
    parser.add_argument("--settle", type=float, default=5.0, help="memory mode: idle seconds")
    parser.add_argument("--storm-clients", type=int, default=1000, help="reaction-storm sockets")
    parser.add_argument("--storm-seconds", type=float, default=30.0, help="reaction-storm length")
    parser.add_argument(
        "--storm-reveal-every", type=float, default=5.0, help="seconds between storm reveals"
    )
    parser.add_argument("--logs", type=Path, help="copy the server logs to this directory")
    args = parser.parse_args(argv)
    if args.payload_players is None:
        args.payload_players = args.clients
    if not 1 <= args.reveals <= 23:
        parser.error("--reveals must be between 1 and 23 (the ceremony has 24 categories)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows up when piped too
    limit = raise_fd_limit()
    modes = MODES if args.mode == "all" else (args.mode,)
    bench = Bench(args)
    print(f"starting {args.processes} {args.server} (fd limit {limit})")
    summaries: list[str] = []
    try:
        bench.start()
        for number, mode in enumerate(modes):
            if number:
                bench.restart_servers()
            print(f"[{mode}]")
            summaries.append(RUNNERS[mode](bench))
            print(f"  server tracebacks so far: {bench.server_tracebacks()}")
    finally:
        bench.close()
    for summary in summaries:
        print(summary)


if __name__ == "__main__":
    main()
