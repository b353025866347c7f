"""Benchmark: sync-view requests through the ASGI application, in-process.

Not a test. Sends `--requests` GETs of each path straight to
`config.asgi.application` (no server, no sockets) on PostgreSQL, in a
database of its own (`envelope_bench_http`, created on the server of
DATABASE_URL and dropped afterwards), and prints the median and p90 time
per request and how many trips to a thread each one made
(config/http_handler.py).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/envelope \\
        .venv/bin/python bench/http_requests.py [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "envelope_bench_http"
PATHS = ("/api/ceremonies", "/api/games")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="GETs per path")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if urlparse(url).scheme not in {"postgres", "postgresql"}:
        print("bench/http_requests.py needs DATABASE_URL=postgres://…", file=sys.stderr)
        return 2
    import psycopg

    admin = urlunparse(urlparse(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    try:
        run(urlunparse(urlparse(url)._replace(path=f"/{BENCH_DB}")), args.requests)
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    return 0


def run(database_url: str, requests: int) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY="envelope-bench-only-" + secrets.token_hex(16),
        ALLOWED_HOSTS="127.0.0.1",
    )
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from asgiref import sync
    from rest_framework.authtoken.models import Token

    from accounts.models import User
    from config.asgi import application

    staff = User.objects.create(username="bench-http-staff", is_staff=True)
    token = Token.objects.create(user=staff).key
    trips = [0]
    call = sync.SyncToAsync.__call__

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        trips[0] += 1
        return await call(self, *args, **kwargs)

    sync.SyncToAsync.__call__ = counted  # type: ignore[method-assign]

    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Token {token}".encode())]

    async def get(path: str) -> int:
        sent = await asgi_answer(application, get_scope(path, headers))
        return sent[0]["status"]

    async def measure() -> None:
        for path in PATHS:
            status = await get(path)
            trips[0] = 0
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                await get(path)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            print(
                f"GET {path} ({status}): median {statistics.median(times):.2f} ms, "
                f"p90 {times[int(len(times) * 0.9)]:.2f} ms, "
                f"{trips[0] / requests:.1f} trips to a thread per request"
            )

    asyncio.run(measure())


def get_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """An ASGI HTTP scope of a GET over HTTPS (as behind the proxy)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 443),
    }


async def asgi_answer(application: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message `application` sends for a request without a body,
    from a client that stays until the answer is complete."""
    pending = [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # a disconnect would abort the answer
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await application(scope, receive, send)
    return sent


if __name__ == "__main__":
    sys.exit(main())
