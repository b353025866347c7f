"""`python -m server` starts daphne's command line with our Server: HTTP and
WebSocket served, daphne's options accepted, our classes at work.

This starts one real process on tests/server/asgi_app.py (no Django, no
database). The e2e suite (tests/liveserver.py) starts every server the same
way with the real application; tests/e2e/test_ws_limits.py also covers
`manage.py runserver`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.liveserver import ROOT, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server_url(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "server"),
                *("-e", f"tcp:port={port}:interface=127.0.0.1:backlog=1024"),
                *("--websocket_connect_timeout", "30", "-v", "1"),
                "tests.server.asgi_app:application",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    text = log.read_text()
    assert "Traceback" not in text, text


def test_http_is_served(server_url):
    with urllib.request.urlopen(server_url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Server"] == "daphne"
        assert response.read() == b"envelope server"


async def test_a_websocket_gets_the_extension_and_both_sends(server_url):
    async with connect(server_url.replace("http", "ws") + "/ws/", compression=None) as ws:
        await ws.send("extension?")
        assert await ws.recv() == "yes"
        await ws.send("prepared héllo")
        assert await ws.recv() == "héllo"
        await ws.send("plain héllo")
        assert await ws.recv() == "héllo"
        await ws.send("x" * 4096)
        assert await ws.recv() == "len 4096"


async def test_a_message_over_4_kib_is_closed_with_1009(server_url):
    async with connect(server_url.replace("http", "ws") + "/ws/", compression=None) as ws:
        await ws.send("x" * 4097)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


@pytest.mark.parametrize("code", [1012, 1013])
async def test_the_application_closes_with_1012_and_1013(server_url, code):
    async with connect(server_url.replace("http", "ws") + "/ws/", compression=None) as ws:
        await ws.send(f"close {code}")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
