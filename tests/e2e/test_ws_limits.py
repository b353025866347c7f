"""The WebSocket's limits over real daphne processes, as an attacker meets them.

- Any message over 4 KiB closes the socket with a close frame 1009, whatever
  its size: 5 KiB, 2 MiB (refused from its header alone, before its payload
  arrives), or 10 KiB in 1 KiB fragments; under `daphne` and under
  `manage.py runserver` (server/close_codes.py). Before, a message over
  daphne's 1 MiB ended in a TCP drop: the client saw 1006.
- A ticket opens one socket, across processes: used on one, refused on the other.
- A lone surrogate (`"\\ud800"`, valid JSON) gets its answer and the socket
  stays open; before, the reply's UTF-8 encode raised, the socket closed 1011
  and its user stayed online for a minute.
- With Redis unreachable, connecting is SERVICE_UNAVAILABLE and 1013, with one
  warning line per socket in the log and no traceback.

Two daphne processes on a fresh database and a Redis of their own
(tests/faults.py): the shared Redis is neither flushed nor stopped.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from tests.conftest import require_service
from tests.e2e.conftest import Party, make_party, recv, recv_until, ticket
from tests.faults import PrivateRedis, require_redis_server
from tests.liveserver import ROOT, LiveStack, Server, free_port

pytestmark = pytest.mark.e2e

KIB = 1024


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    """Overrides tests/e2e/conftest.py's `stack`: two daphne processes on a
    private Redis, which a test stops (the shared one is never touched)."""
    database_url = require_service("DATABASE_URL", 5432, "PostgreSQL")
    if not database_url.startswith(("postgres://", "postgresql://")):
        pytest.skip("DATABASE_URL is not PostgreSQL")
    with PrivateRedis(require_redis_server()) as private:
        live = LiveStack(processes=2, database_url=database_url, redis_url=private.url)
        live.redis = private  # type: ignore[attr-defined]
        live.failed = False  # type: ignore[attr-defined]  # set by tests/e2e/conftest.py
        try:
            live.start()
            yield live
            if live.failed:  # type: ignore[attr-defined]
                for index, server in enumerate(live.servers):
                    lines = [line for line in server.log().splitlines() if " - - [" not in line]
                    print(f"--- daphne {index} log ---\n" + "\n".join(lines[-200:]))
        finally:
            live.close()


@pytest.fixture(scope="module")
def party(stack: LiveStack) -> Party:
    return make_party(stack, "limits", 2, [1])


@pytest.fixture(autouse=True)
def _no_traceback(stack: LiveStack) -> Iterator[None]:
    """Whatever a test sends, no server process logs a traceback."""
    yield
    for index, server in enumerate(stack.servers):
        assert "Traceback" not in server.log(), f"daphne {index} logged a traceback"


async def open_ws(server: Server, ticket_value: str) -> ClientConnection:
    """A socket presenting `ticket_value` exactly as given, used or not
    (conftest's `open_socket` swaps a used one for a fresh one). No limit on
    what the client receives; no compression: sizes on the wire are the sizes."""
    return await connect(
        f"{server.ws_url}?ticket={ticket_value}",
        origin=server.url,
        proxy=None,
        compression=None,
        max_size=None,
        open_timeout=30,
    )


async def hello_socket(server: Server, ticket_value: str) -> ClientConnection:
    socket = await open_ws(server, ticket_value)
    assert (await recv(socket))["type"] == "hello"
    return socket


async def closing_frame(socket: ClientConnection, message: str | Iterable[str]) -> Close | None:
    """Send `message` (an iterable: one fragment a frame) and read until the
    socket closes: the close frame the server sent, None if it sent none
    (the client then reports 1006)."""
    try:
        await socket.send(message)
        while True:
            await asyncio.wait_for(socket.recv(), 10)
    except ConnectionClosed as closed:
        return closed.rcvd


def ping_text(size: int) -> str:
    """A valid ping of exactly `size` bytes."""
    head, tail = '{"type":"ping","t":"', '"}'
    return head + "x" * (size - len(head) - len(tail)) + tail


def oversized_messages() -> dict[str, str | list[str]]:
    fragmented = ping_text(10 * KIB)
    return {
        "5 KiB": ping_text(5 * KIB),
        "2 MiB": ping_text(2048 * KIB),
        "10 KiB in 1 KiB fragments": [
            fragmented[start : start + KIB] for start in range(0, len(fragmented), KIB)
        ],
    }


async def assert_limits(server: Server, new_ticket: Callable[[], str]) -> None:
    """Every oversized message gets a close frame 1009; 4 KiB exactly passes."""
    for name, message in oversized_messages().items():
        socket = await hello_socket(server, new_ticket())
        received = await closing_frame(socket, message)
        assert received is not None, f"{name}: no close frame (the client saw 1006)"
        assert received.code == 1009, f"{name}: {received}"
        assert socket.close_code == 1009
    socket = await hello_socket(server, new_ticket())
    try:
        await socket.send(ping_text(4 * KIB))
        assert (await recv(socket))["type"] == "pong"
    finally:
        await socket.close()


async def test_every_message_over_4_kib_closes_with_1009(stack, party):
    server = stack.servers[0]
    player = party.players[1]
    await assert_limits(server, lambda: ticket(server, player))


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One server frame (unmasked): (opcode, payload)."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


async def raw_socket(
    server: Server, ticket_value: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket over a bare TCP connection, past its `hello`: to send
    frames no client library would (a header without its payload)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws/?ticket={ticket_value} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nOrigin: {server.url}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert response.startswith(b"HTTP/1.1 101"), response
    opcode, payload = await asyncio.wait_for(_read_frame(reader), 10)
    assert (opcode, json.loads(payload)["type"]) == (1, "hello")
    return reader, writer


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, length: int | None = None
) -> bytes:
    """A masked client frame; `length` announces more payload than follows."""
    length = len(payload) if length is None else length
    header = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", length)
    mask = os.urandom(4)
    return header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


async def close_code_of(reader: asyncio.StreamReader) -> int:
    """The code of the next frame, which must be a close frame."""
    opcode, payload = await asyncio.wait_for(_read_frame(reader), 5)
    assert opcode == 8, (opcode, payload[:100])
    return struct.unpack("!H", payload[:2])[0]


async def test_a_2_mib_frame_is_refused_from_its_header_alone(stack, party):
    """The server closes 1009 on the frame's header alone: it neither waits
    for nor buffers the 2 MiB it announces."""
    server = stack.servers[1]
    reader, writer = await raw_socket(server, ticket(server, party.players[1]))
    try:
        writer.write(client_frame(1, b"", length=2048 * KIB))  # the header, no payload
        await writer.drain()
        assert await close_code_of(reader) == 1009
    finally:
        writer.close()


async def test_a_fragmented_message_is_refused_at_the_fragment_past_4_kib(stack, party):
    """Counted across fragments, on the server: closed 1009 at the header of
    the fragment that takes the message past 4 KiB, before the message ends
    (the application never sees it)."""
    server = stack.servers[1]
    reader, writer = await raw_socket(server, ticket(server, party.players[1]))
    try:
        text = ping_text(10 * KIB).encode()
        # Four fragments, 4 KiB in all: within the limit, nothing happens.
        writer.write(client_frame(1, text[:KIB], fin=False))
        for start in range(KIB, 4 * KIB, KIB):
            writer.write(client_frame(0, text[start : start + KIB], fin=False))
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.5)
        # The fifth fragment's header alone (no payload follows): 5 KiB announced.
        writer.write(client_frame(0, b"", fin=False, length=KIB))
        await writer.drain()
        assert await close_code_of(reader) == 1009
    finally:
        writer.close()


async def test_a_ticket_used_on_one_process_is_refused_on_the_other(stack, party):
    first, second = stack.servers
    player = party.players[1]
    for used_on, replayed_on in ((first, second), (second, first)):
        value = ticket(used_on, player)
        socket = await hello_socket(used_on, value)
        try:
            replay = await open_ws(replayed_on, value)
            frame = await recv(replay)
            assert (frame["type"], frame["code"]) == ("leaderboard:error", "AUTH_REQUIRED")
            with pytest.raises(ConnectionClosed):
                await recv(replay)
            assert replay.close_code == 4401
            # And on the process that accepted it, once more.
            again = await open_ws(used_on, value)
            assert (await recv(again))["code"] == "AUTH_REQUIRED"
            with pytest.raises(ConnectionClosed):
                await recv(again)
            assert again.close_code == 4401
        finally:
            await socket.close()


async def test_lone_surrogates_get_answers_and_the_user_goes_offline_on_close(stack, party):
    first, second = stack.servers
    host, player = party.players
    watcher = await hello_socket(second, ticket(second, host))
    socket = await hello_socket(first, ticket(first, player))
    try:
        await watcher.send(json.dumps({"type": "join", "gameId": party.game_id}))
        await recv_until(watcher, "joined")
        # The raw texts: `\ud800` escapes, as a client would write them.
        await socket.send(r'{"type":"ping","ref":"\ud800","t":{"\udc00":"\ud83d"}}')
        pong = await recv(socket)
        assert pong == {"type": "pong", "t": {"\udc00": "\ud83d"}, "seqs": {}, "ref": "\ud800"}
        await socket.send(f'{{"type":"join","gameId":{party.game_id},"ref":"\\udbff"}}')
        joined = (await recv_until(socket, "joined"))[-1]
        assert joined["ref"] == "\udbff"
        await socket.send(r'{"type":"\ud800","ref":"\ud800"}')
        error = (await recv_until(socket, "leaderboard:error"))[-1]
        assert (error["code"], error["ref"]) == ("UNKNOWN_TYPE", "\ud800")
        await socket.send(json.dumps({"type": "ping", "ref": "still-open"}))
        assert (await recv_until(socket, "pong"))[-1]["ref"] == "still-open"
        # The watcher saw the player arrive, and sees them leave on close.
        diffs = await recv_until(watcher, "presence:diff")
        while player.id not in [user["userId"] for user in diffs[-1]["joins"]]:
            diffs = await recv_until(watcher, "presence:diff")
        await socket.close()
        assert socket.close_code == 1000
        left = await recv_until(watcher, "presence:diff", wait=10)
        assert [user["userId"] for user in left[-1]["leaves"]] == [player.id]
    finally:
        await asyncio.gather(socket.close(), watcher.close())


def _runserver(stack: LiveStack, server: Server) -> subprocess.Popen[bytes]:
    """Django's `runserver` on `server`'s port (daphne's runserver: `daphne`
    is an installed app), on the stack's database and Redis."""
    port, log_path = server.port, server.log_path
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=stack.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/auth/me", timeout=1)
        except urllib.error.HTTPError:
            return process  # it answers (401)
        except OSError:
            time.sleep(0.1)
            continue
        return process
    process.kill()
    raise RuntimeError(f"runserver did not start:\n{log_path.read_text(errors='replace')}")


async def test_runserver_closes_oversized_messages_with_1009_too(stack, party):
    with tempfile.TemporaryDirectory(prefix="envelope-runserver-") as directory:
        # Only its addresses and log: `_runserver` starts the process, not daphne.
        server = Server(port=free_port(), env={}, log_path=Path(directory) / "runserver.log")
        process = await asyncio.to_thread(_runserver, stack, server)
        try:
            player = party.players[1]
            # Tickets from a daphne process: the same database and secret key.
            await assert_limits(server, lambda: ticket(stack.servers[0], player))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        assert "Traceback" not in server.log()


async def test_redis_unreachable_at_connect_is_service_unavailable_then_1013(stack, party):
    """Runs last in this module: it stops the private Redis (and starts it again)."""
    server = stack.servers[0]
    value = ticket(server, party.players[1])
    private: PrivateRedis = stack.redis  # type: ignore[attr-defined]
    before = len(server.log().splitlines())
    await asyncio.to_thread(private.stop)
    try:
        refused = []
        for _ in range(3):
            socket = await open_ws(server, value)
            frame = await recv(socket)
            with pytest.raises(ConnectionClosed):
                await recv(socket)
            refused.append((frame["type"], frame["code"], socket.close_code))
        assert refused == [("leaderboard:error", "SERVICE_UNAVAILABLE", 1013)] * 3
        log = server.log().splitlines()[before:]
        warnings = [line for line in log if "connect refused, a service is unreachable" in line]
        assert len(warnings) == 3, log
    finally:
        await asyncio.to_thread(private.start)
    # Redis is back (empty): the ticket was never used up, and now opens its socket.
    socket = await hello_socket(server, value)
    await socket.close()
