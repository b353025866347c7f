"""Side by side: Envelope, a bare broadcast and a Socket.IO 4 peer, in one run,
driven by the same fast clients (bench/fast_client.py: picows on uvloop).

For each server, one process of it, N sockets (`--clients`, default 2,000) of
one game:

- **join**: wall time from the first connect to the last join answer
  (Envelope: `joined`; bare: the WebSocket open; Socket.IO: the ack of
  `join`), `--concurrency` sessions starting at once over all client processes;
- **frames per socket during the join burst**: every frame received from the
  first connect until the server and the clients are quiet, by type;
- **KB per idle joined socket**: server VmRSS (/proc/PID/status) once idle
  after the joins, minus before connecting, divided by the joined sockets;
- **reveal latency** p50 / p99 / max over `--reveals` reveals (after
  `--warmup` ones, not counted): from the trigger to each socket's arrival.
  Envelope's trigger is the staff's reveal, `POST /api/categories/{id}/winner`
  with a staff token, through the API of the one daphne process (the request's
  transaction, commit, render and fan-out all inside the measured time). The
  bare server's trigger is the bench writing the broadcast command to its
  stdin, the Socket.IO peer's a `POST /broadcast/<key>` (its connection opened
  before the clock). Both broadcast the very frames Envelope sent, byte for
  byte, captured by a client.
- **first ms**: per reveal, from the trigger to the first socket having it
  (median over the reveals): for Envelope the reveal's own path (HTTP, the
  transaction with its render, the commit, the channel layer and one write).

Envelope runs first (its frames are the others' payloads) and its stack is
stopped before the others start. The Socket.IO peer needs `node` and `npm`:
socket.io (pinned in bench/socketio_peer/package.json) is installed into a
temporary folder with `npm install --prefix`; without node it is skipped with
a message. See bench/README.md, "Side by side".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/sidebyside.py` from anywhere

from bench.fanout import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    Bench,
    ClientPool,
    ClientProcess,
    Spread,
    errors_text,
    raise_fd_limit,
)
from bench.parties import staff_request, staff_reveal  # noqa: E402
from tests.liveserver import LiveStack  # noqa: E402

BENCH = ROOT / "bench"
PEER = BENCH / "socketio_peer"
# Our Redis database on the shared server: the stack FLUSHES it at the start.
# REDIS_URL in the environment is ignored, so no other database is flushed.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"
DB_PREFIX = "bench_sbs_"
QUIET_SECONDS = 2.0
BUSY_SHARE = 0.2  # a server using more than 20 % of a core is not idle yet

# Targets, printed beside the figures (never asserted): issue "Performance", item 4.
TARGET_JOIN_VS_SIO = 2.0  # Envelope's join time <= 2x Socket.IO's
TARGET_P99_VS_SIO = 1.0  # Envelope's reveal p99 <= Socket.IO's
TARGET_P99_VS_BARE = 1.5  # ... and <= 1.5x the bare broadcast's
TARGET_PRESENCE_PER_SOCKET = 10  # presence:diff frames per socket during the burst
TARGET_KB_PER_SOCKET = 20.0


# --- /proc ----------------------------------------------------------------------------


def vmrss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time of a process (all its threads). /proc/<pid>/schedstat counts
    nanoseconds; /proc/<pid>/stat only clock ticks (10 ms), too coarse for a
    reveal window of tens of milliseconds."""
    with contextlib.suppress(OSError):
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU share of a set of processes between two calls (1.0 = one core)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.mark()

    def mark(self) -> None:
        self.at = time.monotonic()
        self.cpu = [cpu_seconds(pid) for pid in self.pids]

    def used(self) -> tuple[list[float], float]:
        """CPU seconds of each process and the wall time since the last mark;
        marks again."""
        at, cpu = self.at, self.cpu
        self.mark()
        return [now - then for now, then in zip(self.cpu, cpu, strict=True)], self.at - at

    def shares(self) -> list[float]:
        """Each process's share of a core since the last mark; marks again."""
        used, wall = self.used()
        return [u / max(1e-6, wall) for u in used]


def percent(shares: list[float]) -> str:
    return "/".join(f"{share * 100:.0f}%" for share in shares)


# --- the fast client processes -----------------------------------------------------------


