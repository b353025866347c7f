"""server/prepared_send.py: one framed text written to many sockets, on the
real daphne/autobahn protocol and a real Twisted TCP transport."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor, StringTransport

from server.extension import EXTENSION
from server.prepared_send import DirectWriteServer, PreparedSend, write_now
from tests.server.asgi_app import make_application
from tests.server.harness import Client, client_frame, start


def transport_pair(
    transport_class: type[tcp.Server],
) -> Iterator[tuple[tcp.Server, socket.socket, MemoryReactor]]:
    """A real Twisted TCP server transport over a socket pair, on a reactor
    that only records which sockets want writing."""
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.settimeout(2)
    reactor = MemoryReactor()
    transport = transport_class(ours, Protocol(), ("127.0.0.1", 1), None, 1, reactor)
    yield transport, peer, reactor
    ours.close()
    peer.close()


@pytest.fixture
def tcp_pair() -> Iterator[tuple[tcp.Server, socket.socket, MemoryReactor]]:
    """Twisted's own TCP server transport."""
    yield from transport_pair(tcp.Server)


@pytest.fixture
def direct_pair() -> Iterator[tuple[tcp.Server, socket.socket, MemoryReactor]]:
    """The transport our server's ports make."""
    yield from transport_pair(DirectWriteServer)


