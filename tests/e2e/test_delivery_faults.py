"""Delivery under faults, end to end, as real clients see it.

The guarantee: every event of a game reaches every socket that follows it, in
seq order, exactly once per socket, even when a server process dies after its
commit, Redis restarts or is briefly unreachable, or PostgreSQL restarts; the
server itself catches its sockets up within 10 s of the fault ending, without
waiting for a later event or a client ping. Logout closes all of the user's
sockets (AUTH_REQUIRED, then 4401), even after a Redis restart.

The module runs two daphne processes on a redis-server of its own
(tests/faults.py), which the tests kill and restart; the shared Redis is never
touched. The sockets here only read: no ping, no rejoin, unless a test says so.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.conftest import require_service
from tests.e2e.conftest import Party, Player, http, joined, make_party
from tests.faults import PrivateRedis, closed_port, require_redis_server
from tests.liveserver import ROOT, LiveStack, Server

pytestmark = pytest.mark.e2e

# "Within 10 s of the fault ending", with room for a loaded machine.
RECOVERY = 15.0
# After the expected frames arrived: how long a late duplicate gets to show up.
SETTLE = 1.5


# --- the stack: two daphne processes on a private Redis -------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    """Overrides tests/e2e/conftest.py's `stack` for this module: the same two
    daphne processes on a fresh database, but on a Redis of our own (REDIS_URL
    is neither needed nor used), so the tests may kill and restart it."""
    database_url = require_service("DATABASE_URL", 5432, "PostgreSQL")
    if not database_url.startswith(("postgres://", "postgresql://")):
        pytest.skip("DATABASE_URL is not PostgreSQL")
    binary = require_redis_server()
    with PrivateRedis(binary) as private:
        live = LiveStack(processes=2, database_url=database_url, redis_url=private.url)
        live.redis = private  # type: ignore[attr-defined]
        try:
            # Not `with`: a server that fails to start must not leave the
            # database or the other server behind.
            live.start()
            yield live
        finally:
            live.close()


@pytest.fixture(autouse=True)
def _healthy(stack: LiveStack) -> None:
    """Each test starts with Redis and both servers up, whatever an earlier
    one left behind."""
    private: PrivateRedis = stack.redis  # type: ignore[attr-defined]
    if not private.running:
        private.start()
    for server in stack.servers:
        if server.process is None or server.process.poll() is not None:
            server.start()


def server_logs(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """On failure, print what the servers (and Redis) logged during the test:
    pytest shows it under "Captured stdout call"."""

    @functools.wraps(test)
    async def wrapper(**kwargs: Any) -> None:
        live: LiveStack = kwargs["stack"]
        offsets = [_size(server) for server in live.servers]
        try:
            await test(**kwargs)
        except BaseException:  # pytest.fail's exception is a BaseException
            for index, server in enumerate(live.servers):
                raw = server.log_path.read_bytes()[offsets[index] :].decode(errors="replace")
                print(f"--- daphne {index} log during the test ---\n{condensed(raw)}")
            private: PrivateRedis = live.redis  # type: ignore[attr-defined]
            print("--- private redis-server log (tail) ---")
            lines = [line for line in private.log().splitlines() if "overcommit" not in line]
            print("\n".join(lines[-20:]))
            raise

    return wrapper


def condensed(log: str) -> str:
    """A server log, short: its first lines (the first traceback in full), how
    often each distinct message came, and its last lines."""
    # Access-log lines drown the tracebacks: leave them out.
    lines = [line for line in log.splitlines() if " - - [" not in line]
    if len(lines) <= 120:
        return "\n".join(lines)
    counts: dict[str, int] = {}
    for line in lines:
        if line and not line[0].isspace() and not line.startswith(_TRACEBACK_GLUE):
            counts[line[:300]] = counts.get(line[:300], 0) + 1
    summary = "\n".join(f"  {n} x {line}" for line, n in list(counts.items())[:40])
    return (
        "\n".join(lines[:60])
        + f"\n[... {len(lines) - 100} lines; distinct messages in the whole log:]\n{summary}\n"
        + "[... the last lines:]\n"
        + "\n".join(lines[-40:])
    )


_TRACEBACK_GLUE = ("Traceback", "During handling", "The above exception")


def _size(server: Server) -> int:
    try:
        return server.log_path.stat().st_size
    except OSError:
        return 0


# --- sockets that only read ------------------------------------------------------


@dataclass
class Watch:
    """A joined socket and every frame it received after `joined`, with the
    monotonic time each arrived. It never sends anything."""

    label: str
    player: Player
    socket: ClientConnection
    game_id: int
    seq: int  # joined.seq
    joined: dict[str, Any]
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    closed_at: float | None = None
    task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            async for text in self.socket:
                self.frames.append((time.monotonic(), json.loads(text)))
        except ConnectionClosed:
            pass
        finally:
            self.closed_at = time.monotonic()

    def events(self) -> list[tuple[float, dict[str, Any]]]:
        """(arrival, frame) of this socket's game events (frames with a seq)."""
        return [
            (at, frame)
            for at, frame in self.frames
            if "seq" in frame and frame.get("gameId") == self.game_id
        ]

    def has_seq(self, seq: int) -> bool:
        return any(frame["seq"] >= seq for _, frame in self.events())

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [frame for _, frame in self.frames if frame.get("type") == type_]

    def state(self) -> str:
        if self.closed_at is None:
            return "socket open"
        return f"socket closed with {self.socket.close_code}"


