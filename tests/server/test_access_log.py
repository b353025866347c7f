"""The access log keeps daphne's HTTP lines and leaves WebSocket lifecycles
to the application's own log lines (config/logs.py)."""

from __future__ import annotations

from typing import Any

from tests.server.asgi_app import make_application
from tests.server.harness import Client, start


async def test_websocket_lifecycles_are_not_in_the_access_log(monkeypatch):
    logged: list[tuple[str, str]] = []

    def action_logger(protocol: Any, action: str, details: dict[str, Any]) -> None:
        logged.append((protocol, action))

    server = start(monkeypatch, make_application(), action_logger=action_logger)
    await Client(server).upgrade()
    assert not [entry for entry in logged if entry[0] == "websocket"]

    server.log_action("http", "complete", {"path": "/healthz", "status": 200})
    assert logged == [("http", "complete")]