class FastProcess(ClientProcess):
    """One bench/fast_client.py process, spoken to in JSON lines (the parent
    side of bench/fanout.py's ClientProcess, another child)."""

    def __init__(self, dialect: str) -> None:  # not super(): it starts clients.py
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "fast_client.py"), "--dialect", dialect],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.expect("ready")


@dataclass
class Joined:
    ok: int
    failed: int
    seconds: float  # first connect to last join answer
    p50: float  # the median socket's join answer, from the first connect
    retries: int
    errors: Counter[str]


class FastPool(ClientPool):
    """Enough fast client processes that the clients are never the bottleneck
    (bench/fanout.py's pool, with bench/fast_client.py processes)."""

    def __init__(self, dialect: str, sockets: int, per_process: int) -> None:
        count = max(1, math.ceil(sockets / per_process))
        self.processes = [FastProcess(dialect) for _ in range(count)]  # type: ignore[misc]
        self.cpu = CpuMeter([p.proc.pid for p in self.processes])

    def connect(self, sockets: int, command: dict[str, Any], user_ids: list[int]) -> Joined:
        """Every process starts its share at the same moment; `concurrency` is
        shared out between them."""
        count = len(self.processes)
        for index, process in enumerate(self.processes):
            share = user_ids[index::count] if user_ids else []
            urls = command.get("urls")
            url, origin = urls[index % len(urls)] if urls else (command["url"], command["origin"])
            process.send(
                {
                    **command,
                    "url": url,
                    "origin": origin,
                    "cmd": "connect",
                    "count": len(range(index, sockets, count)),
                    "user_ids": share,
                    "concurrency": math.ceil(command["concurrency"] / count),
                    "sample": index == 0,
                }
            )
        replies = [process.expect("connected") for process in self.processes]
        errors: Counter[str] = Counter()
        for reply in replies:
            errors.update(reply["errors"])
        started = min(reply["started"] for reply in replies)
        times = [t - started for reply in replies for t in reply["join_times"]]
        spread = Spread.of(times)
        return Joined(
            ok=sum(r["ok"] for r in replies),
            failed=sum(r["failed"] for r in replies),
            seconds=spread.max if times else math.nan,
            p50=spread.p50,
            retries=sum(r["retries"] for r in replies),
            errors=errors,
        )

    def frames(self) -> tuple[int, Counter[str], Counter[str]]:
        """Frames received so far: (all, by type, the most one socket got by type)."""
        total: Counter[str] = Counter()
        most: Counter[str] = Counter()
        frames = 0
        for reply in self._all({"cmd": "frames"}, "frames"):
            frames += reply["all"]
            total.update(reply["total"])
            for kind, n in reply["max"].items():
                most[kind] = max(most[kind], n)
        return frames, total, most

    def quiet(self, busy: Callable[[], bool], *, timeout: float) -> float:
        """Wait until no frame has arrived and the server was idle for 2 s: the
        backlog that joining causes (presence) must be over before the memory is
        read and before a reveal is timed. Returns how long it took."""
        started = time.monotonic()
        last, last_change = self.frames()[0], time.monotonic()
        while (
            time.monotonic() - last_change < QUIET_SECONDS and time.monotonic() - started < timeout
        ):
            time.sleep(0.5)
            frames = self.frames()[0]
            if frames != last or busy():
                last, last_change = frames, time.monotonic()
        return time.monotonic() - started

    def wait(self, key: int, timeout: float) -> int:
        """Until every socket has the reveal `key` (or `timeout`): each process
        answers when all of its sockets have it, no polling."""
        return sum(
            r["n"] for r in self._all({"cmd": "wait", "key": key, "timeout": timeout}, "waited")
        )

    def reports(self) -> list[dict[str, Any]]:
        return self._all({"cmd": "report"}, "report")


# --- the servers -----------------------------------------------------------------------


class SbsStack(LiveStack):
    """tests/liveserver.py's stack, with its database named `bench_sbs_…`:
    this bench may create and drop only databases of that name on the shared
    PostgreSQL. LiveStack names its own (`envelope_e2e_…`) inside start();
    this property renames it on assignment, so the stack's start-up (which
    others may change) is reused as is."""

    @property  # type: ignore[override]
    def _db_name(self) -> str:
        return self.__dict__.get("_sbs_db_name", "")

    @_db_name.setter
    def _db_name(self, name: str) -> None:
        if name and not name.startswith(DB_PREFIX):
            name = f"{DB_PREFIX}{uuid.uuid4().hex[:10]}"
        self.__dict__["_sbs_db_name"] = name