async def watch(server: Server, player: Player, game_id: int, label: str, **fields: Any) -> Watch:
    socket, frame = await joined(server, player, game_id, **fields)
    found = Watch(label, player, socket, game_id, seq=frame["seq"], joined=frame)
    found.task = asyncio.create_task(found._read())
    return found


async def close_all(watches: list[Watch]) -> None:
    await asyncio.gather(*(w.socket.close() for w in watches), return_exceptions=True)
    tasks = [w.task for w in watches if w.task is not None]
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    for task in tasks:
        task.cancel()


async def wait_until(done: Callable[[], bool], deadline: float) -> None:
    while True:
        if done() or time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.05)


async def wait_for_seq(
    watches: list[Watch], count: int, deadline: float, settle: float = SETTLE
) -> None:
    """Until every socket got an event at seq (its joined seq + count) or
    closed, or the deadline; then `settle` more for duplicates."""
    await wait_until(
        lambda: all(w.closed_at is not None or w.has_seq(w.seq + count) for w in watches),
        deadline,
    )
    await asyncio.sleep(settle)


@dataclass(frozen=True)
class Due:
    """An expected event: its type, and the time by which it must arrive."""

    type: str
    by: float


def delivery_problems(
    watches: list[Watch], expected: list[Due], since: float, skip: int = 0
) -> list[str]:
    """For each socket: its game events after the first `skip` ones following
    `joined` must be exactly `expected` (seq joined+skip+1, +2, …), each
    arriving by its deadline. Times in the report are seconds after `since`
    (when the fault ended)."""
    problems = []
    for w in watches:
        start = w.seq + skip
        got = [(at, frame) for at, frame in w.events() if frame["seq"] > start]
        want = [(start + index, due.type) for index, due in enumerate(expected, 1)]
        received = [(frame["seq"], frame["type"]) for _, frame in got]
        issues = []
        if received != want:
            seqs = [seq for seq, _ in received]
            missing = sorted({seq for seq, _ in want} - set(seqs))
            duplicated = sorted({seq for seq in seqs if seqs.count(seq) > 1})
            if missing:
                issues.append(f"missing seq {missing}")
            if duplicated:
                issues.append(f"duplicated seq {duplicated}")
            if seqs != sorted(seqs):
                issues.append("out of order")
            extra = sorted({seq for seq in seqs} - {seq for seq, _ in want})
            if extra:
                issues.append(f"unexpected seq {extra}")
            if not issues:
                issues.append("wrong types")
        else:
            for (at, frame), due in zip(got, expected, strict=True):
                if at > due.by:
                    issues.append(f"seq {frame['seq']} late by {at - due.by:.2f}s")
        if issues:
            wanted = ", ".join(f"{seq} {type_}" for seq, type_ in want)
            arrived = ", ".join(
                f"{frame['seq']} {frame['type']} at {at - since:+.2f}s" for at, frame in got
            )
            problems.append(
                f"{w.label} (last seq {start}; {w.state()}): {'; '.join(issues)}. "
                f"Expected [{wanted}], by {expected[-1].by - since:+.1f}s at the latest; "
                f"received [{arrived or 'nothing'}]"
            )
    return problems


