"""Many parties on one ceremony: what one reveal costs when it concerns many games.

A reveal updates every game of its ceremony: one `leaderboard:update` per
game, each to that game's few sockets. This benchmark runs the real stack
(daphne on PostgreSQL and Redis, as bench/fanout.py does, whose pieces it
reuses), seeds G games of S participants on ONE ceremony, connects one real
socket per participant (each joining its own game, from separate client
processes) and makes each reveal as the show's staff does: `POST
/api/categories/{id}/winner` with a staff token, against server 0.

Modes (`--mode`):

- `shapes` (default): for each shape GxS (`--shapes`, default
  1x2000,100x20,500x4,1000x2: the same 2,000 sockets as one party or as
  many), on freshly restarted daphne processes: the staff's POST time and,
  over all sockets, p50 / p99 / last latency from the POST's start until the
  socket received the update, plus the sockets that missed it.
- `faults`: a private redis-server (never the shared one) and 2 daphne
  processes, ~100 games x 4 sockets; for each fault, the time from the fault
  ending until the last socket has the event, and what was lost: (a) Redis
  restarted empty, then a reveal; (b) Redis down during a reveal, then
  started; (c) a reveal whose channel-layer send fails after the commit;
  (d) daphne process 1 stopped (SIGTERM) and restarted, then a reveal.

See bench/README.md. The last lines printed are the summary, one per shape
(or scenario).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/parties.py` from anywhere

from bench.fanout import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    Bench,
    ClientPool,
    Connected,
    Delivery,
    Spread,
    errors_text,
    raise_fd_limit,
)
from tests.faults import PrivateRedis  # noqa: E402
from tests.liveserver import LiveStack, free_port  # noqa: E402

if TYPE_CHECKING:  # bench.seed imports models: only after django.setup()
    from bench.seed import SeededParties

# Redis database of this bench on the shared server: LiveStack FLUSHES it.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
DEFAULT_SHAPES = "1x2000,100x20,500x4,1000x2"
REDIS_SERVER = "/usr/bin/redis-server"
HTTP_TIMEOUT = 300.0  # generous: a slow reveal is a figure to print, not an error
SCENARIOS = ("a", "b", "c", "d")

# Targets the figures are compared with (printed, never asserted).
TARGET_POST_MS = 150  # the staff's POST at 1000x2 on one daphne
TARGET_LAST_MS = 500  # the last socket at 1000x2 on one daphne
TARGET_LAST_10K_MS = 1000  # the last socket at 1000x10 over two daphne
TARGET_POST_RATIO = 1.5  # POST at 1,000 games vs the 1-game POST


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


# --- the staff's requests ----------------------------------------------------------


@dataclass(frozen=True)
class Post:
    started: float  # time.monotonic() just before the request was written
    took: float
    status: int  # HTTP status; 0 when the request itself failed
    body: str
    via: str = "staff POST"


def staff_request(
    server_url: str, token: str, method: str, path: str, payload: dict[str, Any] | None = None
) -> Post:
    """One API request with the staff's token; the connection is opened
    before the clock starts (a browser's is already open)."""
    parsed = urlparse(server_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=HTTP_TIMEOUT)
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    body = None
    if payload is not None:
        body = json.dumps(payload)
        headers["Content-Type"] = "application/json"
    started = time.monotonic()
    try:
        conn.connect()
        started = time.monotonic()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode(errors="replace")
        return Post(started, time.monotonic() - started, response.status, text)
    except OSError as exc:  # refused, reset, timed out: the fault modes expect some
        return Post(started, time.monotonic() - started, 0, f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def staff_reveal(server_url: str, token: str, category_id: int, nomination_id: int) -> Post:
    return staff_request(
        server_url,
        token,
        "POST",
        f"/api/categories/{category_id}/winner",
        {"nominationId": nomination_id},
    )


def post_text(post: Post) -> str:
    if post.status == 200:
        return f"{post.via} {ms(post.took)} ms"
    return f"{post.via} {ms(post.took)} ms, HTTP {post.status or 'failed'}: {post.body[:200]}"


# --- the bench ---------------------------------------------------------------------


class PartiesBench(Bench):
    """fanout.Bench on a Redis URL of our choosing (db 5 of the shared server,
    or a private redis-server in the faults mode)."""

    def __init__(self, args: argparse.Namespace, redis_url: str) -> None:
        super().__init__(args)
        self.stack = LiveStack(
            processes=args.processes,
            server="daphne",
            database_url=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=redis_url,
        )

    def seed_parties(self, games: int, sockets_per_game: int) -> SeededParties:
        from bench.seed import parties_seed

        self.games += 1
        started = time.monotonic()
        # In the service thread: the games' locks send their events over the
        # warm loop's Redis connections, as the server would.
        seeded: SeededParties = self.services.call(
            parties_seed,
            games=games,
            sockets_per_game=sockets_per_game,
            label=f"{os.getpid()}-{self.games}",
        )
        print(
            f"  seeded ceremony {seeded.ceremony_id}: {games} games x {sockets_per_game} "
            f"participants (24 picks each), LIVE, in {time.monotonic() - started:.1f} s"
        )
        return seeded

    def party_targets(self, seeded: SeededParties) -> list[tuple[str, str, int, int]]:
        """One socket per participant, joining its own game; round-robin over
        the server processes, socket by socket (a game's sockets spread)."""
        servers = self.stack.servers
        pairs = [(user_id, game_id) for game_id, users in seeded.games for user_id in users]
        return [
            (servers[i % len(servers)].ws_url, servers[i % len(servers)].url, user_id, game_id)
            for i, (user_id, game_id) in enumerate(pairs)
        ]

    def connect_parties(self, pool: ClientPool, seeded: SeededParties) -> Connected:
        # Each target carries its own game.
        return self.connect_targets(pool, self.party_targets(seeded), game_id=None)

    def tracebacks_when_idle(self, timeout: float = 30.0) -> int:
        """Server tracebacks so far, once the servers are idle again (what the
        sockets' closing caused is logged after the clients are gone)."""
        deadline = time.monotonic() + timeout
        self.servers_busy()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            if not self.servers_busy():
                break
        return self.server_tracebacks()

    def warm_http(self, seeded: SeededParties) -> None:
        """One authenticated API read per server process: the request path
        (token auth, DRF, the ORM) is loaded before the first timed POST."""
        for server in self.stack.servers:
            answer = staff_request(
                server.url, seeded.staff_token, "GET", f"/api/ceremonies/{seeded.ceremony_id}"
            )
            if answer.status != 200:
                raise RuntimeError(f"{server.url}: HTTP {answer.status}: {answer.body[:500]}")


# --- shapes --------------------------------------------------------------------------


@dataclass
class ShapeResult:
    games: int
    sockets_per_game: int
    processes: int
    posts: list[float] = field(default_factory=list)  # seconds, measured reveals
    latencies: list[float] = field(default_factory=list)  # every socket, every reveal
    missed: int = 0
    failed: int = 0  # sockets that never joined
    errors: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    tracebacks: int = 0  # in the server logs while measuring
    close_tracebacks: int = 0  # ... and when the sockets closed at the end

    @property
    def name(self) -> str:
        return f"{self.games}x{self.sockets_per_game}"

    @property
    def post(self) -> Spread:
        return Spread.of(self.posts)

    @property
    def socket(self) -> Spread:
        return Spread.of(self.latencies)


def parse_shapes(text: str) -> list[tuple[int, int]]:
    shapes = []
    for part in text.split(","):
        games, _, sockets = part.strip().lower().partition("x")
        try:
            shape = (int(games), int(sockets))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a shape GxS: {part!r}") from None
        if min(shape) < 1:
            raise argparse.ArgumentTypeError(f"a shape needs at least 1x1: {part!r}")
        shapes.append(shape)
    return shapes


def run_shape(bench: PartiesBench, games: int, sockets_per_game: int) -> ShapeResult:
    args = bench.args
    result = ShapeResult(games, sockets_per_game, args.processes)
    tracebacks_before = bench.server_tracebacks()
    seeded = bench.seed_parties(games, sockets_per_game)
    bench.warm_http(seeded)
    server_url = bench.stack.servers[0].url
    with bench.pool(games * sockets_per_game) as pool:
        connected = bench.connect_parties(pool, seeded)
        result.failed = connected.failed
        pool.settle(bench.servers_busy, timeout=args.settle_timeout)
        reports: list[dict[str, Any]] = []
        for number in range(args.warmup + args.reveals):
            warmup = number < args.warmup
            category_id, nominations = seeded.categories[number]
            post = staff_reveal(server_url, seeded.staff_token, category_id, nominations[0])
            if post.status != 200:
                raise RuntimeError(f"the reveal failed: {post_text(post)}")
            got = pool.wait_for(category_id, connected.ok, args.reveal_timeout)
            reports = pool.reports()
            delivery = Delivery.of(reports, {category_id: post.started})
            spread = delivery.spread
            label = "warm-up" if warmup else f"reveal {number - args.warmup + 1}"
            print(
                f"  {label}: {post_text(post)} | {got}/{connected.ok} sockets: "
                f"p50 {ms(spread.p50)} ms p99 {ms(spread.p99)} ms last {ms(spread.max)} ms "
                f"| missed {delivery.missed}"
            )
            if warmup:
                # What the warm-up woke (e.g. a collection) must not queue in front.
                pool.settle(bench.servers_busy, timeout=args.settle_timeout)
                continue
            result.posts.append(post.took)
            result.latencies.extend(delivery.latencies)
            result.missed += delivery.missed
        result.tracebacks = bench.server_tracebacks() - tracebacks_before
    result.close_tracebacks = bench.tracebacks_when_idle() - tracebacks_before - result.tracebacks
    totals = Delivery.of(reports, {})
    result.errors = totals.errors
    result.reconnects = totals.reconnects
    print(
        f"  errors: {errors_text(result.errors)}; reconnects {result.reconnects}; "
        f"server tracebacks {result.tracebacks} while measuring, "
        f"{result.close_tracebacks} when the sockets closed"
    )
    return result


def shape_targets(result: ShapeResult, results: list[ShapeResult]) -> list[str]:
    """The targets that apply to this shape, each with the measured figure."""
    post, last = result.post.p50 * 1000, result.socket.max * 1000
    shape = (result.games, result.sockets_per_game, result.processes)
    texts = []
    if shape == (1000, 2, 1):
        texts.append(f"POST p50 {post:.0f} ms vs <= {TARGET_POST_MS} ms")
        texts.append(f"last {last:.0f} ms vs <= {TARGET_LAST_MS} ms")
    if shape == (1000, 10, 2):
        texts.append(f"last {last:.0f} ms vs <= {TARGET_LAST_10K_MS} ms")
    if result.games == 1000:
        single = next(
            (r for r in results if r.games == 1 and r.processes == result.processes), None
        )
        if single is not None and single.posts:
            ratio = result.post.p50 / single.post.p50
            texts.append(f"POST {ratio:.1f}x the {single.name} POST vs <= {TARGET_POST_RATIO}x")
    return texts


def summary_table(results: list[ShapeResult]) -> None:
    header = (
        f"{'shape':>10} {'daphne':>6} {'sockets':>7} {'POST p50':>9} {'POST max':>9} "
        f"{'sock p50':>9} {'sock p99':>9} {'last':>9} {'missed':>6} {'failed':>6} "
        f"{'reconn':>6} {'tracebacks (at close)':>21}"
    )
    print(header)
    for r in results:
        print(
            f"{r.name:>10} {r.processes:>6} {r.games * r.sockets_per_game:>7} "
            f"{ms(r.post.p50):>6} ms {ms(r.post.max):>6} ms "
            f"{ms(r.socket.p50):>6} ms {ms(r.socket.p99):>6} ms {ms(r.socket.max):>6} ms "
            f"{r.missed:>6} {r.failed:>6} {r.reconnects:>6} "
            f"{f'{r.tracebacks} ({r.close_tracebacks})':>21}"
        )
    print(
        f"targets: 1000x2 on 1 daphne POST <= {TARGET_POST_MS} ms and last socket <= "
        f"{TARGET_LAST_MS} ms; 1000x10 on 2 daphne last socket <= {TARGET_LAST_10K_MS} ms; "
        f"POST at 1000 games <= {TARGET_POST_RATIO}x the 1-game POST"
    )


def summary_line(result: ShapeResult, results: list[ShapeResult]) -> str:
    line = (
        f"parties: {result.name} on {result.processes} daphne: "
        f"POST p50 {ms(result.post.p50)} ms | socket p50 {ms(result.socket.p50)} ms "
        f"p99 {ms(result.socket.p99)} ms last {ms(result.socket.max)} ms | missed {result.missed}"
    )
    extras = []
    if result.failed:
        extras.append(f"failed to join {result.failed}")
    if result.tracebacks or result.close_tracebacks:
        extras.append(
            f"server tracebacks {result.tracebacks} (+{result.close_tracebacks} at close)"
        )
    targets = shape_targets(result, results)
    if targets:
        extras.append("target: " + ", ".join(targets))
    return " | ".join([line, *extras])


def mode_shapes(args: argparse.Namespace) -> list[str]:
    redis_url = args.redis_url  # not REDIS_URL from the environment: it gets flushed
    bench = PartiesBench(args, redis_url)
    print(f"starting {args.processes} daphne on {redis_url} (flushed)")
    results: list[ShapeResult] = []
    try:
        bench.start()
        for number, (games, sockets_per_game) in enumerate(args.shapes):
            if number:
                bench.restart_servers()
            print(f"[{games}x{sockets_per_game} on {args.processes} daphne]")
            results.append(run_shape(bench, games, sockets_per_game))
    finally:
        bench.close()
    if not results:
        return []
    summary_table(results)
    return [summary_line(result, results) for result in results]


# --- faults ----------------------------------------------------------------------------


@dataclass
class FaultResult:
    key: str
    title: str
    sockets: int
    converged: float | None  # fault end → last socket; None if some never got it
    reveal_to_last: float | None
    got: int
    lost: int
    follow_up_got: int
    errors: Counter[str]
    reconnects: int
    tracebacks: int  # in the server logs from the fault until the sockets closed
    close_tracebacks: int  # ... and when they closed
    note: str = ""


@dataclass
class FaultContext:
    bench: PartiesBench
    redis: PrivateRedis
    seeded: SeededParties
    categories: Iterator[tuple[int, list[int]]]

    @property
    def server0(self) -> str:
        return self.bench.stack.servers[0].url

    def reveal(self) -> tuple[int, Post]:
        category_id, nominations = next(self.categories)
        return category_id, staff_reveal(
            self.server0, self.seeded.staff_token, category_id, nominations[0]
        )


# A fault: injects it, makes the reveal, and returns (category id, when the
# fault ended, the reveal's POST, a note).
Fault = Callable[[FaultContext], tuple[int, float, Post, str]]


def fault_redis_restarted(ctx: FaultContext) -> tuple[int, float, Post, str]:
    ctx.redis.stop()  # SIGKILL: everything in it is gone
    time.sleep(ctx.bench.args.outage)
    ctx.redis.start()  # empty
    ended = time.monotonic()
    category_id, post = ctx.reveal()
    return category_id, ended, post, f"Redis down {ctx.bench.args.outage:.1f} s"


def fault_redis_down_during_reveal(ctx: FaultContext) -> tuple[int, float, Post, str]:
    killed = time.monotonic()
    ctx.redis.stop()
    time.sleep(0.5)
    category_id, post = ctx.reveal()
    time.sleep(max(0.0, killed + ctx.bench.args.outage - time.monotonic()))
    ctx.redis.start()
    ended = time.monotonic()
    return category_id, ended, post, f"Redis down {ended - killed:.1f} s"


def fault_fast_path_dropped(ctx: FaultContext) -> tuple[int, float, Post, str]:
    """The reveal commits in a process whose channel layer points at a closed
    port: the commit stands, the send after it fails."""
    category_id, nominations = next(ctx.categories)
    closed = f"redis://127.0.0.1:{free_port()}/0"
    code = (
        "import time\n"
        "from games.services import category_reveal\n"
        "print('reveal-start', time.monotonic())\n"
        f"category_reveal(category_id={category_id}, nomination_id={nominations[0]})\n"
        "print('revealed-at', time.monotonic())\n"
    )
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={**ctx.bench.stack.env(), "REDIS_URL": closed},
        capture_output=True,
        text=True,
        timeout=HTTP_TIMEOUT,
    )
    finished = time.monotonic()
    marks = dict(line.split()[:2] for line in run.stdout.splitlines() if line.startswith("reve"))
    # The reveal call's own start and end (the process's start-up is not the reveal's).
    started = float(marks.get("reveal-start", started))
    ended = float(marks.get("revealed-at", finished))
    failed_sends = run.stderr.count("channel layer send")
    note = (
        f"the reveal call took {ended - started:.2f} s (its failed send included), "
        f"exit {run.returncode}, {failed_sends} 'channel layer send' log lines "
        f"(REDIS_URL {closed})"
    )
    if run.returncode != 0:
        note += f"; stderr: {run.stderr.strip()[-500:]}"
    post = Post(
        started,
        ended - started,
        200 if run.returncode == 0 else 0,
        run.stderr[-500:],
        via="category_reveal in manage.py shell",
    )
    return category_id, ended, post, note


def fault_daphne_restarted(ctx: FaultContext) -> tuple[int, float, Post, str]:
    server = ctx.bench.stack.servers[1]
    started = time.monotonic()
    server.stop(signal.SIGTERM)
    stopped = time.monotonic()
    server.start()
    ended = time.monotonic()
    category_id, post = ctx.reveal()
    note = (
        f"daphne 1 stopped in {stopped - started:.1f} s, started again in {ended - stopped:.1f} s"
    )
    return category_id, ended, post, note


FAULTS: dict[str, tuple[str, Fault]] = {
    "a": ("Redis restarted empty, then a reveal", fault_redis_restarted),
    "b": ("Redis down during a reveal, then started", fault_redis_down_during_reveal),
    "c": ("fast path dropped after commit", fault_fast_path_dropped),
    "d": ("daphne 1 SIGTERM + restart, then a reveal", fault_daphne_restarted),
}


def run_fault(ctx: FaultContext, key: str) -> FaultResult:
    bench, args = ctx.bench, ctx.bench.args
    title, fault = FAULTS[key]
    sockets = args.fault_games * args.fault_sockets
    with bench.pool(sockets) as pool:
        connected = bench.connect_parties(pool, ctx.seeded)
        pool.settle(bench.servers_busy, timeout=args.settle_timeout)
        category_id, post = ctx.reveal()
        got = pool.wait_for(category_id, connected.ok, args.reveal_timeout)
        control = Delivery.of(pool.reports(), {category_id: post.started}).spread
        print(
            f"  control reveal: {post_text(post)} | {got}/{connected.ok} sockets, "
            f"last {ms(control.max)} ms"
        )
        tracebacks_before = bench.server_tracebacks()
        category_id, ended, post, note = fault(ctx)
        print(f"  fault: {title}; {note}")
        print(f"  fault reveal: {post_text(post)}")
        got = pool.wait_for(
            category_id, connected.ok, max(0.0, ended + args.fault_timeout - time.monotonic())
        )
        reports = pool.reports()
        times = [t for r in reports for t in r["recv"].get(str(category_id), [None] * r["sockets"])]
        received = [t for t in times if t is not None]
        lost = len(times) - len(received)
        converged = max(received) - ended if received and not lost else None
        reveal_to_last = max(received) - post.started if received and not lost else None
        if received:
            since_reveal = Spread.of([t - post.started for t in received]).text()
            since_end = Spread.of([t - ended for t in received]).text()
            after = f"after the reveal {since_reveal}; after the fault ended {since_end}"
        else:
            after = "no socket got it"
        print(
            f"  {len(received)}/{connected.ok} sockets got it within {args.fault_timeout:.0f} s "
            f"of the fault's end ({after}); lost {lost}"
        )
        # A normal reveal afterwards: does delivery work again, and do the
        # sockets that lost the event notice (a seq gap)?
        follow_id, follow_post = ctx.reveal()
        follow_got = pool.wait_for(follow_id, connected.ok, args.reveal_timeout)
        reports = pool.reports()
        tracebacks = bench.server_tracebacks() - tracebacks_before
        print(
            f"  follow-up reveal: {post_text(follow_post)} | {follow_got}/{connected.ok} sockets "
            f"in {time.monotonic() - follow_post.started:.2f} s"
        )
    totals = Delivery.of(reports, {})
    result = FaultResult(
        key=key,
        title=title,
        sockets=connected.ok,
        converged=converged,
        reveal_to_last=reveal_to_last,
        got=len(received),
        lost=lost,
        follow_up_got=follow_got,
        errors=totals.errors,
        reconnects=totals.reconnects,
        tracebacks=tracebacks,
        close_tracebacks=bench.tracebacks_when_idle() - tracebacks_before - tracebacks,
        note=note,
    )
    print(
        f"  errors: {errors_text(result.errors)}; reconnects {result.reconnects}; "
        f"server tracebacks {result.tracebacks} from the fault on, "
        f"{result.close_tracebacks} when the sockets closed"
    )
    return result


def fault_line(result: FaultResult, timeout: float) -> str:
    if result.converged is not None and result.reveal_to_last is not None:
        # Negative: every socket had it before the fault ended (e.g. delivered
        # while Redis was still down).
        when = (
            f"{result.converged:.2f} s after the fault ended"
            if result.converged >= 0
            else f"during the fault, {-result.converged:.2f} s before it ended"
        )
        converged = f"converged {when} (reveal to last socket {result.reveal_to_last:.2f} s)"
    else:
        converged = f"not converged within {timeout:.0f} s"
    return (
        f"faults: ({result.key}) {result.title}: {converged} | "
        f"lost {result.lost}/{result.sockets} | follow-up reveal "
        f"{result.follow_up_got}/{result.sockets} | seq gaps {result.errors.get('seq gap', 0)} "
        f"| reconnects {result.reconnects} | server tracebacks {result.tracebacks} "
        f"(+{result.close_tracebacks} at close)"
    )


def mode_faults(args: argparse.Namespace) -> list[str]:
    if args.processes < 2:
        raise SystemExit("the faults mode needs at least 2 daphne processes")
    if 1 + 3 * len(args.scenarios) > 24:
        raise SystemExit("too many scenarios for one ceremony of 24 categories")
    redis = PrivateRedis(args.redis_server)
    redis.start()
    bench = PartiesBench(args, redis.url)
    print(f"starting {args.processes} daphne on a private Redis ({redis.url})")
    results: list[FaultResult] = []
    try:
        bench.start()
        seeded = bench.seed_parties(args.fault_games, args.fault_sockets)
        ctx = FaultContext(bench, redis, seeded, iter(seeded.categories))
        for number, key in enumerate(args.scenarios):
            if not redis.ping():
                redis.start()
            if number:
                bench.restart_servers()  # fresh processes: no fault carried over
            print(f"[faults ({key}) {FAULTS[key][0]}]")
            results.append(run_fault(ctx, key))
    finally:
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            (args.logs / "redis-private.log").write_text(redis.log())
        bench.close()
        redis.close()
    return [fault_line(result, args.fault_timeout) for result in results]


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("shapes", "faults"), default="shapes")
    parser.add_argument(
        "--shapes",
        default=DEFAULT_SHAPES,
        help=f"games x sockets per game, comma-separated (default {DEFAULT_SHAPES})",
    )
    parser.add_argument(
        "--processes", type=int, default=None, help="daphne processes (default 1; faults: 2)"
    )
    parser.add_argument("--reveals", type=int, default=3, help="measured reveals (default 3)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="reveals made before measuring (default 1)"
    )
    parser.add_argument(
        "--sockets-per-client", type=int, default=1000, help="sockets per client process"
    )
    parser.add_argument("--reveal-timeout", type=float, default=30.0, help="seconds per reveal")
    parser.add_argument(
        "--connect-timeout", type=float, default=600.0, help="give up joining after (s)"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=120.0, help="most to wait for idle servers (s)"
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help=f"shapes: the Redis database, FLUSHED at the start (default {DEFAULT_REDIS_URL})",
    )
    parser.add_argument("--fault-games", type=int, default=100, help="faults: games (100)")
    parser.add_argument("--fault-sockets", type=int, default=4, help="faults: sockets per game")
    parser.add_argument(
        "--fault-timeout",
        type=float,
        default=30.0,
        help="faults: a socket without the event this long after the fault ended lost it",
    )
    parser.add_argument(
        "--outage", type=float, default=3.0, help="faults (a), (b): seconds Redis stays down"
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="faults: which of a,b,c,d (default all)"
    )
    parser.add_argument("--redis-server", default=REDIS_SERVER, help="faults: redis-server binary")
    parser.add_argument("--logs", type=Path, help="copy the server logs to this directory")
    args = parser.parse_args(argv)
    # What fanout.Bench reads.
    args.server = "daphne"
    args.board = "full"
    if args.processes is None:
        args.processes = 2 if args.mode == "faults" else 1
    try:
        args.shapes = parse_shapes(args.shapes)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if unknown := [s for s in args.scenarios if s not in SCENARIOS]:
        parser.error(f"unknown scenarios {unknown}: choose from {','.join(SCENARIOS)}")
    if args.warmup < 0 or args.reveals < 1 or args.warmup + args.reveals > 24:
        parser.error("--warmup + --reveals must be at most 24 (the ceremony's categories)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows up when piped too
    limit = raise_fd_limit()
    print(
        f"parties bench, mode {args.mode}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
        f"{os.cpu_count()} cores, fd limit {limit}"
    )
    summaries = mode_faults(args) if args.mode == "faults" else mode_shapes(args)
    for summary in summaries:
        print(summary)


if __name__ == "__main__":
    main()
