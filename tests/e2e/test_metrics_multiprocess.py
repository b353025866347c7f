"""Two daphne processes, one scrape shows both (docs/operations.md, "Several
processes"): PROMETHEUS_MULTIPROC_DIR shared, per-process gauges with a
`pid` label, counters summed, and a drained process's gauges gone."""

from __future__ import annotations

import asyncio
import tempfile
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed

from tests.conftest import require_live_stack_services
from tests.e2e.conftest import http, joined, make_party, recv, recv_until
from tests.liveserver import LiveStack, Server

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    require_live_stack_services()
    directory = tempfile.TemporaryDirectory(prefix="envelope-metrics-")
    env = {"PROMETHEUS_MULTIPROC_DIR": directory.name}
    with directory, LiveStack(processes=2, extra_env=env) as live:
        live.failed = False  # type: ignore[attr-defined]
        yield live
        if live.failed:
            for server in live.servers:
                print(f"--- {server.log_path.name} ---\n{server.log()[-4000:]}")


def scrape(server: Server) -> Samples:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def per_pid(samples: Samples, name: str) -> dict[int, float]:
    return {
        int(dict(labels)["pid"]): v for (n, labels), v in samples.items() if n == name and labels
    }


async def test_one_scrape_shows_every_process(stack):
    a, b = stack.servers
    assert a.process is not None and b.process is not None
    pids = {a.process.pid, b.process.pid}
    party = make_party(stack, "metrics", 3, [2, 1])
    on_a, _ = await joined(a, party.players[0], party.game_id)
    on_b, _ = await joined(b, party.players[1], party.game_id)
    # One refusal: a game that does not exist.
    await on_a.send('{"type":"join","gameId":999999}')
    assert (await recv_until(on_a, "leaderboard:error"))[-1]["code"] == "GAME_NOT_FOUND"
    category_id, _, nominations = party.categories[0]
    status, body = http(
        a,
        "POST",
        f"/api/categories/{category_id}/winner",
        token=party.staff_token,
        body={"nominationId": nominations[0]},
    )
    assert status == 200, body
    for socket in (on_a, on_b):
        await recv_until(socket, "leaderboard:update")

    # The gauges are set every few seconds by each process.
    deadline = time.monotonic() + 15
    while True:
        samples = await asyncio.to_thread(scrape, a)
        if per_pid(samples, "envelope_sockets_joined") == dict.fromkeys(pids, 1.0):
            break
        assert time.monotonic() < deadline, per_pid(samples, "envelope_sockets_joined")
        await asyncio.sleep(0.5)
    assert per_pid(samples, "envelope_sockets_open") == dict.fromkeys(pids, 1.0)
    # Counters of both processes, summed.
    assert value(samples, "envelope_socket_connects_total", code="accepted") == 2
    assert value(samples, "envelope_joins_total") == 2
    assert value(samples, "envelope_join_refusals_total", code="GAME_NOT_FOUND") == 1
    assert value(samples, "envelope_frames_sent_total", type="leaderboard:update") >= 2
    assert value(samples, "envelope_reveal_delivery_seconds_count") >= 2
    assert value(samples, "envelope_http_requests_total", status="200") >= 1
    assert per_pid(samples, "envelope_db_pool_in_use").keys() <= pids
    # The other process's scrape is the same picture.
    from_b = await asyncio.to_thread(scrape, b)
    assert per_pid(from_b, "envelope_sockets_open") == dict.fromkeys(pids, 1.0)
    assert value(from_b, "envelope_joins_total") == 2

    # A drained process leaves the scrape; its counts stay in the totals.
    await on_a.close()
    b_pid = b.process.pid
    await asyncio.to_thread(b.stop)
    with pytest.raises(ConnectionClosed):
        while True:
            await recv(on_b)
    assert on_b.close_code == 1012
    samples = await asyncio.to_thread(scrape, a)
    assert b_pid not in per_pid(samples, "envelope_sockets_open")
    assert b_pid not in per_pid(samples, "envelope_sockets_joined")
    assert value(samples, "envelope_joins_total") == 2