def stored_events(stack: LiveStack, game_id: int, after: int) -> str:
    """What the database holds for the game after `after` (failure reports)."""
    try:
        out = stack.shell(
            "from games.models import Game, GameEvent\n"
            f"game = Game.objects.get(pk={game_id})\n"
            f"rows = GameEvent.objects.filter(game=game, seq__gt={after}).order_by('seq')\n"
            "print(f'game seq {game.seq}; stored events', [(e.seq, e.type) for e in rows])"
        )
        return out.strip().splitlines()[-1]
    except Exception as error:  # pragma: no cover - a report only
        return f"(could not read the database: {error})"


def report(stack: LiveStack, problems: list[str], game_id: int, after: int) -> str:
    return (
        f"{len(problems)} socket(s) did not get exactly the game's events in order:\n  "
        + "\n  ".join(problems)
        + f"\nDatabase: {stored_events(stack, game_id, after)}"
    )


# --- the API ---------------------------------------------------------------------------


def reveal(server: Server, party: Party, index: int, nominee: int) -> tuple[int, Any, float]:
    """Reveal category `index` (winner: its nominee `nominee`) through `server`:
    (status, body, seconds the call took)."""
    category_id, _, nominations = party.categories[index]
    started = time.monotonic()
    status, body = http(
        server,
        "POST",
        f"/api/categories/{category_id}/winner",
        token=party.staff_token,
        body={"nominationId": nominations[nominee]},
    )
    return status, body, time.monotonic() - started


async def redis_restart(stack: LiveStack, down: float = 1.0) -> float:
    """Kill the private Redis, keep it down `down` s, start it again (empty).
    Returns when it answered again (monotonic)."""
    private: PrivateRedis = stack.redis  # type: ignore[attr-defined]
    await asyncio.to_thread(private.stop)
    await asyncio.sleep(down)
    await asyncio.to_thread(private.start)
    return time.monotonic()


async def sockets_on_both(party: Party, stack: LiveStack, players: list[int]) -> list[Watch]:
    """A socket for each of `players` on each server process."""
    return [
        await watch(server, party.players[k], party.game_id, f"player{k}@daphne{index}")
        for index, server in enumerate(stack.servers)
        for k in players
    ]


# --- 1. Redis restarts between events ---------------------------------------------------


@server_logs
async def test_redis_restart_then_a_reveal_reaches_every_socket(stack):
    party = make_party(stack, "redis-restart", 4, [5, 3, 2])
    watches = await sockets_on_both(party, stack, [0, 1, 2, 3])
    try:
        back = await redis_restart(stack)
        await asyncio.sleep(1)
        status, body, took = await asyncio.to_thread(reveal, stack.servers[0], party, 0, 0)
        assert status == 200, f"reveal after the Redis restart answered {status}: {body}"
        deadline = back + RECOVERY
        await wait_for_seq(watches, 2, deadline)
        expected = [Due("game:status", deadline), Due("leaderboard:update", deadline)]
        problems = delivery_problems(watches, expected, back)
        if problems:
            pytest.fail(
                f"after Redis restarted (reveal answered {took:.2f}s after it was back +1 s): "
                + report(stack, problems, party.game_id, watches[0].seq)
            )
        for w in watches:
            update = w.events()[-1][1]
            assert update["lastRevealed"]["categoryId"] == party.categories[0][0], (w.label, update)

        sent = time.monotonic()
        status, body, _ = await asyncio.to_thread(reveal, stack.servers[1], party, 1, 1)
        assert status == 200, body
        second = sent + RECOVERY
        await wait_for_seq(watches, 3, second)
        problems = delivery_problems(watches, [*expected, Due("leaderboard:update", second)], sent)
        if problems:
            pytest.fail(
                "the reveal after that: " + report(stack, problems, party.game_id, watches[0].seq)
            )
    finally:
        await close_all(watches)


