"""Our `Server`, run in the test's own event loop on a memory reactor, and
clients that speak raw bytes to it.

`start()` calls the real `Server.run()` (daphne's, through our subclass):
it makes its factories, configures them and "listens" on a Twisted
`MemoryReactorClock` instead of a port; the listening factory is the one
production listens with. A `Client` connects a `StringTransport` to it, sends
an HTTP upgrade and client frames through the real daphne HTTP channel,
daphne request, autobahn WebSocket protocol and our subclasses of them, and
reads what the server wrote. Nothing of daphne, Twisted or autobahn is faked.
"""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

import pytest
from daphne import server as daphne_server
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from server.daphne_server import Server

SERVER_ADDRESS = IPv4Address("TCP", "127.0.0.1", 8000)
CLIENT_ADDRESS = IPv4Address("TCP", "127.0.0.1", 5555)
MASK = b"\x01\x02\x03\x04"


class LoopReactor(MemoryReactorClock):
    """A memory reactor daphne's `run()` can use: its asyncio loop is the test's."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._asyncioEventloop = loop

    def run(self, installSignalHandlers: bool = True) -> None:
        super().run()


def start(monkeypatch: pytest.MonkeyPatch, application: Any, **options: Any) -> Server:
    reactor = LoopReactor(asyncio.get_running_loop())
    monkeypatch.setattr(daphne_server, "reactor", reactor)
    # run() points asyncio's current loop at the reactor's: the test's own.
    server = Server(
        application=application,
        endpoints=["tcp:port=8000:interface=127.0.0.1"],
        signal_handlers=False,
        **options,
    )
    server.run()  # returns at once: the memory reactor runs nothing
    assert not server.abort_start
    server.test_reactor = reactor
    return server


async def settle(turns: int = 5) -> None:
    """Let the application and daphne's reply coroutines run."""
    for _ in range(turns):
        await asyncio.sleep(0)


def client_frame(
    payload: bytes, *, opcode: int = 0x1, fin: bool = True, announce: int | None = None
) -> bytes:
    """A masked client frame; `announce` claims another length in its header."""
    length = len(payload) if announce is None else announce
    header = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 1 << 16:
        header += bytes([0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header += bytes([0x80 | 127]) + length.to_bytes(8, "big")
    masked = bytes(byte ^ MASK[index % 4] for index, byte in enumerate(payload))
    return header + MASK + masked


def server_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(first byte, opcode, payload) of each unmasked server frame in `data`."""
    frames = []
    while data:
        first, second = data[0], data[1]
        assert not second & 0x80, "a server frame is not masked"
        length, offset = second & 0x7F, 2
        if length == 126:
            length, offset = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, offset = int.from_bytes(data[2:10], "big"), 10
        frames.append((first, first & 0x0F, data[offset : offset + length]))
        data = data[offset + length :]
    return frames


def close_code(payload: bytes) -> int:
    return int.from_bytes(payload[:2], "big")


class Client:
    """One TCP connection to the server, as bytes."""

    def __init__(self, server: Server) -> None:
        (_, factory, _, _) = server.test_reactor.tcpServers[0]
        self.transport = StringTransport(hostAddress=SERVER_ADDRESS, peerAddress=CLIENT_ADDRESS)
        self.channel = factory.buildProtocol(CLIENT_ADDRESS)
        self.channel.makeConnection(self.transport)
        self.server = server

    @property
    def websocket(self) -> Any:
        """The WebSocket protocol daphne handed the transport to."""
        return self.transport.protocol

    def send_upgrade(self, path: str = "/ws/", extensions: str | None = None) -> None:
        key = base64.b64encode(os.urandom(16))
        headers = [
            f"GET {path} HTTP/1.1".encode(),
            b"Host: 127.0.0.1:8000",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Key: " + key,
            b"Sec-WebSocket-Version: 13",
        ]
        if extensions:
            headers.append(b"Sec-WebSocket-Extensions: " + extensions.encode())
        self.channel.dataReceived(b"\r\n".join(headers) + b"\r\n\r\n")

    async def upgrade(self, path: str = "/ws/", extensions: str | None = None) -> bytes:
        """Upgrade and return the server's handshake answer."""
        self.send_upgrade(path, extensions)
        await settle()
        answer, _, rest = self.transport.value().partition(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 101"), answer
        self.transport.clear()
        assert rest == b""
        return answer

    async def send(self, data: bytes) -> None:
        self.websocket.dataReceived(data)
        await settle()

    def frames(self) -> list[tuple[int, int, bytes]]:
        frames = server_frames(self.transport.value())
        self.transport.clear()
        return frames
