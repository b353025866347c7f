"""The drain on SIGTERM, with real daphne processes (docs/operations.md, "Drain").

An event committed just before SIGTERM, which the channel layer never
carried (its message lost: the fast path is switched off for that one
commit, and the periodic recovery check is an hour away), must still reach
the connected sockets before their 1012: only the drain's own catch-up can
bring it. Meanwhile /readyz answers 503 and a new socket is refused, and the
process exits within ENVELOPE_DRAIN_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import require_live_stack_services
from tests.e2e.conftest import joined, make_party, open_socket, recv, ticket
from tests.liveserver import LiveStack

pytestmark = pytest.mark.e2e

DRAIN_SECONDS = 6.0
# Long enough to probe the draining process before the sockets close.
NOTICE_SECONDS = 2.0


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    require_live_stack_services()
    extra = {
        "ENVELOPE_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "ENVELOPE_DRAIN_NOTICE_SECONDS": str(NOTICE_SECONDS),
        # No periodic catch-up during the test: only the drain's can deliver.
        "ENVELOPE_RECOVERY_SECONDS": "3600",
    }
    with LiveStack(processes=1, extra_env=extra) as live:
        live.failed = False  # type: ignore[attr-defined]
        yield live
        if live.failed:
            print(f"--- daphne log ---\n{live.servers[0].log()[-8000:]}")


def reveal_without_the_fast_path(stack: LiveStack, category_id: int, nomination_id: int) -> None:
    """Commit a reveal whose channel-layer message is lost: it is only in
    the event log."""
    stack.shell(
        "from leaderboard import events\n"
        "events._send_soon = lambda group, message: None\n"
        "from games import services\n"
        f"services.category_reveal(category_id={category_id}, nomination_id={nomination_id})\n"
    )


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def frames_within(socket, seconds: float) -> list[dict]:
    frames, deadline = [], time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            frames.append(await recv(socket, left))
    except TimeoutError:
        pass
    return frames


async def frames_until_closed(socket, wait: float) -> list[dict]:
    frames = []
    try:
        while True:
            frames.append(await recv(socket, wait))
    except ConnectionClosed:
        return frames


async def test_sigterm_drains_committed_events_then_closes_with_1012(stack):
    server = stack.servers[0]
    party = make_party(stack, "drain", 2, [3, 2])
    assert get(f"{server.url}/readyz") == (200, {"database": "ok", "redis": "ok"})
    sockets = [(await joined(server, player, party.game_id))[0] for player in party.players]
    fresh_ticket = ticket(server, party.players[0])
    category_id, _, nominations = party.categories[0]

    await asyncio.to_thread(reveal_without_the_fast_path, stack, category_id, nominations[1])
    # The fast path really is off: the reveal does not arrive on its own
    # (presence frames of the joins may).
    early = await frames_within(sockets[0], 1.5)
    assert "leaderboard:update" not in [f["type"] for f in early], early

    assert server.process is not None
    process = server.process
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)

    # Draining: not ready, and no new socket, while the open ones stay.
    status, body = await asyncio.to_thread(get, f"{server.url}/readyz")
    assert (status, body.get("server")) == (503, "draining"), body
    assert (await asyncio.to_thread(get, f"{server.url}/healthz"))[0] == 200
    with pytest.raises(InvalidStatus) as refused:
        await open_socket(server, str(fresh_ticket))
    assert refused.value.response.status_code == 503
    assert time.monotonic() - started < NOTICE_SECONDS, "probed after the notice period"

    for socket in sockets:
        frames = await frames_until_closed(socket, wait=DRAIN_SECONDS + 2)
        updates = [f for f in frames if f["type"] == "leaderboard:update"]
        assert updates, f"the committed reveal never reached the socket: {frames}"
        assert updates[-1]["lastRevealed"]["categoryId"] == category_id
        assert socket.close_code == 1012

    exit_code = await asyncio.to_thread(process.wait, DRAIN_SECONDS + 5)
    elapsed = time.monotonic() - started
    assert elapsed < DRAIN_SECONDS + 1.0, f"exited after {elapsed:.1f} s"
    assert elapsed >= NOTICE_SECONDS  # the notice period was kept
    assert exit_code == 0
    log = server.log()
    assert "drain done in" in log
    assert "Traceback" not in log
    server.process = None
    # The refused ticket was never used: it opens a socket once the server is back.
    await asyncio.to_thread(server.start)
    again = await open_socket(server, str(fresh_ticket))
    try:
        assert (await recv(again))["type"] == "hello"
    finally:
        await again.close()
