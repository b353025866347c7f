"""`GET /healthz` and `GET /readyz` (docs/operations.md, "Health and readiness").

- /healthz: 200 while the process runs and answers HTTP. It reads nothing:
  no database, no Redis, no session.
- /readyz: may this process take traffic? 200 `{"database": "ok", "redis":
  "ok"}` when PostgreSQL and Redis both answer within CHECK_SECONDS; 503 with
  the one that did not as "down", or with `"server": "draining"` once the
  process was told to stop (server/extension.py). Without REDIS_URL there is
  no Redis (the in-memory channel layer of a single process): "embedded".

Neither is rate-limited nor needs a session; both go through Django's host
check like any request, so a probe must send a Host in ALLOWED_HOSTS. They
are exempt from the HTTPS redirect (SECURE_REDIRECT_EXEMPT): a probe speaks
plain HTTP to the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from redis import asyncio as aioredis

from server.extension import draining

# The most a probe waits for each service: a probe never hangs on one that
# is unreachable (a dropped packet, a pool whose connections are all lent).
CHECK_SECONDS = 1.0

OK, DOWN, EMBEDDED = "ok", "down", "embedded"

# The database check runs on threads of its own (a blocked connect must not
# take a thread the requests or the hub need); two are enough for probes.
_database_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="envelope-health")


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": OK})


def _database_ping() -> None:
    connection = connections["default"]
    if connection.vendor == "postgresql":
        _postgresql_ping(connection.get_connection_params())
        return
    try:  # SQLite: a file beside the code; reading it is the check
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def _postgresql_ping(params: dict[str, Any]) -> None:
    """A connection of the probe's own, not one of the pool's: during a burst
    of joins every pooled connection may be lent for longer than a probe
    waits, which is no reason to take the process out of service."""
    import psycopg

    params = {
        key: value
        for key, value in params.items()
        if key not in ("cursor_factory", "context", "prepare_threshold")
    }
    with psycopg.connect(**params, connect_timeout=max(1, round(CHECK_SECONDS))) as conn:
        conn.execute("SELECT 1")


async def database_status() -> str:
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(
            loop.run_in_executor(_database_threads, _database_ping), CHECK_SECONDS
        )
    except Exception:
        return DOWN
    return OK


async def redis_status() -> str:
    if not settings.REDIS_URL:
        return EMBEDDED
    # A connection of its own: the shared pools may all be lent during a
    # burst, which is not a reason to take the process out of service.
    client: Any = aioredis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=CHECK_SECONDS,
        socket_timeout=CHECK_SECONDS,
        retry_on_timeout=False,
    )
    try:
        await asyncio.wait_for(client.ping(), CHECK_SECONDS)
    except Exception:
        return DOWN
    finally:
        await client.aclose()
    return OK


# A probe's answer is reused for this long, and probes arriving while a
# check runs wait for it: each check opens a connection to PostgreSQL and
# one to Redis, and /readyz answers anyone (a flood of probes must not
# become a flood of connections).
REUSE_SECONDS = 1.0


class SharedCheck:
    """The services' status, checked at most once per REUSE_SECONDS per
    process, however many probes ask at once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._result: tuple[float, tuple[str, str]] | None = None
        self._running: asyncio.Future[tuple[str, str]] | None = None

    async def status(self) -> tuple[str, str]:
        if self._result is not None and self.clock() - self._result[0] < REUSE_SECONDS:
            return self._result[1]
        running = self._running
        if running is None or running.get_loop() is not asyncio.get_running_loop():
            running = self._running = asyncio.ensure_future(self._check())
        return await asyncio.shield(running)

    async def _check(self) -> tuple[str, str]:
        try:
            database, redis = await asyncio.gather(database_status(), redis_status())
            self._result = (self.clock(), (database, redis))
            return database, redis
        finally:
            self._running = None


shared_check = SharedCheck()


async def readyz(request: HttpRequest) -> JsonResponse:
    database, redis = await shared_check.status()
    body = {"database": database, "redis": redis}
    if draining():
        body["server"] = "draining"
    ready = database == OK and redis in (OK, EMBEDDED) and not draining()
    return JsonResponse(body, status=200 if ready else 503)