# --- 2. Redis unreachable during a reveal -------------------------------------------------


@server_logs
async def test_reveal_while_redis_is_down_reaches_every_socket_once_it_is_back(stack):
    party = make_party(stack, "redis-down", 4, [5, 3, 2])
    watches = await sockets_on_both(party, stack, [0, 1, 2, 3])
    private: PrivateRedis = stack.redis
    try:
        await asyncio.to_thread(private.stop)
        await asyncio.sleep(0.5)
        status, body, took = await asyncio.to_thread(reveal, stack.servers[0], party, 0, 2)
        await asyncio.to_thread(private.start)
        back = time.monotonic()
        assert status == 200, (
            f"POST /winner while Redis was down answered {status} after {took:.2f}s: {body} "
            f"(the reveal is a PostgreSQL write; Redis only carries the fast path)"
        )
        deadline = back + RECOVERY
        await wait_for_seq(watches, 2, deadline)
        expected = [Due("game:status", deadline), Due("leaderboard:update", deadline)]
        problems = delivery_problems(watches, expected, back)
        if problems:
            pytest.fail(
                f"reveal made while Redis was down (the POST took {took:.2f}s), "
                "Redis back at +0: " + report(stack, problems, party.game_id, watches[0].seq)
            )
        for w in watches:
            update = w.events()[-1][1]
            assert update["lastRevealed"]["nominationId"] == party.categories[0][2][2], update
    finally:
        await close_all(watches)


# --- 3. The fast path lost after the commit -----------------------------------------------


@server_logs
async def test_reveal_whose_channel_layer_send_fails_still_reaches_every_socket(stack):
    """The reveal commits in a process whose channel layer cannot reach Redis:
    nothing is sent, and the servers must find the event themselves."""
    party = make_party(stack, "no-send", 4, [5, 3, 2])
    watches = await sockets_on_both(party, stack, [0, 1, 2, 3])
    category_id, _, nominations = party.categories[0]
    code = (
        "from games import services\n"
        f"services.category_reveal(category_id={category_id}, nomination_id={nominations[1]})\n"
        "print('revealed')\n"
    )
    env = {**stack.env(), "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    try:
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "manage.py", "shell", "-c", code],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        committed = time.monotonic()
        assert result.returncode == 0 and "revealed" in result.stdout, (
            f"the reveal in a process without Redis failed ({result.returncode}):\n"
            f"{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
        )
        deadline = committed + 10
        await wait_for_seq(watches, 2, deadline)
        expected = [Due("game:status", deadline), Due("leaderboard:update", deadline)]
        problems = delivery_problems(watches, expected, committed)
        if problems:
            pytest.fail(
                "reveal committed by a process whose channel-layer send failed "
                "(+0 = that process exited): "
                + report(stack, problems, party.game_id, watches[0].seq)
            )
    finally:
        await close_all(watches)


# --- 4. Logout after a Redis restart ----------------------------------------------------------


