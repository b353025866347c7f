"""Shared fixtures: factories, API clients, and the real-service guards."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import PASSWORD, UserFactory, make_ceremony

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def require_service(env_name: str, default_port: int, what: str) -> str:
    """The service's URL, or skip with a reason; in CI a missing service fails."""
    url = os.environ.get(env_name, "")
    reason = None
    if not url:
        reason = f"{what} tests need {env_name} (e.g. {env_name} unset: running embedded)"
    elif not _reachable(url, default_port):
        reason = f"{what} at {env_name}={url} is not reachable"
    if reason:
        if IN_CI:
            pytest.fail(f"CI must exercise the real services: {reason}")
        pytest.skip(reason)
    return url


def require_live_stack_services() -> None:
    """What a module-scoped stack of real servers needs: Redis and PostgreSQL
    (skip with the reason, or fail in CI). Module-scoped fixtures cannot use
    the function-scoped redis_url / postgres_url fixtures."""
    require_service("REDIS_URL", 6379, "Redis")
    database_url = require_service("DATABASE_URL", 5432, "PostgreSQL")
    if not database_url.startswith(("postgres://", "postgresql://")):
        pytest.skip("DATABASE_URL is not PostgreSQL")


@pytest.fixture
def redis_url() -> str:
    return require_service("REDIS_URL", 6379, "Redis")


@pytest.fixture
def postgres_url() -> str:
    url = require_service("DATABASE_URL", 5432, "PostgreSQL")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("DATABASE_URL is not PostgreSQL")
    return url


@pytest.fixture(autouse=True)
def _clear_cache():
    # Rate-limit counters live in the cache (Redis in CI): start every test clean.
    _cache_clear()
    yield
    _cache_clear()


def _cache_clear() -> None:
    backend = getattr(cache, "_cache", None)
    if not hasattr(backend, "get_client"):
        cache.clear()
        return
    # Redis: delete the cache's own keys only. FLUSHDB would also wipe the
    # channel layer's groups of the live servers the e2e tests keep running.
    client = backend.get_client(write=True)
    keys = list(client.scan_iter(match=cache.make_key("*"), count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _clear_process_caches(monkeypatch):
    # Per-process caches keyed by ids: every test's database reuses the ids.
    from leaderboard import events, player_names, snapshots, top

    monkeypatch.setattr(snapshots, "_boards", {})
    monkeypatch.setattr(events, "game_ceremonies", {})
    monkeypatch.setattr(player_names, "_names", {})
    top.top_text.cache_clear()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, username="staffer", display_name="Staff")


@pytest.fixture
def ceremony(db):
    return make_ceremony(categories=3, nominees=4, points=[5, 2, 1])


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def api_for():
    """api_for(user) → an APIClient authenticated with the user's token."""
    from rest_framework.authtoken.models import Token

    def make(user) -> APIClient:
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last: Playwright's sync API keeps an event loop
    running in the main thread while its session fixture lives, and async
    tests collected after it could not start their own."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