def read_exactly(peer: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += peer.recv(size - len(data))
    return data


async def connect(server, *, extensions: str | None = None) -> Client:
    client = Client(server)
    await client.upgrade(extensions=extensions)
    return client


def test_a_text_is_framed_once_as_an_unmasked_rfc6455_text_frame():
    short = PreparedSend.prepare("héllo").payloadHybi
    assert short == b"\x81\x06" + "héllo".encode()
    text = "x" * 7500
    long = PreparedSend.prepare(text).payloadHybi
    assert long[:4] == b"\x81\x7e" + (7500).to_bytes(2, "big") and long[4:] == text.encode()


async def test_every_websocket_scope_carries_the_extension_bound_to_its_connection(
    monkeypatch,
):
    scopes: list[dict] = []
    server = start(monkeypatch, make_application(scopes=scopes))
    first, second = await connect(server), await connect(server)
    extensions = [scope["extensions"][EXTENSION] for scope in scopes]
    assert [type(e) for e in extensions] == [PreparedSend, PreparedSend]
    assert [e._protocol for e in extensions] == [first.websocket, second.websocket]


async def test_the_bytes_are_those_websocket_send_writes(monkeypatch):
    server = start(monkeypatch, make_application())
    client = await connect(server)
    text = '{"type":"leaderboard:update","players":"' + "é" * 300 + '"}'
    await client.send(client_frame(f"plain {text}".encode()))
    plain = client.transport.value()
    client.transport.clear()
    await client.send(client_frame(f"prepared {text}".encode()))
    assert client.transport.value() == plain == PreparedSend.prepare(text).payloadHybi


async def test_the_same_bytes_go_to_every_open_socket_and_none_to_a_closing_one(monkeypatch):
    server = start(monkeypatch, make_application())
    open_a, open_b, closing = [await connect(server) for _ in range(3)]
    await closing.send(client_frame(b"close 1000"))
    closing.transport.clear()
    prepared = PreparedSend.prepare('{"type":"leaderboard:update"}')
    sockets = (open_a, open_b, closing)
    results = [PreparedSend(s.websocket).send(prepared) for s in sockets]
    assert results == [True, True, False]
    assert open_a.transport.value() == open_b.transport.value() == prepared.payloadHybi
    assert closing.transport.value() == b""


def accept_deflate(offers):
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


async def test_with_compression_negotiated_autobahn_compresses_the_frame(monkeypatch):
    server = start(monkeypatch, make_application())
    # daphne never negotiates compression; were it to, autobahn's path is kept.
    server.ws_factory.setProtocolOptions(perMessageCompressionAccept=accept_deflate)
    client = await connect(server, extensions="permessage-deflate")
    assert client.websocket._perMessageCompress is not None
    prepared = PreparedSend.prepare("x" * 1000)
    assert PreparedSend(client.websocket).send(prepared)
    written = client.transport.value()
    assert written[0] == 0xC1  # FIN, RSV1 (compressed), text
    assert written != prepared.payloadHybi and len(written) < 100


async def test_with_autobahns_send_queue_in_use_its_own_path_is_kept(monkeypatch):
    server = start(monkeypatch, make_application())
    client = await connect(server)
    protocol = client.websocket
    sent_through_autobahn = []
    monkeypatch.setattr(protocol, "sendPreparedMessage", sent_through_autobahn.append)
    protocol.send_queue.append((b"earlier", False))
    prepared = PreparedSend.prepare("{}")
    assert PreparedSend(protocol).send(prepared)
    assert sent_through_autobahn == [prepared] and client.transport.value() == b""
    protocol.send_queue.clear()


def test_with_nothing_buffered_the_bytes_leave_at_once(tcp_pair):
    transport, peer, reactor = tcp_pair
    write_now(transport, b"frame")
    assert read_exactly(peer, 5) == b"frame"
    assert transport._tempDataBuffer == [] and transport not in reactor.getWriters()


def test_bytes_queued_ahead_go_first(tcp_pair):
    transport, peer, reactor = tcp_pair
    transport.write(b"joined;")  # buffered by Twisted, not sent yet
    write_now(transport, b"update")
    assert transport in reactor.getWriters()
    transport.doWrite()
    assert read_exactly(peer, 13) == b"joined;update"


def test_what_the_kernel_does_not_take_waits_in_twisteds_buffer(tcp_pair):
    transport, peer, reactor = tcp_pair
    data = bytes(range(256)) * 40_000  # 10 MB: more than any socket buffer
    write_now(transport, data)
    assert transport in reactor.getWriters()  # the rest is Twisted's to send
    received = b""
    while len(received) < len(data):
        received += peer.recv(1 << 20)
        transport.doWrite()
    assert received == data


def test_a_connection_losing_its_writes_gets_nothing_written_now(tcp_pair):
    transport, peer, _ = tcp_pair
    transport.loseWriteConnection()  # Twisted's half-close: writes must stop
    transport.doWrite()  # nothing buffered: Twisted shuts the socket's write side
    assert transport._writeDisconnected
    write_now(transport, b"frame")
    assert peer.recv(5) == b""  # the end of the stream, and no frame after it


def test_other_transports_use_their_own_write():
    transport = StringTransport()
    write_now(transport, b"frame")
    assert transport.value() == b"frame"


# --- DirectWriteServer: every write of our server's connections ---------------------


def test_a_connection_of_our_ports_writes_at_once(direct_pair):
    transport, peer, reactor = direct_pair
    transport.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    transport.write(b"hello")
    assert read_exactly(peer, 41) == b"HTTP/1.1 101 Switching Protocols\r\n\r\nhello"
    assert transport not in reactor.getWriters()


def test_twisteds_own_connection_only_buffers(tcp_pair):
    transport, peer, reactor = tcp_pair
    transport.write(b"hello")
    assert transport in reactor.getWriters()  # it leaves on a later turn of the loop
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(5)


def test_what_the_kernel_leaves_is_buffered_and_later_writes_queue_behind_it(direct_pair):
    transport, peer, reactor = direct_pair
    data = bytes(range(256)) * 40_000  # 10 MB: more than any socket buffer
    transport.write(data)
    transport.write(b"after")  # must not jump ahead of the buffered rest
    assert transport in reactor.getWriters()
    received = b""
    while len(received) < len(data) + 5:
        received += peer.recv(1 << 20)
        transport.doWrite()
    assert received == data + b"after"


def test_a_half_closed_connection_of_our_ports_writes_nothing(direct_pair):
    transport, peer, _ = direct_pair
    transport.loseWriteConnection()
    transport.doWrite()
    transport.write(b"frame")
    assert peer.recv(5) == b""


async def test_our_server_makes_its_tcp_ports_accept_direct_write_connections(monkeypatch):
    server = start(monkeypatch, make_application())
    port = tcp.Port(0, server.http_factory, interface="127.0.0.1", reactor=server.test_reactor)
    port.startListening()  # bound, so daphne can note its address
    try:
        assert port.transport is tcp.Server
        server.listen_success(port)
        assert port.transport is DirectWriteServer
        assert tcp.Port.transport is tcp.Server  # that port only, not Twisted's class
    finally:
        port.socket.close()
