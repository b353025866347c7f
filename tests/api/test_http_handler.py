"""config/http_handler.py: a request for a sync view runs Django's whole
middleware chain and the view in one trip to a thread; async views keep
Django's async chain. Driven with raw ASGI messages through the
application daphne serves (config.asgi)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref import sync

from bench.http_requests import asgi_answer, get_scope
from config.asgi import django_asgi_app
from config.http_handler import view_is_async
from tests.api.test_security_headers import assert_strict_headers


async def answer(path: str) -> tuple[int, dict[str, str], bytes]:
    sent = await asgi_answer(django_asgi_app, get_scope(path, [(b"host", b"testserver")]))
    start = sent[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], headers, body


@pytest.fixture
def thread_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to a thread with sync_to_async."""
    trips: list[str] = []
    call = sync.SyncToAsync.__call__

    async def counted(self: sync.SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await call(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counted)
    return trips


async def test_a_sync_view_and_every_middleware_run_in_one_trip_to_a_thread(thread_trips):
    status, headers, body = await answer("/api/ceremonies")
    # The contract's refusal, and what the middleware adds, as through Django's own chain.
    assert status == 401
    assert json.loads(body)["error"]["code"] == "AUTH_REQUIRED"
    assert headers["x-frame-options"] == "DENY"
    assert_strict_headers(headers, "/api/ceremonies")
    # The request_started signal's receivers, the chain with the view, and
    # the response's close (request_finished): three trips. Django's async
    # chain made 18.
    assert len(thread_trips) == 3, thread_trips
    assert thread_trips.count("BaseHandler.get_response") == 1


async def test_an_unknown_url_is_the_sync_chain_s_404_in_the_contract_shape(thread_trips):
    status, _, body = await answer("/api/no-such-thing")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "NOT_FOUND"
    assert "BaseHandler.get_response" in thread_trips


def test_async_views_are_told_apart_by_their_url(rf):
    assert view_is_async(rf.get("/readyz"))
    assert view_is_async(rf.get("/api/games/1/events"))
    assert view_is_async(rf.get("/metrics"))
    assert not view_is_async(rf.get("/api/ceremonies"))
    assert not view_is_async(rf.get("/"))
    assert not view_is_async(rf.get("/no/such/page"))


async def test_an_async_view_keeps_django_s_async_chain(thread_trips, monkeypatch):
    monkeypatch.setattr("config.health.database_status", _ok)
    monkeypatch.setattr("config.health.redis_status", _ok)
    status, _, _ = await answer("/readyz")
    assert status in (200, 503)
    assert "BaseHandler.get_response" not in thread_trips


async def _ok() -> str:
    return "ok"