class Server:
    """What the bench needs of a server under test."""

    name = ""
    dialect = ""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.meter: CpuMeter | None = None

    @property
    def pid(self) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        """Anything the server reports about itself, printed with the RSS."""
        return ""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def connect_command(self) -> tuple[dict[str, Any], list[int]]:
        """The `connect` command for the clients, and the user ids (Envelope)."""
        raise NotImplementedError

    def reveal_keys(self) -> list[int]:
        """The reveal keys, warm-up first, in order."""
        raise NotImplementedError

    def trigger(self, key: int) -> tuple[float, str]:
        """Make the reveal `key`; (when it started, a note on the trigger)."""
        raise NotImplementedError

    @property
    def pids(self) -> list[int]:
        """Every process of the server (Envelope may run several)."""
        return [self.pid]

    def busy(self) -> bool:
        """Whether any server process used more than BUSY_SHARE of a core since the last call."""
        if self.meter is None:
            self.meter = CpuMeter(self.pids)
            return True
        return max(self.meter.shares()) > BUSY_SHARE

    def rss_kb(self) -> int:
        return sum(vmrss_kb(pid) for pid in self.pids)


class Envelope(Server):
    """daphne on PostgreSQL and Redis (one process, or `--processes` sharing
    Redis, the sockets spread evenly), started as bench/fanout.py starts it
    (its Bench: LiveStack, bench/seed.py's game_seed, the warm service
    thread), with a staff token for the reveal POST (to the first process)."""

    name = "envelope"
    dialect = "envelope"

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        # fanout.Bench reads these; daphne, the production server.
        args.server = "daphne"
        self.bench = Bench(args)
        self.bench.stack = SbsStack(
            processes=args.processes,
            server="daphne",
            database_url=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=args.redis_url,
        )
        self.token = ""
        self.stopped = False

    @property
    def pid(self) -> int:
        process = self.bench.stack.servers[0].process
        assert process is not None
        return process.pid

    @property
    def pids(self) -> list[int]:
        return [server.process.pid for server in self.bench.stack.servers if server.process]

    @property
    def url(self) -> str:
        return self.bench.stack.servers[0].url

    def start(self) -> None:
        self.bench.start()  # django.setup() too
        from bench.seed import staff_token_ensure  # imports models: after django.setup()

        print(f"  database {self.bench.stack._db_name}, Redis {self.args.redis_url} (flushed)")
        self.seeded = self.bench.seed(self.args.clients, self.args.payload_players)
        self.token = self.bench.services.call(staff_token_ensure)
        # One authenticated API read: the request path (token auth, DRF, the
        # ORM) is loaded before the first timed POST, as on a running server.
        answer = staff_request(self.url, self.token, "GET", "/api/auth/me")
        if answer.status != 200:
            raise RuntimeError(f"warm-up GET: HTTP {answer.status}: {answer.body[:300]}")

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.bench.close()

    def connect_command(self) -> tuple[dict[str, Any], list[int]]:
        servers = self.bench.stack.servers
        command = {
            "url": servers[0].ws_url,
            # FastPool gives client process i the server i % len(urls).
            "urls": [(server.ws_url, server.url) for server in servers],
            "origin": servers[0].url,
            "game_id": self.seeded.game_id,
            "secret_key": self.bench.secret_key,
        }
        return command, self.seeded.user_ids

    def reveal_keys(self) -> list[int]:
        return [cat for cat, _ in self.seeded.categories[: self.args.warmup + self.args.reveals]]

    def trigger(self, key: int) -> tuple[float, str]:
        nominations = dict(self.seeded.categories)[key]
        post = staff_reveal(self.url, self.token, key, nominations[0])
        if post.status != 200:
            raise RuntimeError(f"the reveal POST failed: HTTP {post.status}: {post.body[:300]}")
        return post.started, f"staff POST {post.took * 1000:.0f} ms"


class Replayer(Server):
    """A server that broadcasts the frames Envelope sent (`samples`)."""

    def __init__(self, args: argparse.Namespace, samples: dict[int, str]) -> None:
        super().__init__(args)
        self.samples = samples
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def reveal_keys(self) -> list[int]:
        return list(self.samples)

    def read_port(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} exited ({self.process.wait()})")
        self.port = json.loads(line)["port"]

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.quit(self.process.stdin)
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def quit(self, stdin: Any) -> None:
        """How to ask the process to exit (closing stdin follows)."""


