"""Prometheus metrics of a server process, and `GET /metrics` (docs/operations.md).

Here, in config/, not in leaderboard/: the figures come from every layer
(HTTP requests and the database pool as well as sockets and fan-out), and
config/ is where the process-wide pieces live (health, proxies, logging).
leaderboard/ only calls the recording functions below.

Cheap on the hot path: a reveal to 2,000 sockets is counted once per
hand-out (`handed_out`: frames += n, bytes += n x size), never per socket.
The socket gauges are set from the hub's own sets every GAUGE_SECONDS and
just before a scrape, not on every connect. With METRICS_ENABLED off every
recording function returns at once (bench/metrics_overhead.py compares).

Several daphne processes: with PROMETHEUS_MULTIPROC_DIR set (before the
process starts: prometheus_client reads it at import), each process writes
its figures to files there and a scrape on any process merges them all.
Gauges that describe one process carry a `pid` label (`liveall`) and are
removed with their process: `mark_process_dead` at the end of the drain, and
at start-up for any pid in the directory that no longer runs (SIGKILL).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import sync_and_async_middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from config.errors import error_body
from config.processes import pid_alive
from config.proxies import parse_networks

if TYPE_CHECKING:
    from leaderboard.fanout import Hub

logger = logging.getLogger(__name__)

# How often each process sets its socket and pool gauges (a scrape on the
# process itself sets its own first).
GAUGE_SECONDS = 5.0

ENABLED: bool = settings.METRICS_ENABLED

# --- the metrics ------------------------------------------------------------------

SOCKETS_OPEN = Gauge(
    "envelope_sockets_open",
    "Signed-in WebSocket connections open on this process.",
    multiprocess_mode="liveall",
)
SOCKETS_JOINED = Gauge(
    "envelope_sockets_joined",
    "WebSocket connections of this process following at least one game.",
    multiprocess_mode="liveall",
)
DB_POOL_IN_USE = Gauge(
    "envelope_db_pool_in_use",
    "PostgreSQL connections of this process's pool lent out.",
    multiprocess_mode="liveall",
)
CONNECTS = Counter(
    "envelope_socket_connects",
    "WebSocket connects answered: code is 'accepted' or the close code of the refusal.",
    ["code"],
)
CLOSES = Counter(
    "envelope_socket_closes",
    "WebSocket connections closed, by close code (1000-1015, 4401, 4429; others 'other').",
    ["code"],
)
JOINS = Counter("envelope_joins", "Games joined by a socket.")
LEAVES = Counter("envelope_leaves", "Games left with a `leave` frame (a close leaves them too).")
JOIN_REFUSALS = Counter("envelope_join_refusals", "Joins refused, by error code.", ["code"])
FRAMES_SENT = Counter(
    "envelope_frames_sent",
    "Frames handed to local sockets by the hub, by frame type.",
    ["type"],
)
BYTES_SENT = Counter(
    "envelope_frame_bytes_sent",
    "UTF-8 bytes of the frames handed to local sockets by the hub, by frame type.",
    ["type"],
)
REVEAL_DELIVERY = Histogram(
    "envelope_reveal_delivery_seconds",
    "From the commit of a game event message (a reveal) to its last write on this process.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0),
)
EVENTS_REPLAYED = Counter(
    "envelope_events_replayed",
    "Events handed to sockets from the event log by recovery (lost on the fast path).",
)
CHANNEL_LAYER_ERRORS = Counter(
    "envelope_channel_layer_errors",
    "Channel-layer calls that failed, by operation (send, receive, group).",
    ["operation"],
)
PRESENCE_BATCHES = Counter("envelope_presence_batches", "presence:diff batches sent.")
REACTION_BATCHES = Counter("envelope_reaction_batches", "Reaction batches sent.")
HTTP_REQUESTS = Counter("envelope_http_requests", "HTTP responses, by status code.", ["status"])

_KNOWN_CLOSE_CODES = frozenset({*range(1000, 1016), 4401, 4429})


# --- recording (each a no-op with METRICS_ENABLED off) ----------------------------


def frame_type(text: str) -> str:
    """A frame's `type` without parsing it: every frame the server encodes
    starts with it (games.formatting.json_text of a dict whose first key is
    "type")."""
    if text.startswith('{"type":"'):
        end = text.find('"', 9, 60)
        if end > 9:
            return text[9:end]
    return "other"


def handed_out(message: dict[str, Any], count: int) -> None:
    """One hub message handed to `count` local sockets: two counter calls,
    whatever `count` is."""
    if not ENABLED or not count:
        return
    text = message.get("text")
    if text is None:
        kind, size = message["type"], 0
    else:
        # isascii() is a flag lookup: most frames skip the encode.
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        kind = frame_type(text)
    FRAMES_SENT.labels(kind).inc(count)
    if size:
        BYTES_SENT.labels(kind).inc(count * size)


def events_delivered(committed_at: float | None) -> float | None:
    """A committed event message written to every local socket of its
    games: its commit-to-last-write time in seconds (None when unknown)."""
    if committed_at is None:
        return None
    elapsed = max(0.0, time.time() - committed_at)
    if ENABLED:
        REVEAL_DELIVERY.observe(elapsed)
    return elapsed


def events_replayed(count: int) -> None:
    if ENABLED and count:
        EVENTS_REPLAYED.inc(count)


def channel_layer_error(operation: str) -> None:
    if ENABLED:
        CHANNEL_LAYER_ERRORS.labels(operation).inc()


def socket_connect(code: int | None) -> None:
    """A connect answered: accepted (None) or refused with a close code."""
    if ENABLED:
        CONNECTS.labels("accepted" if code is None else str(code)).inc()


def socket_closed(code: int | None) -> None:
    if ENABLED:
        CLOSES.labels(str(code) if code in _KNOWN_CLOSE_CODES else "other").inc()


def joined() -> None:
    if ENABLED:
        JOINS.inc()


def left() -> None:
    if ENABLED:
        LEAVES.inc()


def join_refused(code: str) -> None:
    if ENABLED:
        JOIN_REFUSALS.labels(code).inc()


def presence_batch() -> None:
    if ENABLED:
        PRESENCE_BATCHES.inc()


def reaction_batch() -> None:
    if ENABLED:
        REACTION_BATCHES.inc()


# --- gauges of this process ---------------------------------------------------------


def _db_pool_in_use() -> int | None:
    """Connections lent out by this process's PostgreSQL pool; None without one.
    Reads the pool Django made, never makes one."""
    pools = getattr(type(connections["default"]), "_connection_pools", None)
    pool = pools.get("default") if pools else None
    if pool is None:
        return None
    stats = pool.get_stats()
    return max(0, stats.get("pool_size", 0) - stats.get("pool_available", 0))


def refresh_gauges(hub: Hub | None) -> None:
    """Set this process's gauges from the hub's sets: sockets signed in
    (every one follows its user) and sockets following a game."""
    if not ENABLED:
        return
    if hub is not None:
        SOCKETS_OPEN.set(len({f for followers in hub.users.values() for f in followers}))
        SOCKETS_JOINED.set(len({f for followers in hub.games.values() for f in followers}))
    in_use = _db_pool_in_use()
    if in_use is not None:
        DB_POOL_IN_USE.set(in_use)


# --- several processes ----------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def forget_dead_processes() -> list[int]:
    """Remove the live gauges of processes that no longer run (killed
    without a drain): at start-up of each process. Returns their pids."""
    directory = multiprocess_dir()
    if directory is None or not os.path.isdir(directory):
        return []
    dead = set()
    for name in os.listdir(directory):
        # gauge_liveall_12345.db
        if name.startswith("gauge_live") and name.endswith(".db"):
            pid = name[:-3].rsplit("_", 1)[-1]
            if pid.isdigit() and not pid_alive(int(pid)):
                dead.add(int(pid))
    for pid in sorted(dead):
        multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


def process_exiting() -> None:
    """This process's live gauges leave the scrape (end of the drain)."""
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(os.getpid(), directory)


