"""The fan-out reference: a bare `websockets` server that broadcasts text.

It is the floor the real server is compared with: no Django, no channel
layer, one `websockets.broadcast` of pre-encoded text to every connection.
bench/fanout.py starts it, connects the same number of clients, and sends it
the real server's leaderboard frames, byte for byte, on stdin:

- `{"cmd": "broadcast", "text": ...}` → broadcast, answer `{"event": "sent", "count": n}`
- `{"cmd": "quit"}` → close and exit

It answers `{"event": "listening", "port": p}` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import uvloop
import websockets
from websockets.asyncio.server import ServerConnection, serve


async def hold(connection: ServerConnection) -> None:
    # Clients only listen: keep the connection until the client closes it.
    await connection.wait_closed()


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with serve(
        hold,
        "127.0.0.1",
        port,
        compression=None,  # as daphne: frames go out uncompressed
        ping_interval=None,
        max_size=2**16,
        backlog=4096,  # a burst of thousands of connects must not overflow accept
    ) as server:
        bound = server.sockets[0].getsockname()[1]
        reply({"event": "listening", "port": bound})
        while line := await reader.readline():
            command = json.loads(line)
            if command["cmd"] == "broadcast":
                connections = server.connections
                websockets.broadcast(connections, command["text"])
                reply({"event": "sent", "count": len(connections)})
            elif command["cmd"] == "quit":
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    uvloop.run(main(parser.parse_args().port))
