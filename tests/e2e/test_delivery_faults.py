"""Delivery under faults, end to end, as real clients see it.

The guarantee: every event of a game reaches every socket that follows it, in
seq order, exactly once per socket, even when a server process dies after its
commit, Redis restarts or is briefly unreachable, or PostgreSQL restarts; the
server itself catches its sockets up within 10 s of the fault ending, without
waiting for a later event or a client ping. Logout closes all of the user's
sockets (AUTH_REQUIRED, then 4401), even after a Redis restart.

The module runs two daphne processes on a redis-server of its own
(tests/faults.py), which the tests kill and restart; the shared Redis is never
touched. The sockets here only read: no ping, no rejoin, unless a test says so;
they, the checks of what they got and the server-log reports are in
tests/e2e/fault_watch.py.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import require_service
from tests.e2e import fault_watch
from tests.e2e.conftest import Player, http, make_party
from tests.e2e.fault_watch import (
    Due,
    Watch,
    bring_up,
    check_delivery,
    close_all,
    delivery_problems,
    first_reveal_due,
    report,
    reveal,
    reveal_without_redis,
    sockets_on_both,
    wait_for_seq,
    wait_until,
    watch,
)
from tests.faults import PrivateRedis, require_redis_server
from tests.liveserver import LiveStack, Server

pytestmark = pytest.mark.e2e

# "Within 10 s of the fault ending", with room for a loaded machine.
RECOVERY = 15.0


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


def _redis(stack: LiveStack) -> PrivateRedis:
    return stack.redis  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _healthy(stack: LiveStack) -> None:
    """Each test starts with Redis and both servers up, whatever an earlier
    one left behind."""
    bring_up(stack, _redis(stack))


def _redis_log(stack: LiveStack) -> Callable[[], str]:
    """For a failed test's report: the private Redis's last 20 log lines (the
    whole log's, not only the test's), without its overcommit warning."""

    def tail() -> str:
        lines = [line for line in _redis(stack).log().splitlines() if "overcommit" not in line]
        return "--- private redis-server log (tail) ---\n" + "\n".join(lines[-20:])

    return tail


# On failure, print what the servers (and Redis) logged during the test.
server_logs = fault_watch.server_logs(_redis_log)


async def redis_restart(stack: LiveStack, down: float = 1.0) -> float:
    """Kill the private Redis, keep it down `down` s, start it again (empty).
    Returns when it answered again (monotonic)."""
    private = _redis(stack)
    await asyncio.to_thread(private.stop)
    await asyncio.sleep(down)
    await asyncio.to_thread(private.start)
    return time.monotonic()


async def sockets_of(stack: LiveStack, game_id: int, player: Player) -> list[Watch]:
    """A socket for `player` on each server process."""
    return [
        await watch(server, player, game_id, f"{player.username}@daphne{index}")
        for index, server in enumerate(stack.servers)
    ]


# --- 1. Redis restarts between events ---------------------------------------------------


@server_logs
async def test_redis_restart_then_a_reveal_reaches_every_socket(stack):
    party = make_party(stack, "redis-restart", 4, [5, 3, 2])
    watches = await sockets_on_both(party, stack)
    try:
        back = await redis_restart(stack)
        await asyncio.sleep(1)
        status, body, took = await asyncio.to_thread(reveal, stack.servers[0], party, 0, 0)
        assert status == 200, f"reveal after the Redis restart answered {status}: {body}"
        expected = first_reveal_due(back + RECOVERY)
        await check_delivery(
            stack,
            watches,
            expected,
            back,
            f"after Redis restarted (reveal answered {took:.2f}s after it was back +1 s): ",
        )
        for w in watches:
            update = w.events()[-1][1]
            assert update["lastRevealed"]["categoryId"] == party.categories[0][0], (w.label, update)

        sent = time.monotonic()
        status, body, _ = await asyncio.to_thread(reveal, stack.servers[1], party, 1, 1)
        assert status == 200, body
        expected = [*expected, Due("leaderboard:update", sent + RECOVERY)]
        await check_delivery(stack, watches, expected, sent, "the reveal after that: ")
    finally:
        await close_all(watches)


# --- 2. Redis unreachable during a reveal -------------------------------------------------


@server_logs
async def test_reveal_while_redis_is_down_reaches_every_socket_once_it_is_back(stack):
    party = make_party(stack, "redis-down", 4, [5, 3, 2])
    watches = await sockets_on_both(party, stack)
    private = _redis(stack)
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
        await check_delivery(
            stack,
            watches,
            first_reveal_due(back + RECOVERY),
            back,
            f"reveal made while Redis was down (the POST took {took:.2f}s), Redis back at +0: ",
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
    watches = await sockets_on_both(party, stack)
    try:
        committed = await reveal_without_redis(stack, party)
        await check_delivery(
            stack,
            watches,
            first_reveal_due(committed + 10),
            committed,
            "reveal committed by a process whose channel-layer send failed "
            "(+0 = that process exited): ",
        )
    finally:
        await close_all(watches)


# --- 4. Logout after a Redis restart ----------------------------------------------------------


@server_logs
async def test_logout_after_a_redis_restart_closes_the_users_sockets_with_4401(stack):
    party = make_party(stack, "logout-fault", 2, [1])
    user, other = party.players[1], party.players[0]
    mine = await sockets_of(stack, party.game_id, user)
    theirs = await sockets_of(stack, party.game_id, other)
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

        await check_delivery(
            stack,
            survivors,
            first_reveal_due(sent + RECOVERY),
            sent,
            "sockets on the surviving process: ",
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
        await check_delivery(
            stack,
            rejoined,
            first_reveal_due(time.monotonic() + 10),
            sent,
            "replay after resuming on the restarted process: ",
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
        problems = delivery_problems(watches, first_reveal_due(deadline), sent)
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