@server_logs
async def test_logout_after_a_redis_restart_closes_the_users_sockets_with_4401(stack):
    party = make_party(stack, "logout-fault", 2, [1])
    user, other = party.players[1], party.players[0]
    mine = [
        await watch(server, user, party.game_id, f"{user.username}@daphne{index}")
        for index, server in enumerate(stack.servers)
    ]
    theirs = [
        await watch(server, other, party.game_id, f"{other.username}@daphne{index}")
        for index, server in enumerate(stack.servers)
    ]
    try:
        await redis_restart(stack)
        await asyncio.sleep(1)
        sent = time.monotonic()
        status, body = await asyncio.to_thread(
            http, stack.servers[0], "POST", "/api/auth/logout", token=user.token
        )
        assert status == 204, f"logout answered {status}: {body}"
        deadline = sent + RECOVERY
        await wait_until(lambda: all(w.closed_at is not None for w in mine), deadline)
        problems = []
        for w in mine:
            errors = [f for f in w.of_type("leaderboard:error") if f["code"] == "AUTH_REQUIRED"]
            if w.closed_at is None:
                problems.append(
                    f"{w.label}: still open {RECOVERY:.0f}s after the logout"
                    + (" (it did get AUTH_REQUIRED)" if errors else " and got no AUTH_REQUIRED")
                )
                continue
            closed = f"closed with {w.socket.close_code} at {w.closed_at - sent:+.2f}s"
            if w.socket.close_code != 4401:
                problems.append(f"{w.label}: {closed}, not 4401")
            elif not errors:
                problems.append(f"{w.label}: {closed} without an AUTH_REQUIRED frame first")
            elif w.closed_at > deadline:
                problems.append(f"{w.label}: {closed}, later than {RECOVERY:.0f}s")
        if problems:
            pytest.fail(
                "logout after a Redis restart (+0 = the logout call returned):\n  "
                + "\n  ".join(problems)
            )
        for w in theirs:
            assert w.closed_at is None, f"{w.label} (another user) was closed: {w.state()}"
            assert not w.of_type("leaderboard:error"), (w.label, w.of_type("leaderboard:error"))
            pongs = len(w.of_type("pong"))
            await w.socket.send(json.dumps({"type": "ping", "t": "still here"}))
            await wait_until(lambda w=w, n=pongs: len(w.of_type("pong")) > n, time.monotonic() + 5)
            assert len(w.of_type("pong")) > pongs, f"{w.label} (another user) does not answer"
    finally:
        await close_all(mine + theirs)


# --- 5. A server process killed --------------------------------------------------------------


@server_logs
async def test_process_killed_then_its_clients_resume_with_last_seq(stack):
    party = make_party(stack, "killed", 2, [2, 1])
    live, doomed = stack.servers
    survivors = [
        await watch(live, party.players[k], party.game_id, f"player{k}@daphne0") for k in (0, 1)
    ]
    victims = [
        await watch(doomed, party.players[k], party.game_id, f"player{k}@daphne1") for k in (0, 1)
    ]
    rejoined: list[Watch] = []
    try:
        await asyncio.to_thread(doomed.stop, signal.SIGKILL)
        await wait_until(lambda: all(w.closed_at for w in victims), time.monotonic() + 10)
        assert all(w.closed_at for w in victims), [w.state() for w in victims]
        sent = time.monotonic()
        status, body, _ = await asyncio.to_thread(reveal, live, party, 0, 0)
        assert status == 200, body
        await asyncio.to_thread(doomed.start)

        deadline = sent + RECOVERY
        await wait_for_seq(survivors, 2, deadline)
        expected = [Due("game:status", deadline), Due("leaderboard:update", deadline)]
        problems = delivery_problems(survivors, expected, sent)
        if problems:
            pytest.fail(
                "sockets on the surviving process: "
                + report(stack, problems, party.game_id, survivors[0].seq)
            )

        for w in victims:
            last_seq = max([w.seq, *(frame["seq"] for _, frame in w.events())])
            again = await watch(
                doomed, w.player, party.game_id, f"{w.label} resumed", lastSeq=last_seq
            )
            rejoined.append(again)
            assert again.joined["recovered"] is True, again.joined
            assert again.joined["seq"] == last_seq + 2, again.joined
            # The replay follows `joined`: check it like live events after last_seq.
            again.seq = last_seq
        later = time.monotonic() + 10
        await wait_for_seq(rejoined, 2, later)
        problems = delivery_problems(
            rejoined, [Due("game:status", later), Due("leaderboard:update", later)], sent
        )
        if problems:
            pytest.fail(
                "replay after resuming on the restarted process: "
                + report(stack, problems, party.game_id, rejoined[0].seq)
            )
        standings = rejoined[0].events()[-1][1]["players"]
        assert (standings[0]["userId"], standings[0]["totalScore"]) == (party.players[0].id, 2)
    finally:
        await close_all(survivors + victims + rejoined)


