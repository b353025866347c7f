"""An ASGI extension under daphne: send one pre-framed text to many sockets.

A reveal sends the same text to thousands of local sockets. Through ASGI each
write is a `websocket.send` that passes Channels' send, daphne's reply
coroutine, a UTF-8 encode and autobahn's framing: about 36 µs per socket,
70 ms of one process's loop for 2,000 sockets, before the first byte leaves.
autobahn's own broadcast tool, `PreparedMessage`, frames a payload once and
writes those bytes on each connection.

`install()` makes daphne put `scope["extensions"][EXTENSION]` on every
WebSocket scope: a `PreparedSend` bound to that connection. The consumer
still decides what to send and when (leaderboard.consumers); this is only a
faster write, used for texts shared by many sockets. Without daphne (tests,
other servers) the extension is absent and the consumer uses `send()`.
"""

from __future__ import annotations

from typing import Any

EXTENSION = "envelope.prepared_send"


class PreparedSend:
    """Writes prepared messages to one daphne connection."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    @staticmethod
    def prepare(text: str) -> Any:
        """Frame `text` once (a server frame is unmasked: the same bytes fit
        every connection)."""
        from autobahn.websocket.protocol import PreparedMessage

        return PreparedMessage(text.encode("utf-8"), False, False, False)

    def send(self, prepared: Any) -> bool:
        """Write it if the connection is open; False if it is not (closing or
        closed: the application's disconnect is on its way)."""
        protocol = self._protocol
        if protocol.state != protocol.STATE_OPEN:
            return False
        protocol.sendPreparedMessage(prepared)
        return True


def install() -> None:
    try:
        from daphne.server import Server
    except ImportError:  # pragma: no cover - daphne is a dependency
        return
    if getattr(Server, "envelope_prepared_send", False):
        return
    original = Server.create_application

    def create_application(self: Server, protocol: Any, scope: dict[str, Any]) -> Any:
        if scope.get("type") == "websocket":
            extensions = dict(scope.get("extensions") or {})
            extensions[EXTENSION] = PreparedSend(protocol)
            scope["extensions"] = extensions
        return original(self, protocol, scope)

    Server.create_application = create_application
    Server.envelope_prepared_send = True
