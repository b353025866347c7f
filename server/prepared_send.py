"""An ASGI extension under our server: send one pre-framed text to many sockets.

A reveal sends the same text to thousands of local sockets. Through ASGI each
write is a `websocket.send` that passes Channels' send, daphne's reply
coroutine, a UTF-8 encode and autobahn's framing, once per socket, before the
first byte leaves (bench/README.md, "The server seam's figures"). autobahn's
own broadcast tool, `PreparedMessage`, frames a payload once, and `write_now`
hands those bytes to each connection's socket at once.

Our `Server` (server/daphne_server.py) puts
`scope["extensions"][server.extension.EXTENSION]` on every WebSocket scope: a
`PreparedSend` bound to that connection. The consumer still decides what to
send and when (leaderboard.consumers); this is only a faster write, used for
texts shared by many sockets. Without our server (tests, other servers) the
extension is absent and the consumer uses `send()`.
"""

from __future__ import annotations

from typing import Any

from autobahn.websocket.protocol import PreparedMessage

# Importing it installs no reactor (daphne installs its own at start).
from twisted.internet.tcp import Server as TCPServer


class PreparedSend:
    """Writes prepared messages to one daphne connection (the extension's
    contract: server.extension.PreparedSend)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    @staticmethod
    def prepare(text: str) -> PreparedMessage:
        """Frame `text` once (a server frame is unmasked: the same bytes fit
        every connection)."""
        return PreparedMessage(text.encode("utf-8"), False, False, False)

    def send(self, prepared: PreparedMessage) -> bool:
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
    """Write `data` to a connection now when nothing is queued ahead of it.

    Connections our server accepts are `DirectWriteServer`s, whose `write()`
    does it; a plain Twisted TCP transport (made elsewhere) gets the same
    here; TLS or any other transport: its own `write()`, unchanged.
    """
    if type(transport) is TCPServer:
        data = send_now(transport, data)
        if not data:
            return
    transport.write(data)


class DirectWriteServer(TCPServer):
    """Twisted's TCP server connection, whose writes leave at once.

    Twisted's `write()` only buffers: it registers the socket for writing
    (an epoll_ctl), the bytes leave on a later turn of the loop, and the
    socket is unregistered (another epoll_ctl). For a reveal to 2,000 sockets
    that was most of the time the hub spent after framing, and in a burst of
    joins (a handshake answer, `hello` and `joined` per socket) the writes'
    registering and unregistering were a large share of the loop
    (bench/README.md, "The server seam's figures"). Here the kernel is offered the bytes first;
    only what it does not take goes through Twisted's buffer, in order.
    Our server makes its listening ports accept these (server/daphne_server.py).
    """

    def write(self, data: bytes) -> None:
        rest = send_now(self, data)
        if rest:
            super().write(rest)


def send_now(transport: TCPServer, data: bytes) -> bytes:
    """Offer `data` to the kernel if nothing is queued ahead of it on this
    plain (not TLS) connection; returns what it did not take."""
    if not (
        transport.connected
        and not transport.TLS
        and not transport.disconnecting
        and not transport._writeDisconnected
        and transport.offset == len(transport.dataBuffer)
        and not transport._tempDataBuffer
    ):
        return data
    try:
        sent = transport.socket.send(data)
    except OSError:
        # Would block, or a broken connection: Twisted's write path
        # retries, or finds the error and closes the connection.
        return data
    return data[sent:]