# --- a ceremony with many games (6, 7) ----------------------------------------------------------

_MANY_GAMES_SCRIPT = """
import json
from accounts.models import User
from rest_framework.authtoken.models import Token
from games import services
from games.ceremony_file import parse_ceremony
tag, game_count, points = PARAMS["tag"], PARAMS["games"], PARAMS["points"]
doc = {"name": "E2E " + tag, "date": "2025-03-02", "categories": [
    {"name": f"Category {i}", "points": p,
     "nominations": [{"title": f"Nominee {i}.{j}"} for j in range(3)]}
    for i, p in enumerate(points)]}
ceremony = services.ceremony_create(data=parse_ceremony(json.dumps(doc)))
staff, _ = User.objects.get_or_create(username="staff", defaults={"is_staff": True})
categories = list(ceremony.categories.order_by("order"))
nominees = {c.pk: [n.pk for n in c.nominations.order_by("order")] for c in categories}
out = {
    "categories": [[c.pk, c.points, nominees[c.pk]] for c in categories],
    "staff_token": Token.objects.get_or_create(user=staff)[0].key,
    "games": [],
}
for g in range(game_count):
    # No password: hashing one costs more than everything else here.
    users = [User.objects.create_user(f"{tag}-g{g}-p{k}", display_name=f"G{g:02d} P{k} {tag}")
             for k in range(2)]
    game = services.game_create(host=users[0], ceremony_id=ceremony.pk, name=f"E2E {tag} {g}")
    services.game_join(user=users[1], access_code=game.access_code)
    picks = {}
    for k, user in enumerate(users):
        # The two players of a game never pick alike; games differ from each other.
        for c, category in enumerate(categories):
            nomination_id = nominees[category.pk][(g + c + k) % 3]
            services.pick_submit(game_id=game.pk, user=user, category_id=category.pk,
                                 nomination_id=nomination_id)
            picks[f"{user.pk}:{category.pk}"] = nomination_id
    out["games"].append({
        "game_id": game.pk,
        "players": [[u.pk, u.username, u.display_name, Token.objects.create(user=u).key]
                    for u in users],
        "picks": picks,
    })
print(json.dumps(out))
"""


@dataclass
class PartyGame:
    game_id: int
    players: list[Player]
    picks: dict[tuple[int, int], int]  # (user id, category id) -> nomination id

    def board(self, winners: dict[int, int], points: dict[int, int]) -> dict[int, tuple[int, int]]:
        """userId -> (totalScore, correctCount) once `winners` (category id ->
        nomination id) are revealed."""
        board = {}
        for player in self.players:
            right = [cid for cid, nid in winners.items() if self.picks[player.id, cid] == nid]
            board[player.id] = (sum(points[cid] for cid in right), len(right))
        return board


@dataclass
class ManyGames:
    categories: list[tuple[int, int, list[int]]]  # (id, points, nomination ids)
    staff_token: str
    games: list[PartyGame]

    @property
    def points(self) -> dict[int, int]:
        return {cid: points for cid, points, _ in self.categories}


