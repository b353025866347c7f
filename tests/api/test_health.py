"""GET /healthz and GET /readyz (config.health, docs/operations.md)."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from django.test import Client

from config import health
from server import extension
from tests.faults import closed_port


@pytest.fixture(autouse=True)
def _not_draining(monkeypatch):
    # The flag is per process: a test that ran a server's shutdown (tests/server)
    # must not leave this one draining.
    monkeypatch.setattr(extension, "_draining", False)
    # A fresh shared check: an answer reused from another test is not this one's.
    monkeypatch.setattr(health, "shared_check", health.SharedCheck())


def test_healthz_answers_without_the_database_or_a_session():
    # No django_db mark: pytest-django fails any query this test makes.
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "sessionid" not in response.cookies
    assert "csrftoken" not in response.cookies


def test_healthz_is_never_rate_limited():
    client = Client()
    assert {client.get("/healthz").status_code for _ in range(200)} == {200}


@pytest.mark.django_db
def test_readyz_is_ready_when_database_and_redis_answer(settings, redis_url):
    settings.REDIS_URL = redis_url
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readyz_without_redis_reports_the_embedded_layer(settings):
    settings.REDIS_URL = ""
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "embedded"}


@pytest.mark.django_db
def test_readyz_names_an_unreachable_redis(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "redis": "down"}


@pytest.mark.django_db
def test_readyz_gives_up_on_a_database_that_hangs_within_the_check_bound(settings, monkeypatch):
    settings.REDIS_URL = ""
    monkeypatch.setattr(health, "_database_ping", lambda: time.sleep(3))
    started = time.monotonic()
    response = Client().get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json() == {"database": "down", "redis": "embedded"}
    assert elapsed < health.CHECK_SECONDS + 1.0


@pytest.mark.django_db
def test_readyz_names_a_database_that_refuses(settings, monkeypatch):
    settings.REDIS_URL = ""

    def refused() -> None:
        from django.db import OperationalError

        raise OperationalError("connection refused")

    monkeypatch.setattr(health, "_database_ping", refused)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"] == "down"


@pytest.mark.django_db
def test_readyz_fails_while_the_server_drains(settings, monkeypatch):
    settings.REDIS_URL = ""
    monkeypatch.setattr(extension, "_draining", True)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "redis": "embedded", "server": "draining"}
    # Liveness is another question: the process still runs.
    assert Client().get("/healthz").status_code == 200


@pytest.mark.django_db
def test_probes_are_exempt_from_the_https_redirect(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.REDIS_URL = ""
    client = Client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    # Everything else still goes to HTTPS.
    assert client.get("/api/auth/me").status_code == 301


def test_probes_keep_the_host_check(settings):
    # A probe must send a Host in ALLOWED_HOSTS (docs/operations.md).
    response = Client().get("/healthz", HTTP_HOST="internal-lb.example")
    assert response.status_code == 400


@pytest.mark.django_db
def test_the_database_check_does_not_wait_for_the_pool(postgres_url, monkeypatch):
    # Every pooled connection lent (a burst of joins) is not an outage: the
    # probe opens a connection of its own. (Called here, on this thread's
    # connection: the probe's threads have theirs.)
    def pool_exhausted(*args, **kwargs):
        raise AssertionError("the probe waited for a pooled connection")

    monkeypatch.setattr(health.connections["default"], "cursor", pool_exhausted)
    health._database_ping()


@pytest.mark.django_db
def test_the_database_check_fails_on_a_postgresql_that_refuses(postgres_url, monkeypatch):
    params = health.connections["default"].get_connection_params()
    monkeypatch.setattr(
        health.connections["default"],
        "get_connection_params",
        lambda: {**params, "port": closed_port()},
    )
    with pytest.raises(psycopg.OperationalError):
        health._database_ping()


def test_probes_at_once_share_one_check_and_reuse_it_briefly(settings, monkeypatch):
    # Each check opens a PostgreSQL and a Redis connection: a flood of probes
    # must not become a flood of connections.
    checks: list[str] = []

    async def database_status() -> str:
        checks.append("database")
        await asyncio.sleep(0.05)
        return "ok"

    monkeypatch.setattr(health, "database_status", database_status)
    settings.REDIS_URL = ""
    now = [100.0]
    shared = health.SharedCheck(clock=lambda: now[0])

    async def probes() -> list[tuple[str, str]]:
        return await asyncio.gather(*(shared.status() for _ in range(50)))

    answers = asyncio.run(probes())
    assert checks == ["database"]
    assert set(answers) == {("ok", "embedded")}
    now[0] += health.REUSE_SECONDS / 2
    asyncio.run(shared.status())
    assert checks == ["database"]  # reused
    now[0] += health.REUSE_SECONDS
    asyncio.run(shared.status())
    assert checks == ["database", "database"]  # stale: checked again
