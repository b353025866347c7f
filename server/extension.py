"""What our server offers the application, as the application sees it: the
prepared-send ASGI extension and shutdown hooks.

Under our server (server/prepared_send.py) every WebSocket scope carries
`scope["extensions"][EXTENSION]`, an object with `prepare(text)` and
`send(prepared)`. Under any other server (uvicorn, Channels' test
communicator) it is absent and the application uses `websocket.send`.

This module imports neither Twisted nor autobahn: the application may import
it under any server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

EXTENSION = "envelope.prepared_send"


class ClientGone(OSError):
    """Raised by `send` on a connection the client already closed. ASGI asks
    servers for an OSError there; daphne lets autobahn's own exception out,
    which our server translates (uvicorn raises its own OSError subclass)."""


ShutdownHook = Callable[[], Awaitable[None]]
_shutdown_hooks: list[ShutdownHook] = []


def on_shutdown(hook: ShutdownHook) -> ShutdownHook:
    """Have our server await `hook()` when it is told to stop (SIGTERM),
    before it drops its connections: the application's moment to close its
    sockets with a code of its choosing. ASGI has no such event for
    WebSockets; under any other server the hooks are never run."""
    _shutdown_hooks.append(hook)
    return hook


def shutdown_hooks() -> list[ShutdownHook]:
    return list(_shutdown_hooks)


# Set by our server when it is told to stop, before the hooks run: from then
# on it refuses WebSocket upgrades (503) and the application's readiness
# answers 503 (config/health.py), while open sockets and requests finish.
_draining = False


def start_draining() -> None:
    global _draining
    _draining = True


def draining() -> bool:
    """True once the server was told to stop (docs/operations.md, "Drain")."""
    return _draining


class PreparedSend(Protocol):
    """`scope["extensions"][EXTENSION]`: bound to one WebSocket connection."""

    def prepare(self, text: str) -> Any:
        """Frame `text` once; the result may be sent to any connection."""
        ...

    def send(self, prepared: Any) -> bool:
        """Write a prepared text to this connection now; False if the
        connection is no longer open (its disconnect is on its way)."""
        ...