class Bare(Replayer):
    """bench/reference_server.py: one `websockets.broadcast` of the text."""

    name = "bare"
    dialect = "bare"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "reference_server.py")],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.read_port()

    def quit(self, stdin: Any) -> None:
        stdin.write(json.dumps({"cmd": "quit"}) + "\n")
        stdin.flush()

    def connect_command(self) -> tuple[dict[str, Any], list[int]]:
        url = f"ws://127.0.0.1:{self.port}/"
        return {"url": url, "origin": f"http://127.0.0.1:{self.port}"}, []

    def trigger(self, key: int) -> tuple[float, str]:
        assert self.process is not None and self.process.stdin is not None
        assert self.process.stdout is not None
        line = json.dumps({"cmd": "broadcast", "text": self.samples[key]}) + "\n"
        started = time.monotonic()
        self.process.stdin.write(line)
        self.process.stdin.flush()
        sent = json.loads(self.process.stdout.readline())
        return started, f"broadcast to {sent.get('count')}"


class SocketIO(Replayer):
    """bench/socketio_peer/server.js on Node.js, socket.io from npm."""

    name = "socket.io"
    dialect = "socketio"

    def __init__(self, args: argparse.Namespace, samples: dict[int, str], modules: Path) -> None:
        super().__init__(args, samples)
        self.modules = modules

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(PEER / "server.js")],
            cwd=PEER,
            env={**os.environ, "NODE_PATH": str(self.modules)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.read_port()
        for key, text in self.samples.items():
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/payload/{key}", data=text.encode(), method="PUT"
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()

    def connect_command(self) -> tuple[dict[str, Any], list[int]]:
        url = f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket"
        # game_id: what the join event carries (the peer has one room anyway).
        return {"url": url, "origin": f"http://127.0.0.1:{self.port}", "game_id": 1}, []

    def trigger(self, key: int) -> tuple[float, str]:
        post = staff_request(f"http://127.0.0.1:{self.port}", "", "POST", f"/broadcast/{key}")
        if post.status != 200:
            raise RuntimeError(f"broadcast POST failed: HTTP {post.status}: {post.body[:300]}")
        return post.started, f"POST {post.took * 1000:.0f} ms"

    def describe(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as answer:
            stats = json.loads(answer.read())
        return (
            f"the peer's GET /stats: rss {stats['rss'] / 2**20:.1f} MB, heapUsed "
            f"{stats['heapUsed'] / 2**20:.1f} MB, {stats['sockets']} Engine.IO clients"
        )


def socketio_install(target: Path) -> tuple[Path | None, str]:
    """socket.io into `target` (a temporary folder, or `--npm-dir`, reused if
    already there): the node_modules path, or None and why not."""
    if shutil.which("node") is None:
        return None, "skipped: `node` not found (Debian: apt-get install nodejs npm)"
    if shutil.which("npm") is None:
        return None, "skipped: `npm` not found (Debian: apt-get install npm)"
    modules = target / "node_modules"
    if (modules / "socket.io" / "package.json").exists():
        return modules, f"socket.io already in {target}"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(PEER / "package.json", target / "package.json")
    started = time.monotonic()
    result = subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(target),
            "--no-audit",
            "--no-fund",
            "--omit=dev",
            "--loglevel=error",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        return None, f"skipped: npm install failed:\n{result.stderr[-2000:]}"
    version = json.loads((modules / "socket.io" / "package.json").read_text())["version"]
    return (
        modules,
        f"socket.io {version} installed in {target} in {time.monotonic() - started:.0f} s",
    )


# --- one server's run --------------------------------------------------------------------


@dataclass
class Result:
    name: str
    joined: Joined | None = None
    quiet_after: float = math.nan
    frames: Counter[str] = field(default_factory=Counter)  # during the burst, by type
    frames_max: Counter[str] = field(default_factory=Counter)
    rss_before: int = 0
    rss_after: int = 0
    latencies: list[float] = field(default_factory=list)
    # Per measured reveal: the trigger to the first socket having it (the
    # reveal's own path: for Envelope the POST, its transaction, the send).
    firsts: list[float] = field(default_factory=list)
    missed: int = 0
    closes: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    client_cpu_join: list[float] = field(default_factory=list)
    client_cpu_reveal: list[float] = field(default_factory=list)  # over the reveal windows
    samples: dict[int, str] = field(default_factory=dict)
    skipped: str = ""

    @property
    def sockets(self) -> int:
        return self.joined.ok if self.joined else 0

    @property
    def kb_per_socket(self) -> float:
        return (self.rss_after - self.rss_before) / self.sockets if self.sockets else math.nan

    @property
    def spread(self) -> Spread:
        return Spread.of(self.latencies)

    def per_socket(self, kind: str) -> float:
        return self.frames[kind] / self.sockets if self.sockets else math.nan


def run_server(server: Server, args: argparse.Namespace) -> Result:
    result = Result(server.name)
    print(f"[{server.name}]")
    server.start()
    # Idle before the first RSS reading (start-up, seeding and the warm-up
    # request may still be finishing), then --settle seconds more.
    deadline = time.monotonic() + args.settle_timeout
    server.busy()  # the first CPU mark
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if not server.busy():
            break
    time.sleep(args.settle)
    result.rss_before = server.rss_kb()
    command, user_ids = server.connect_command()
    command.update(
        concurrency=args.concurrency, retries=args.retries, deadline=args.connect_timeout
    )
    with FastPool(server.dialect, args.clients, args.sockets_per_client) as pool:
        pool.cpu.mark()
        result.joined = joined = pool.connect(args.clients, command, user_ids)
        result.client_cpu_join = pool.cpu.shares()
        print(
            f"  joined {joined.ok}/{args.clients} in {joined.seconds:.2f} s "
            f"(p50 {joined.p50:.2f} s) over {len(pool.processes)} client processes "
            f"({percent(result.client_cpu_join)} of a core each); failed {joined.failed}, "
            f"retried {joined.retries} (errors: {errors_text(joined.errors)})"
        )
        result.quiet_after = pool.quiet(server.busy, timeout=args.settle_timeout)
        _, result.frames, result.frames_max = pool.frames()
        by_type = ", ".join(
            f"{kind} {n / max(1, joined.ok):.2f} (max {result.frames_max[kind]})"
            for kind, n in sorted(result.frames.items())
        )
        print(
            f"  quiet {result.quiet_after:.1f} s after the last join; "
            f"frames per socket during the burst: {by_type or 'none'}"
        )
        time.sleep(args.settle)  # idle, joined sockets: what a show holds (no forced gc)
        result.rss_after = server.rss_kb()
        print(
            f"  RSS {result.rss_before / 1024:.1f} -> {result.rss_after / 1024:.1f} MB: "
            f"{result.kb_per_socket:.1f} KB per idle joined socket"
        )
        if note := server.describe():
            print(f"  {note}")
        measured: dict[int, float] = {}
        # Client CPU over the measured reveals: CPU seconds summed over their
        # windows (trigger to the last socket) / the windows' wall time.
        reveal_cpu = [0.0] * len(pool.processes)
        reveal_wall = 0.0
        for number, key in enumerate(server.reveal_keys()):
            warmup = number < args.warmup
            pool.cpu.mark()
            started, note = server.trigger(key)
            got = pool.wait(key, args.reveal_timeout)
            used, window = pool.cpu.used()
            shares = [u / max(1e-6, window) for u in used]
            took = time.monotonic() - started
            label = "warm-up" if warmup else f"reveal {number - args.warmup + 1}"
            print(
                f"  {label}: {note} | {got}/{joined.ok} sockets in {took * 1000:.0f} ms "
                f"| clients {percent(shares)} of a core"
            )
            if warmup:
                # What the warm-up woke must not queue in front of the measured ones.
                pool.quiet(server.busy, timeout=args.settle_timeout)
                continue
            measured[key] = started
            reveal_wall += window
            reveal_cpu = [c + u for c, u in zip(reveal_cpu, used, strict=True)]
            time.sleep(args.pause)
        result.client_cpu_reveal = [c / reveal_wall for c in reveal_cpu] if reveal_wall else []
        firsts: dict[int, float] = {}
        for report in pool.reports():
            for key, started in measured.items():
                times = report["recv"].get(str(key), [None] * report["sockets"])
                got = [t - started for t in times if t is not None]
                result.latencies.extend(got)
                result.missed += len(times) - len(got)
                if got:
                    firsts[key] = min(firsts.get(key, math.inf), min(got))
            result.samples.update({int(k): v for k, v in report["samples"].items()})
            result.closes += report["closes"]
            result.errors.update(report["errors"])
        result.firsts = list(firsts.values())
    print(
        f"  reveals: {result.spread.text(' s')}; first socket "
        f"{ms(statistics.median(result.firsts)) if result.firsts else 'n/a'} ms (median); "
        f"missed {result.missed}, "
        f"closed {result.closes} (errors: {errors_text(result.errors)})"
    )
    return result


# --- the summary ------------------------------------------------------------------------


def processes_text(processes: int) -> str:
    if processes == 1:
        return "one server process each"
    return f"Envelope on {processes} daphne processes, the others on one"


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def summary(results: dict[str, Result], args: argparse.Namespace, frame_kb: float) -> list[str]:
    lines = [
        f"side by side: {args.clients} sockets of one game, "
        f"{processes_text(args.processes)}, "
        f"{args.reveals} reveals (+{args.warmup} warm-up), frame {frame_kb:.1f} KB, "
        f"{args.concurrency or 'all'} sessions starting at once",
        f"{'server':<10} {'joined':>9} {'join s':>7} {'first ms':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'KB/sock':>8} {'missed':>6}  frames/socket in the burst; clients CPU",
    ]
    for name in ("envelope", "bare", "socket.io"):
        result = results.get(name)
        if result is None:
            continue
        if result.skipped or result.joined is None:
            lines.append(f"{name:<10} {result.skipped or 'not run'}")
            continue
        spread = result.spread
        frames = ", ".join(
            f"{kind} {result.per_socket(kind):.1f}" for kind, _ in result.frames.most_common()
        )
        frames = frames or "no frame"
        first = ms(statistics.median(result.firsts)) if result.firsts else "n/a"
        lines.append(
            f"{name:<10} {result.sockets:>4}/{args.clients:<4} {result.joined.seconds:>7.2f} "
            f"{first:>8} {ms(spread.p50):>7} {ms(spread.p99):>7} {ms(spread.max):>7} "
            f"{result.kb_per_socket:>8.1f} {result.missed:>6}  {frames}; "
            f"join {percent(result.client_cpu_join)}, reveal {percent(result.client_cpu_reveal)}"
        )
    env, bare, sio = results.get("envelope"), results.get("bare"), results.get("socket.io")

    def usable(result: Result | None) -> Result | None:
        return result if result is not None and result.sockets and not result.skipped else None

    env, bare, sio = usable(env), usable(bare), usable(sio)
    if env is None:
        return lines
    lines.append("targets (issue 'Performance', item 4; printed, not asserted):")
    if sio is not None and env.joined and sio.joined:
        r = ratio(env.joined.seconds, sio.joined.seconds)
        lines.append(
            f"  join: Envelope {env.joined.seconds:.2f} s = {r:.1f}x Socket.IO's "
            f"{sio.joined.seconds:.2f} s (target <= {TARGET_JOIN_VS_SIO:.0f}x) "
            f"{verdict(r <= TARGET_JOIN_VS_SIO)}"
        )
        r = ratio(env.spread.p99, sio.spread.p99)
        lines.append(
            f"  reveal p99 vs Socket.IO: {ms(env.spread.p99)} / {ms(sio.spread.p99)} ms = "
            f"{r:.2f}x (target <= {TARGET_P99_VS_SIO:.0f}x) {verdict(r <= TARGET_P99_VS_SIO)}"
        )
    else:
        lines.append("  join and reveal p99 vs Socket.IO: n/a (Socket.IO peer not run)")
    if bare is not None:
        r = ratio(env.spread.p99, bare.spread.p99)
        lines.append(
            f"  reveal p99 vs bare: {ms(env.spread.p99)} / {ms(bare.spread.p99)} ms = {r:.2f}x "
            f"(target <= {TARGET_P99_VS_BARE}x) {verdict(r <= TARGET_P99_VS_BARE)}"
        )
        if sio is not None and env.joined and bare.joined:
            join_vs_bare = ratio(env.joined.seconds, bare.joined.seconds)
            sio_vs_bare = ratio(sio.spread.p99, bare.spread.p99)
            lines.append(
                f"  (for reference: Envelope's join {join_vs_bare:.1f}x bare's; "
                f"Socket.IO's reveal p99 {sio_vs_bare:.2f}x bare's)"
            )
    presence = env.per_socket("presence:diff")
    lines.append(
        f"  presence:diff frames per socket during the burst: {presence:.1f} mean, "
        f"{env.frames_max['presence:diff']} at most (target <= {TARGET_PRESENCE_PER_SOCKET}, "
        f"on the mean) {verdict(presence <= TARGET_PRESENCE_PER_SOCKET)}"
    )
    lines.append(
        f"  memory: {env.kb_per_socket:.1f} KB per idle joined socket "
        f"(target <= {TARGET_KB_PER_SOCKET:.0f}) "
        f"{verdict(env.kb_per_socket <= TARGET_KB_PER_SOCKET)}"
        + (f"; bare {bare.kb_per_socket:.1f}" if bare else "")
        + (f", Socket.IO {sio.kb_per_socket:.1f}" if sio else "")
    )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000, help="sockets (default 2000)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="Envelope's daphne processes, sharing Redis (default 1; the peers run one)",
    )
    parser.add_argument("--reveals", type=int, default=5, help="measured reveals (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="reveals not counted (default 1)")
    parser.add_argument(
        "--payload-players",
        type=int,
        default=100,
        help="leaderboard rows: 100 gives a ~7.5 KB frame (default 100)",
    )
    parser.add_argument(
        "--sockets-per-client",
        type=int,
        default=1000,
        help="sockets per fast client process (default 1000: 2 processes for 2,000)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=200,
        help="sessions starting at once over all client processes, 0 = all (default 200)",
    )
    parser.add_argument("--retries", type=int, default=3, help="retries of a failed session")
    parser.add_argument("--connect-timeout", type=float, default=240.0, help="seconds")
    parser.add_argument("--reveal-timeout", type=float, default=30.0, help="seconds per reveal")
    parser.add_argument("--settle-timeout", type=float, default=120.0, help="most to wait (s)")
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="idle seconds (beyond the 2 s of quiet) before reading RSS (default 1)",
    )
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between measured reveals")
    parser.add_argument(
        "--servers",
        default="envelope,bare,socket.io",
        help="which to run, in this order (Envelope first: its frames are the payload)",
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help=f"Redis for Envelope, FLUSHED at the start (default {DEFAULT_REDIS_URL})",
    )
    parser.add_argument("--npm-dir", type=Path, help="install socket.io here (reused)")
    parser.add_argument("--logs", type=Path, help="copy the daphne log to this directory")
    args = parser.parse_args(argv)
    if not 1 <= args.reveals + args.warmup <= 23:
        parser.error("--reveals + --warmup must be between 1 and 23 (24 categories)")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if "envelope" not in args.servers:
        parser.error("--servers must include envelope: its frames are the others' payload")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    limit = raise_fd_limit()
    print(f"side by side: {args.clients} sockets, fd limit {limit}, {os.cpu_count()} cores")
    results: dict[str, Result] = {}
    envelope = Envelope(args)
    try:
        results["envelope"] = run_server(envelope, args)
    finally:
        envelope.stop()  # before the others: daphne must not share the cores with them
    # The frames Envelope sent, in its reveal order (warm-up first): the others' payload.
    captured = results["envelope"].samples
    samples = {key: captured[key] for key in envelope.reveal_keys() if key in captured}
    if len(samples) < args.warmup + args.reveals:
        raise SystemExit(f"only {len(samples)} reveal frames captured: nothing to replay")
    frame_kb = max(len(text.encode()) for text in samples.values()) / 1024
    # socket.io goes into a temporary folder removed at the end, unless --npm-dir.
    npm_tmp = None if args.npm_dir else tempfile.TemporaryDirectory(prefix="envelope-sbs-npm-")
    try:
        for name in args.servers[1:]:
            server: Replayer
            if name == "bare":
                server = Bare(args, samples)
            elif name == "socket.io":
                target = args.npm_dir or Path(npm_tmp.name if npm_tmp else ".")
                modules, note = socketio_install(target)
                print(f"[socket.io] {note}")
                if modules is None:
                    results[name] = Result(name, skipped=note.splitlines()[0])
                    continue
                server = SocketIO(args, samples, modules)
            else:
                raise SystemExit(f"unknown server {name!r}")
            try:
                results[name] = run_server(server, args)
            finally:
                server.stop()
    finally:
        if npm_tmp is not None:
            npm_tmp.cleanup()
    print()
    for line in summary(results, args, frame_kb):
        print(line)


if __name__ == "__main__":
    main()
