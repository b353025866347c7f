"""The HTTP doors through a real daphne: bodies over 1 MiB, whose
X-Forwarded-For counts, and what a client gets while Redis or PostgreSQL is
away (503 in the contract's shape, a friendly page, nothing half-written).

One daphne on a PostgreSQL cluster and a redis-server of this module's own
(tests/faults.py), which the tests stop and start; a second daphne on the
shared services trusts loopback as its proxy.
"""

from __future__ import annotations

import http.client as http_client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, Party, http, make_party
from tests.e2e.fault_watch import reveal
from tests.faults import private_stack
from tests.liveserver import LiveStack, Server

pytestmark = pytest.mark.e2e

# Failed sign-ins per address before the door shuts, on these stacks.
ADDRESS_LIMIT = 5
LIMITS_ENV = {
    "ENVELOPE_LOGIN_IP_FAILURE_LIMIT": str(ADDRESS_LIMIT),
    "ENVELOPE_LOGIN_FAILURE_LIMIT": "50",
}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    """One daphne on a private PostgreSQL and Redis, which tests may stop."""
    with private_stack(1, postgres=True, extra_env=LIMITS_ENV) as live:
        yield live


@pytest.fixture(scope="module")
def party(stack: LiveStack) -> Party:
    return make_party(stack, "hard", 3, [5, 3, 1])


@pytest.fixture(autouse=True)
def _services_up(stack: LiveStack) -> Iterator[None]:
    """Every test starts and ends with both services running."""
    yield
    stack.redis.start()  # type: ignore[attr-defined]
    if not stack.postgres.running:  # type: ignore[attr-defined]
        stack.postgres.start()  # type: ignore[attr-defined]


def _sign_in(server: Server, username: str, password: str, **headers: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{server.url}/api/auth/login",
        method="POST",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _raw(
    server: Server, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, str], bytes]:
    connection = http_client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(method, path, **kwargs)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# --- bodies over 1 MiB ----------------------------------------------------------------------