def many_games(stack: LiveStack, tag: str, games: int, points: list[int]) -> ManyGames:
    """One ceremony, `games` games of two players each: in game g, player k
    picks nominee (g + category index + k) % 3."""
    params = {"tag": tag, "games": games, "points": points}
    script = f"import json\nPARAMS = json.loads({json.dumps(params)!r})\n{_MANY_GAMES_SCRIPT}"
    data = json.loads(stack.shell(script).strip().splitlines()[-1])
    return ManyGames(
        categories=[(c[0], c[1], c[2]) for c in data["categories"]],
        staff_token=data["staff_token"],
        games=[
            PartyGame(
                game_id=game["game_id"],
                players=[Player(*row) for row in game["players"]],
                picks={
                    (int(user), int(category)): nid
                    for key, nid in game["picks"].items()
                    for user, category in [key.split(":")]
                },
            )
            for game in data["games"]
        ],
    )


def winner_post(server: Server, setup: ManyGames, category_id: int, nomination_id: int):
    return http(
        server,
        "POST",
        f"/api/categories/{category_id}/winner",
        token=setup.staff_token,
        body={"nominationId": nomination_id},
    )


def board_of(update: dict[str, Any]) -> dict[int, tuple[int, int]]:
    return {p["userId"]: (p["totalScore"], p["correctCount"]) for p in update["players"]}


# --- 6. Many games of one ceremony --------------------------------------------------------------


@server_logs
async def test_one_reveal_gives_each_game_of_the_ceremony_its_own_board(stack):
    setup = await asyncio.to_thread(many_games, stack, "many", 20, [5, 3, 2])
    category_id, _, nominations = setup.categories[0]
    winners = {category_id: nominations[0]}
    watches = []
    try:
        for g, game in enumerate(setup.games):
            index = g % len(stack.servers)
            player = game.players[g % 2]
            watches.append(
                await watch(stack.servers[index], player, game.game_id, f"game{g}@daphne{index}")
            )
        boards = {game.game_id: game.board(winners, setup.points) for game in setup.games}

        sent = time.monotonic()
        status, body = await asyncio.to_thread(
            winner_post, stack.servers[0], setup, category_id, nominations[0]
        )
        assert status == 200, body
        deadline = sent + RECOVERY
        await wait_for_seq(watches, 2, deadline)
        expected = [Due("game:status", deadline), Due("leaderboard:update", deadline)]
        problems = delivery_problems(watches, expected, sent)
        for w in watches:
            foreign = [f for _, f in w.frames if f.get("gameId", w.game_id) != w.game_id]
            if foreign:
                problems.append(
                    f"{w.label} (game {w.game_id}) received frames of other games: "
                    + ", ".join(f"{f['type']} of game {f['gameId']}" for f in foreign[:5])
                )
            for update in w.of_type("leaderboard:update"):
                if update.get("gameId") != w.game_id:
                    continue
                got, want = board_of(update), boards[w.game_id]
                if got != want or update["revealedCount"] != 1:
                    problems.append(
                        f"{w.label} (game {w.game_id}): board {got}, revealedCount "
                        f"{update['revealedCount']}; expected {want}, 1"
                    )
        if problems:
            pytest.fail(
                f"one reveal, {len(watches)} games of one ceremony (boards are userId: "
                "(totalScore, correctCount)):\n  " + "\n  ".join(problems)
            )
    finally:
        await close_all(watches)


# --- 7. Two reveals racing: each frame shows the board at its own seq ---------------------------


