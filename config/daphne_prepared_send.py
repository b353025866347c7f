"""An ASGI extension under daphne: send one pre-framed text to many sockets.

A reveal sends the same text to thousands of local sockets. Through ASGI each
write is a `websocket.send` that passes Channels' send, daphne's reply
coroutine, a UTF-8 encode and autobahn's framing: about 36 µs per socket,
70 ms of one process's loop for 2,000 sockets, before the first byte leaves.
autobahn's own broadcast tool, `PreparedMessage`, frames a payload once, and
`write_now` hands those bytes to each connection's socket at once.

`install()` makes daphne put `scope["extensions"][EXTENSION]` on every
WebSocket scope: a `PreparedSend` bound to that connection. The consumer
still decides what to send and when (leaderboard.consumers); this is only a
faster write, used for texts shared by many sockets. Without daphne (tests,
other servers) the extension is absent and the consumer uses `send()`.
"""

from __future__ import annotations

from typing import Any

# Importing it installs no reactor (daphne installs its own at start).
from twisted.internet.tcp import Server as TCPServer

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
        # autobahn's own path when it would do more than write the bytes:
        # compression negotiated, or its own send queue in use.
        if protocol._perMessageCompress is None and not protocol.send_queue:
            write_now(protocol.transport, prepared.payloadHybi)
        else:
            protocol.sendPreparedMessage(prepared)
        return True


def write_now(transport: Any, data: bytes) -> None:
    """Write `data` to a plain TCP connection now, when nothing is queued ahead
    of it; what the kernel does not take goes through Twisted's buffer.

    Twisted's `write()` only buffers: it registers the socket for writing
    (an epoll_ctl), the bytes leave on a later turn of the loop, and the
    socket is unregistered (another epoll_ctl). For a reveal to 2,000 sockets
    that was most of the time the hub spent after framing (bench/fanout.py:
    p99 0.27-0.29 s before, 0.15-0.17 s after). TLS or any other transport:
    Twisted's `write()`, unchanged.
    """
    if (
        type(transport) is TCPServer
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and transport.offset == len(transport.dataBuffer)
        and not transport._tempDataBuffer
    ):
        try:
            sent = transport.socket.send(data)
        except OSError:
            # Would block, or a broken connection: Twisted's write path
            # retries, or finds the error and closes the connection.
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


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
