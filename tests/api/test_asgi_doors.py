"""The two ASGI doors in front of Django: whose forwarding headers count
(config.proxies) and the 1 MiB body limit (config.http_limits), driven with
raw ASGI messages. Through a real daphne: tests/e2e/test_http_hardening.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config.http_limits import BodySizeLimit
from config.proxies import TrustedProxyHeaders


class Recorder:
    """An ASGI app that records the scope it got and the body it read."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] | None = None
        self.body = b""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        if scope["type"] == "http":
            while True:
                message = await receive()
                self.body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})


def http_scope(
    client: str = "203.0.113.5", headers: list[tuple[bytes, bytes]] = (), path: str = "/api/x"
) -> dict[str, Any]:
    return {
        "type": "http",
        "path": path,
        "scheme": "http",
        "client": (client, 51000),
        "headers": list(headers),
    }


async def run(app: Any, scope: dict[str, Any], chunks: list[bytes] = ()) -> list[dict[str, Any]]:
    pending = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks or [b""])
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


# --- TRUSTED_PROXIES ----------------------------------------------------------------

XFF = b"x-forwarded-for"
PROTO = b"x-forwarded-proto"


async def test_forwarding_headers_from_an_untrusted_peer_are_ignored():
    app = Recorder()
    scope = http_scope("203.0.113.5", [(XFF, b"198.51.100.7"), (PROTO, b"https")])
    await run(TrustedProxyHeaders(app, ["10.0.0.1"]), scope)
    assert app.scope["client"] == ("203.0.113.5", 51000)
    assert app.scope["scheme"] == "http"


async def test_no_trusted_proxies_by_default_means_nobody_is_believed():
    app = Recorder()
    await run(TrustedProxyHeaders(app, []), http_scope("127.0.0.1", [(XFF, b"198.51.100.7")]))
    assert app.scope["client"] == ("127.0.0.1", 51000)


async def test_a_trusted_proxy_names_the_client_and_the_scheme():
    app = Recorder()
    scope = http_scope("10.0.0.1", [(XFF, b"198.51.100.7"), (PROTO, b"https")])
    await run(TrustedProxyHeaders(app, ["10.0.0.1"]), scope)
    assert app.scope["client"] == ("198.51.100.7", 0)
    assert app.scope["scheme"] == "https"


async def test_addresses_a_client_wrote_itself_are_skipped():
    # The client sent "X-Forwarded-For: 1.2.3.4"; nginx appended what it saw.
    app = Recorder()
    scope = http_scope("10.0.0.1", [(XFF, b"1.2.3.4, 198.51.100.7")])
    await run(TrustedProxyHeaders(app, ["10.0.0.0/8"]), scope)
    assert app.scope["client"][0] == "198.51.100.7"


async def test_a_chain_of_trusted_proxies_is_walked_right_to_left():
    app = Recorder()
    scope = http_scope("10.0.0.1", [(XFF, b"1.2.3.4, 198.51.100.7, 10.0.0.9")])
    await run(TrustedProxyHeaders(app, ["10.0.0.0/8"]), scope)
    assert app.scope["client"][0] == "198.51.100.7"


async def test_ipv6_proxies_and_clients():
    app = Recorder()
    scope = http_scope("::1", [(XFF, b"2001:db8::7")])
    await run(TrustedProxyHeaders(app, ["::1"]), scope)
    assert app.scope["client"][0] == "2001:db8::7"


async def test_a_websocket_behind_a_tls_proxy_is_wss():
    app = Recorder()
    scope = {**http_scope("10.0.0.1", [(PROTO, b"https")]), "type": "websocket", "scheme": "ws"}
    await TrustedProxyHeaders(app, ["10.0.0.1"])(scope, None, None)
    assert app.scope["scheme"] == "wss"


async def test_garbage_in_the_header_keeps_the_proxy_address():
    app = Recorder()
    scope = http_scope("10.0.0.1", [(XFF, b"not-an-address")])
    await run(TrustedProxyHeaders(app, ["10.0.0.1"]), scope)
    assert app.scope["client"][0] == "10.0.0.1"


def test_a_bad_trusted_proxies_entry_stops_the_start():
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        TrustedProxyHeaders(Recorder(), ["10.0.0.1", "nginx.local"])


# --- bodies over 1 MiB -----------------------------------------------------------------

LIMIT = 1024


async def test_a_declared_length_over_the_limit_is_refused_unread():
    app = Recorder()
    scope = http_scope(headers=[(b"content-length", str(LIMIT + 1).encode())])
    sent = await run(BodySizeLimit(app, LIMIT), scope, [b"x" * (LIMIT + 1)])
    assert app.scope is None  # Django never saw it
    assert sent[0]["status"] == 413
    body = json.loads(sent[1]["body"])
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_page_gets_a_plain_413():
    scope = http_scope(path="/signin", headers=[(b"content-length", b"999999999")])
    sent = await run(BodySizeLimit(Recorder(), LIMIT), scope)
    assert sent[0]["status"] == 413
    assert dict(sent[0]["headers"])[b"content-type"].startswith(b"text/plain")


async def test_a_chunked_body_over_the_limit_is_refused():
    app = Recorder()
    sent = await run(BodySizeLimit(app, LIMIT), http_scope(), [b"x" * 600, b"x" * 600])
    assert app.scope is None
    assert sent[0]["status"] == 413


async def test_a_chunked_body_within_the_limit_reaches_the_app_whole():
    app = Recorder()
    sent = await run(BodySizeLimit(app, LIMIT), http_scope(), [b"a" * 500, b"b" * 500])
    assert app.body == b"a" * 500 + b"b" * 500
    assert sent[0]["status"] == 200


async def test_a_body_at_the_limit_passes():
    app = Recorder()
    scope = http_scope(headers=[(b"content-length", str(LIMIT).encode())])
    sent = await run(BodySizeLimit(app, LIMIT), scope, [b"x" * LIMIT])
    assert app.body == b"x" * LIMIT
    assert sent[0]["status"] == 200
