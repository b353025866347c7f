"""GET /metrics and what is counted (config.metrics, docs/operations.md).

Several processes behind one scrape: tests/e2e/test_metrics_multiprocess.py."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import Client
from prometheus_client import REGISTRY

from config import metrics
from config.proxies import TrustedProxyHeaders
from leaderboard.fanout import Hub
from tests.api.conftest import error_of


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class FakeSocket:
    """A follower that records what the hub handed it."""

    def __init__(self, number: int) -> None:
        self.socket_id = f"fake#{number}"
        self.got: list[dict[str, Any]] = []

    async def game_event(self, message: dict[str, Any]) -> None:
        self.got.append(message)

    async def game_broadcast(self, message: dict[str, Any]) -> None:
        self.got.append(message)


def board_text(game_id: int, seq: int) -> str:
    players = [{"userId": n, "name": "Zoë"} for n in range(20)]
    return json.dumps(
        {"type": "leaderboard:update", "gameId": game_id, "seq": seq, "players": players},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def test_loopback_gets_the_prometheus_text_format():
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    for name in (
        "envelope_sockets_open",
        "envelope_sockets_joined",
        "envelope_frames_sent_total",
        "envelope_reveal_delivery_seconds_bucket",
        "envelope_events_replayed_total",
        "envelope_channel_layer_errors_total",
        "envelope_http_requests_total",
    ):
        assert name in text, name


def test_other_addresses_get_403_in_the_error_shape():
    response = Client(REMOTE_ADDR="203.0.113.7").get("/metrics")
    assert error_of(response) == (403, "FORBIDDEN")
    assert b"envelope_" not in response.content


def test_allowed_networks_come_from_the_setting(settings):
    settings.METRICS_ALLOWED_IPS = ["10.1.0.0/16"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


async def scrape_through_proxy(forwarded_for: str) -> int:
    """A request from nginx (a trusted proxy) on behalf of `forwarded_for`,
    through config.proxies as config.asgi stacks it."""
    app = TrustedProxyHeaders(ASGIHandler(), trusted=["10.0.0.9"])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/metrics",
        "raw_path": b"/metrics",
        "query_string": b"",
        "root_path": "",
        "client": ("10.0.0.9", 40000),
        "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"testserver"), (b"x-forwarded-for", forwarded_for.encode())],
    }
    sent: list[dict[str, Any]] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop(0)
        await asyncio.Event().wait()  # the client stays: Django aborts on a disconnect
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"]


async def test_behind_a_trusted_proxy_the_forwarded_client_decides():
    # nginx's own address is loopback-like for the proxy, but the client it
    # speaks for is who counts.
    assert await scrape_through_proxy("203.0.113.7") == 403
    assert await scrape_through_proxy("127.0.0.1") == 200


def test_http_responses_are_counted_by_status():
    before = sample("envelope_http_requests_total", status="404")
    Client().get("/api/no-such-thing")
    assert sample("envelope_http_requests_total", status="404") == before + 1


async def test_a_hand_out_counts_frames_and_bytes_once_for_all_its_sockets():
    hub = Hub()
    sockets = [FakeSocket(n) for n in range(250)]
    hub.games[7] = set(sockets)
    text = board_text(7, 3)
    frames = sample("envelope_frames_sent_total", type="leaderboard:update")
    size = sample("envelope_frame_bytes_sent_total", type="leaderboard:update")
    await hub.dispatch({"type": "game.events", "events": [(7, 3, text, None)]})
    assert all(len(s.got) == 1 for s in sockets)
    assert sample("envelope_frames_sent_total", type="leaderboard:update") == frames + 250
    assert sample("envelope_frame_bytes_sent_total", type="leaderboard:update") == size + 250 * len(
        text.encode()
    )


async def test_a_reveal_is_timed_from_commit_to_last_write_and_logged(caplog):
    hub = Hub()
    hub.games[8] = {FakeSocket(1), FakeSocket(2)}
    count = sample("envelope_reveal_delivery_seconds_count")
    total = sample("envelope_reveal_delivery_seconds_sum")
    committed_at = time.time() - 0.25  # committed a quarter of a second ago
    with caplog.at_level(logging.INFO, logger="envelope.reveals"):
        await hub.dispatch(
            {
                "type": "game.events",
                "events": [(8, 5, board_text(8, 5), None)],
                "committed_at": committed_at,
            }
        )
    assert sample("envelope_reveal_delivery_seconds_count") == count + 1
    assert 0.25 <= sample("envelope_reveal_delivery_seconds_sum") - total < 5
    (record,) = [r for r in caplog.records if r.name == "envelope.reveals"]
    assert (record.game_id, record.seq, record.frames) == (8, 5, 2)
    assert record.commit_to_last_write_ms >= 250


async def test_other_events_are_not_timed_as_reveals():
    hub = Hub()
    hub.games[9] = {FakeSocket(1)}
    count = sample("envelope_reveal_delivery_seconds_count")
    status = json.dumps({"type": "game:status", "gameId": 9, "seq": 1, "status": "LIVE"})
    await hub.dispatch(
        {"type": "game.events", "events": [(9, 1, status, None)], "committed_at": time.time()}
    )
    assert sample("envelope_reveal_delivery_seconds_count") == count


async def test_with_metrics_disabled_nothing_is_counted(monkeypatch):
    monkeypatch.setattr(metrics, "ENABLED", False)
    hub = Hub()
    hub.games[10] = {FakeSocket(1)}
    frames = sample("envelope_frames_sent_total", type="presence:diff")
    diff = json.dumps({"type": "presence:diff", "gameId": 10}, separators=(",", ":"))
    await hub.dispatch({"type": "game.broadcasts", "frames": [(10, diff)]})
    assert sample("envelope_frames_sent_total", type="presence:diff") == frames


def test_socket_gauges_are_set_from_the_hubs_sets():
    a, b, c = object(), object(), object()
    hub = SimpleNamespace(users={1: {a, b}, 2: {c}}, games={5: {a}, 6: {a, b}})
    metrics.refresh_gauges(hub)  # type: ignore[arg-type]
    assert sample("envelope_sockets_open") == 3
    assert sample("envelope_sockets_joined") == 2


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('{"type":"leaderboard:update","gameId":1}', "leaderboard:update"),
        ('{"type":"reaction:broadcast"}', "reaction:broadcast"),
        ('{"gameId":1,"type":"x"}', "other"),
        ('{"type":"' + "a" * 100 + '"}', "other"),
        ("", "other"),
    ],
)
def test_frame_type_is_read_without_parsing(text, kind):
    assert metrics.frame_type(text) == kind