@server_logs
async def test_racing_reveals_each_frame_shows_the_board_at_its_seq(stack):
    """Two reveals of one ceremony, through the two processes at once. The
    ceremony has several games, so the reveal that commits first still has
    other games' events to hand over while the second one commits: a frame
    rendered then would show the second reveal's points under the first's seq."""
    rounds = 5
    # More categories than the rounds reveal: the games must not complete.
    points = [*range(2 * rounds, 0, -1), 1, 1]
    setup = await asyncio.to_thread(many_games, stack, "race", 8, points)
    a, b = stack.servers
    # One socket per game, and the last game (its events are handed over
    # last: the likeliest to go wrong) on both processes.
    plan = [(g, g % 2, 0) for g in range(len(setup.games))] + [(len(setup.games) - 1, 1, 1)]
    games = {game.game_id: game for game in setup.games}
    winners: dict[int, int] = {}  # category id -> nomination id, revealed so far

    def race(category: int, nominee: int, server: Server, barrier: threading.Barrier):
        category_id, _, nominations = setup.categories[category]
        barrier.wait(10)
        return winner_post(server, setup, category_id, nominations[nominee])

    # A wrong frame is the same on every socket of its game: message -> sockets.
    content: dict[str, list[str]] = {}

    def wrong(message: str, w: Watch) -> None:
        content.setdefault(message, []).append(w.label)

    def content_report() -> str:
        hit = sorted({int(message.split()[1]) for message in content})
        return (
            f"{len(hit)} of {rounds} races gave frames whose standings are not those at their "
            f"own seq (rounds {hit}; boards are userId: (totalScore, correctCount)):"
            + "".join(f"\n  {message} [{', '.join(labels)}]" for message, labels in content.items())
        )

    watches: list[Watch] = []
    try:
        for g, index, k in plan:
            game = setup.games[g]
            label = f"game{g}.player{k}@daphne{index}"
            watches.append(await watch(stack.servers[index], game.players[k], game.game_id, label))
        seen = 0  # events every socket has had so far
        for r in range(rounds):
            pair = {
                setup.categories[2 * r][0]: setup.categories[2 * r][2][r % 3],
                setup.categories[2 * r + 1][0]: setup.categories[2 * r + 1][2][(r + 1) % 3],
            }
            barrier = threading.Barrier(2)
            sent = time.monotonic()
            results = await asyncio.gather(
                asyncio.to_thread(race, 2 * r, r % 3, a, barrier),
                asyncio.to_thread(race, 2 * r + 1, (r + 1) % 3, b, barrier),
            )
            assert [status for status, _ in results] == [200, 200], results
            types = ["game:status"] if r == 0 else []
            types += ["leaderboard:update", "leaderboard:update"]
            deadline = sent + RECOVERY
            # A late duplicate would show in the next round's check.
            await wait_for_seq(watches, seen + len(types), deadline, settle=0.3)
            problems = delivery_problems(watches, [Due(t, deadline) for t in types], sent, seen)
            for w in watches:
                game = games[w.game_id]
                updates = sorted(
                    (
                        f
                        for _, f in w.events()
                        if f["type"] == "leaderboard:update" and f["seq"] > w.seq + seen
                    ),
                    key=lambda f: f["seq"],
                )
                named = [(u.get("lastRevealed") or {}).get("categoryId") for u in updates]
                for position, update in enumerate(updates[:2]):
                    where = (
                        f"round {r} game {w.game_id} seq {update['seq']} "
                        f"(lastRevealed {named[position]})"
                    )
                    if position == 0:
                        if named[0] not in pair:
                            wrong(f"{where}: names neither of {list(pair)}", w)
                            continue
                        revealed = {**winners, named[0]: pair[named[0]]}
                    else:
                        revealed = {**winners, **pair}
                        if named[1] not in pair or named[1] == named[0]:
                            wrong(f"{where}: the frame before named {named[0]}", w)
                    got, want = board_of(update), game.board(revealed, setup.points)
                    if got != want or update["revealedCount"] != len(revealed):
                        wrong(
                            f"{where}: revealedCount {update['revealedCount']}, board {got}; "
                            f"expected revealedCount {len(revealed)}, board {want}",
                            w,
                        )
            if problems:
                pytest.fail(
                    f"round {r} of racing reveals: "
                    + report(stack, problems, watches[-1].game_id, watches[-1].seq + seen)
                    + (f"\nAlso: {content_report()}" if content else "")
                )
            winners.update(pair)
            seen += len(types)
        if content:
            pytest.fail(content_report())
    finally:
        await close_all(watches)