def test_a_declared_body_over_one_mebibyte_gets_413(stack):
    body = json.dumps({"username": "x" * (2 * MIB), "password": "p"}).encode()
    status, _, raw = _raw(
        stack.servers[0],
        "POST",
        "/api/auth/login",
        body=body,
        headers={"Content-Type": "application/json"},
    )
    assert status == 413
    assert json.loads(raw)["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_a_chunked_body_over_one_mebibyte_gets_413(stack):
    chunks = (b"x" * 65536 for _ in range(40))  # 2.5 MiB, no Content-Length
    status, _, raw = _raw(
        stack.servers[0],
        "POST",
        "/api/auth/register",
        body=chunks,
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    assert status == 413
    assert json.loads(raw)["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "Traceback" not in stack.servers[0].log()


# --- X-Forwarded-For counts only from TRUSTED_PROXIES -----------------------------------


def test_a_client_cannot_rotate_x_forwarded_for_past_the_address_limit(stack, party):
    server = stack.servers[0]
    for attempt in range(ADDRESS_LIMIT):
        status, _ = _sign_in(
            server, f"nobody{attempt}", "wrong", **{"X-Forwarded-For": f"198.51.100.{attempt}"}
        )
        assert status == 401
    player = party.players[1]
    status, body = _sign_in(
        server, player.username, PASSWORD, **{"X-Forwarded-For": "198.51.100.200"}
    )
    assert (status, body["error"]["code"]) == (429, "RATE_LIMITED")


def test_behind_a_trusted_proxy_each_client_address_counts_apart():
    stack = LiveStack(processes=1, extra_env={**LIMITS_ENV, "TRUSTED_PROXIES": "127.0.0.1"})
    with stack:
        server = stack.servers[0]
        stack.create_user("trusted-player", PASSWORD)
        for attempt in range(ADDRESS_LIMIT):
            status, _ = _sign_in(
                server, f"nobody{attempt}", "wrong", **{"X-Forwarded-For": "198.51.100.1"}
            )
            assert status == 401
        # The proxy's client 198.51.100.1 is shut out; another of its clients is not.
        status, body = _sign_in(
            server, "trusted-player", PASSWORD, **{"X-Forwarded-For": "198.51.100.1"}
        )
        assert (status, body["error"]["code"]) == (429, "RATE_LIMITED")
        status, _ = _sign_in(
            server, "trusted-player", PASSWORD, **{"X-Forwarded-For": "198.51.100.2"}
        )
        assert status == 200


# --- Redis away ---------------------------------------------------------------------------


def test_while_redis_is_away_the_doors_answer_503_and_nothing_is_written(stack, party):
    server = stack.servers[0]
    player = party.players[1]
    stack.redis.stop()  # type: ignore[attr-defined]

    status, body = _sign_in(server, player.username, PASSWORD)
    assert (status, body["error"]["code"]) == (503, "SERVICE_UNAVAILABLE")
    status, body = http(
        server,
        "POST",
        "/api/auth/register",
        body={"username": "during-outage", "password": PASSWORD, "displayName": "D"},
    )
    assert (status, body["error"]["code"]) == (503, "SERVICE_UNAVAILABLE")
    status, body = http(
        server, "POST", "/api/games/join", token=player.token, body={"accessCode": "WRONGCOD"}
    )
    assert (status, body["error"]["code"]) == (503, "SERVICE_UNAVAILABLE")
    # What needs no Redis keeps working.
    status, body = http(server, "GET", f"/api/games/{party.game_id}", token=player.token)
    assert status == 200, body

    stack.redis.start()  # type: ignore[attr-defined]
    status, _ = _sign_in(server, player.username, PASSWORD)
    assert status == 200
    assert "during-outage" not in stack.shell(
        "from accounts.models import User\n"
        "print(list(User.objects.values_list('username', flat=True)))"
    )
    log = server.log()
    assert "Traceback" not in log
    assert "503 for POST /api/auth/login: Redis unreachable" in log


# --- PostgreSQL away ------------------------------------------------------------------------


def _browser_session(server: Server, username: str) -> urllib.request.OpenerDirector:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    request = urllib.request.Request(
        f"{server.url}/api/auth/login",
        method="POST",
        data=json.dumps({"username": username, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with opener.open(request, timeout=30) as response:
        assert response.status == 200
    return opener


def _page(opener: urllib.request.OpenerDirector, url: str) -> tuple[int, str, str]:
    try:
        with opener.open(url, timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_while_postgres_is_away_api_and_pages_answer_503_and_nothing_is_half_written(stack, party):
    server = stack.servers[0]
    player = party.players[1]
    browser = _browser_session(server, player.username)
    category_id = party.categories[2][0]
    stack.postgres.stop()  # type: ignore[attr-defined]
    try:
        started = time.monotonic()
        status, body = http(server, "GET", f"/api/games/{party.game_id}", token=player.token)
        assert (status, body["error"]["code"]) == (503, "SERVICE_UNAVAILABLE")
        first_answer = time.monotonic() - started

        status, content_type, page = _page(browser, f"{server.url}/games/{party.game_id}/live")
        assert status == 503
        assert content_type.startswith("text/html")
        assert "Back in a moment" in page

        status, body, _ = reveal(server, party, 2, 0)
        assert (status, body["error"]["code"]) == (503, "SERVICE_UNAVAILABLE")
    finally:
        stack.postgres.start()  # type: ignore[attr-defined]

    # Back: the refused reveal left nothing behind, and the same call now works.
    deadline = time.monotonic() + 30
    while True:
        status, body = http(
            server, "GET", f"/api/ceremonies/{party.ceremony_id}", token=player.token
        )
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, body
    category = next(c for c in body["categories"] if c["id"] == category_id)
    assert (category["isRevealed"], category["winnerId"]) == (False, None)
    status, body, _ = reveal(server, party, 2, 0)
    assert status == 200, body
    status, _, page = _page(browser, f"{server.url}/games/{party.game_id}/live")
    assert status == 200
    assert "Traceback" not in server.log()
    print(f"first 503 while PostgreSQL was down came after {first_answer:.2f}s")
