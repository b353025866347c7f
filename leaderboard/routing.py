"""The one WebSocket endpoint, /ws/ (docs/protocol.md).

A plain function rather than Channels' URLRouter and `as_asgi()`: an idle
socket keeps every coroutine between daphne and its consumer suspended, each
with the scope copy it made. This one checks the path and hands back the
consumer's own coroutine, so it keeps nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from channels.security.websocket import WebsocketDenier

from leaderboard.consumers import LeaderboardConsumer

WEBSOCKET_PATH = "/ws/"


def websocket_application(scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
    path = scope.get("path", "")
    root_path = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]  # mounted under a prefix, as URLRouter does
    if path != WEBSOCKET_PATH:
        return WebsocketDenier()(scope, receive, send)  # the handshake gets 403
    return LeaderboardConsumer()(scope, receive, send)