# --- GET /metrics -----------------------------------------------------------------------


def allowed_networks(entries: Iterable[str]) -> tuple[Any, ...]:
    try:
        return parse_networks(entries)
    except ValueError as error:
        raise ValueError(str(error).replace("TRUSTED_PROXIES", "METRICS_ALLOWED_IPS")) from None


def _client_allowed(request: HttpRequest) -> bool:
    # REMOTE_ADDR is scope["client"], which config.proxies rewrote from a
    # trusted proxy's X-Forwarded-For: the client's address, not nginx's.
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in allowed_networks(settings.METRICS_ALLOWED_IPS))


def _exposition() -> bytes:
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    # Every process that imports this module (a `manage.py` command too) has
    # live gauge files: those of processes gone are dropped first.
    forget_dead_processes()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)
    return generate_latest(registry)


async def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, from METRICS_ALLOWED_IPS only (403 otherwise).
    Async: it runs on the server's loop, where the hub's sets live."""
    if not _client_allowed(request):
        return JsonResponse(
            error_body("FORBIDDEN", "Metrics are only served to METRICS_ALLOWED_IPS."),
            status=403,
        )
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(
            error_body("METHOD_NOT_ALLOWED", "Use GET."), status=405, headers={"Allow": "GET"}
        )
    from leaderboard.fanout import current_hub  # the hub imports this module

    refresh_gauges(current_hub())
    return HttpResponse(_exposition(), content_type=CONTENT_TYPE_LATEST)


@sync_and_async_middleware
def http_requests_middleware(get_response: Any) -> Any:
    """Counts every HTTP response by status (first in MIDDLEWARE, so the
    redirects and refusals of the others count too). Both forms, so it adds
    no thread switch to an async chain."""
    if iscoroutinefunction(get_response):

        async def count_async(request: HttpRequest) -> HttpResponse:
            response = await get_response(request)
            if ENABLED:
                HTTP_REQUESTS.labels(str(response.status_code)).inc()
            return response

        return count_async

    def count(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if ENABLED:
            HTTP_REQUESTS.labels(str(response.status_code)).inc()
        return response

    return count
