"""Envelope as deployed: Debian's nginx running the shipped site file
(deploy/nginx/envelope.conf) in front of two daphne processes.

The site file is used as it ships; only what names this machine changes
(ports, certificate, STATIC_ROOT, the ACME directory), and each of those
substitutions must match exactly, so an edit to the site file that the test
would silently stop exercising fails here instead. TLS uses a self-signed
certificate made at test time; clients skip verification.

Through the proxy: static files, the plain-HTTP redirect, a reveal reaching a
WebSocket on each process and the event stream, /readyz, /metrics refused,
and whose address the sign-in rate limit counts (the client's behind a
trusted proxy, the proxy's otherwise, never what a client writes in
X-Forwarded-For).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import queue
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import require_live_stack_services
from tests.e2e.conftest import PASSWORD, Party, Player, make_party, recv, recv_until
from tests.faults import missing_service
from tests.liveserver import ROOT, LiveStack, Server, free_port

pytestmark = pytest.mark.e2e

NGINX = "/usr/sbin/nginx"
OPENSSL = "/usr/bin/openssl"
SITE_FILE = ROOT / "deploy" / "nginx" / "envelope.conf"
MIME_TYPES = Path("/etc/nginx/mime.types")

# Failed sign-ins per client address before the door shuts, on this stack;
# the per-account limit is out of the way (every attempt names a new account).
ADDRESS_LIMIT = 3
STACK_ENV = {
    "TRUSTED_PROXIES": "127.0.0.1",
    "ENVELOPE_LOGIN_IP_FAILURE_LIMIT": str(ADDRESS_LIMIT),
    "ENVELOPE_LOGIN_FAILURE_LIMIT": "50",
    # HSTS is sent only on requests Django takes for HTTPS: the sign that the
    # proxy's X-Forwarded-Proto was believed.
    "SECURE_HSTS_SECONDS": "3600",
    # On SIGTERM a process refuses new WebSockets (503) this long before it
    # closes its own: the window in which nginx must send handshakes elsewhere.
    "ENVELOPE_DRAIN_NOTICE_SECONDS": "2",
}
# Two client machines, as the proxy sees them: loopback addresses of their own.
CLIENT_A, CLIENT_B = "127.0.0.2", "127.0.0.3"


def _require(binary: str, package: str) -> str:
    if os.path.isfile(binary) and os.access(binary, os.X_OK):
        return binary
    missing_service(f"the deployment test needs {binary} (apt-get install {package})")


# --- the site file, made to run here ------------------------------------------------------


def _substitute(text: str, pattern: str, replacement: str, *, regex: bool = False) -> str:
    """Replace `pattern` exactly once: the site file must still contain it."""
    if regex:
        text, count = re.subn(pattern, lambda _match: replacement, text)
    else:
        count = text.count(pattern)
        text = text.replace(pattern, replacement)
    assert count == 1, f"{SITE_FILE} should contain {pattern!r} once, found {count}"
    return text


def site_config(
    *,
    upstreams: list[int],
    https_port: int,
    http_port: int,
    cert: Path,
    key: Path,
    static_root: Path,
    acme_root: Path,
) -> str:
    """deploy/nginx/envelope.conf with this machine's ports and paths."""
    text = SITE_FILE.read_text()
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in upstreams)
    text = _substitute(text, r"(?:[ \t]*server 127\.0\.0\.1:\d+;\n)+", servers, regex=True)
    text = _substitute(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _substitute(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    # IPv6 may be off on a test machine; the IPv4 listeners are the same servers.
    text = _substitute(text, "    listen [::]:80;\n", "")
    text = _substitute(text, "    listen [::]:443 ssl http2;\n", "")
    text = _substitute(text, "/etc/letsencrypt/live/envelope.example.com/fullchain.pem", str(cert))
    text = _substitute(text, "/etc/letsencrypt/live/envelope.example.com/privkey.pem", str(key))
    text = _substitute(text, "alias /srv/envelope/staticfiles/;", f"alias {static_root}/;")
    text = _substitute(text, "root /var/www/html;", f"root {acme_root};")
    directives = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    for leftover in ("/srv/", "/etc/", "/var/"):
        assert leftover not in directives, f"{SITE_FILE}: a path the test leaves: {leftover}"
    return text


def nginx_config(prefix: Path, site: Path) -> str:
    """The main configuration Debian's /etc/nginx/nginx.conf would be, with
    every path in `prefix`, including the site as sites-enabled/ is."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / 'temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 1024; }}
http {{
    include {MIME_TYPES};
    default_type application/octet-stream;
    access_log {prefix / "access.log"};
{temp}
    include {site};
}}
"""


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            _require(OPENSSL, "openssl"),
            *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class Edge:
    """nginx in front of the stack."""

    process: subprocess.Popen[bytes]
    prefix: Path
    config: Path
    https_port: int
    http_port: int

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def log(self) -> str:
        return (self.prefix / "error.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def nginx_test(prefix: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NGINX, "-t", "-p", str(prefix), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def start_nginx(prefix: Path, config: Path, https_port: int, http_port: int) -> Edge:
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=open(prefix / "stderr.log", "wb"),  # noqa: SIM115 - owned by the process
    )
    edge = Edge(process, prefix, config, https_port, http_port)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = (prefix / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"nginx exited early:\n{stderr}\n{edge.log()[-3000:]}")
        try:
            status, _, _ = request(edge, "GET", "/api/auth/me")
        except OSError:
            time.sleep(0.1)
            continue
        if status < 500:
            return edge
        time.sleep(0.1)
    edge.stop()
    raise RuntimeError(f"nginx did not answer in 15 s:\n{edge.log()[-3000:]}")


# --- clients -----------------------------------------------------------------------------


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the certificate was made a moment ago
    return context


def request(
    edge: Edge,
    method: str,
    path: str,
    *,
    body: Any = None,
    token: str | None = None,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTPS request to nginx from the loopback address `source`."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1",
        edge.https_port,
        timeout=30,
        context=client_tls(),
        source_address=(source, 0),
    )
    try:
        connection.request(
            method,
            path,
            body=None if body is None else json.dumps(body),
            headers={"Content-Type": "application/json", "Origin": edge.origin}
            | ({"Authorization": f"Token {token}"} if token else {})
            | (headers or {}),
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def api(edge: Edge, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    status, _, raw = request(edge, method, path, **kwargs)
    return status, json.loads(raw) if raw else None


def sign_in(edge: Edge, username: str, password: str, **kwargs: Any) -> tuple[int, Any]:
    return api(
        edge,
        "POST",
        "/api/auth/login",
        body={"username": username, "password": password},
        **kwargs,
    )


def established_on(port: int) -> int:
    """How many ESTABLISHED TCP connections this host has on local `port`
    (the server side of the proxy's connections to a daphne process)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Not pytest's tmp_path: nginx's workers drop root for `nobody`, who must
    # read the static files and the site file (tmp_path is private to root).
    directory = Path(tempfile.mkdtemp(prefix="envelope-deploy-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(workdir: Path) -> Iterator[LiveStack]:
    # Named `stack` like tests/e2e/conftest.py's, so a failure prints its logs.
    require_live_stack_services()
    _require(NGINX, "nginx-light")
    static_root = workdir / "staticfiles"
    with LiveStack(processes=2, extra_env={**STACK_ENV, "STATIC_ROOT": str(static_root)}) as live:
        live.failed = False  # type: ignore[attr-defined]
        live.manage("collectstatic", "--noinput")
        yield live
        if live.failed:
            for index, server in enumerate(live.servers):
                lines = [line for line in server.log().splitlines() if " - - [" not in line]
                print(f"--- daphne {index} log ---\n" + "\n".join(lines[-200:]))


@pytest.fixture(scope="module")
def nginx_files(stack: LiveStack, workdir: Path) -> tuple[Path, Path, int, int]:
    """(prefix, main config, https port, http port): the site file made to run here."""
    prefix = workdir / "nginx"
    (prefix / "temp").mkdir(parents=True)
    (prefix / "acme").mkdir()
    cert, key = self_signed_certificate(prefix)
    https_port, http_port = free_port(), free_port()
    site = prefix / "envelope.conf"
    site.write_text(
        site_config(
            upstreams=[server.port for server in stack.servers],
            https_port=https_port,
            http_port=http_port,
            cert=cert,
            key=key,
            static_root=Path(stack.env()["STATIC_ROOT"]),
            acme_root=prefix / "acme",
        )
    )
    config = prefix / "nginx.conf"
    config.write_text(nginx_config(prefix, site))
    return prefix, config, https_port, http_port


@pytest.fixture(scope="module")
def edge(stack: LiveStack, nginx_files: tuple[Path, Path, int, int]) -> Iterator[Edge]:
    prefix, config, https_port, http_port = nginx_files
    checked = nginx_test(prefix, config)
    assert checked.returncode == 0, checked.stderr
    nginx = start_nginx(prefix, config, https_port, http_port)
    yield nginx
    nginx.stop()
    if getattr(stack, "failed", False):
        print(f"--- nginx error.log ---\n{nginx.log()[-4000:]}")


@pytest.fixture(scope="module")
def party(stack: LiveStack) -> Party:
    return make_party(stack, "deploy", 3, [5, 3, 1])


# --- the configuration --------------------------------------------------------------------


def test_the_shipped_site_passes_nginx_t(nginx_files):
    prefix, config, _, _ = nginx_files
    checked = nginx_test(prefix, config)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr
    assert "test is successful" in checked.stderr


def _plain_http(edge: Edge, path: str) -> tuple[int, str | None, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", edge.http_port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": "envelope.example.com"})
        response = connection.getresponse()
        return response.status, response.getheader("Location"), response.read()
    finally:
        connection.close()


def test_plain_http_is_redirected_to_https_except_certbots_challenge(edge):
    status, location, _ = _plain_http(edge, "/games/1/live?tv=1")
    assert (status, location) == (301, "https://envelope.example.com/games/1/live?tv=1")

    challenge = edge.prefix / "acme" / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True, exist_ok=True)
    (challenge / "token-1").write_text("token-1.thumbprint")
    challenge.chmod(0o755)
    status, _, body = _plain_http(edge, "/.well-known/acme-challenge/token-1")
    assert (status, body) == (200, b"token-1.thumbprint")


def test_static_files_are_served_by_nginx_from_static_root(stack, edge):
    static_root = Path(stack.env()["STATIC_ROOT"])
    status, headers, body = request(edge, "GET", "/static/js/socket.js")
    assert status == 200
    assert body == (static_root / "js" / "socket.js").read_bytes()
    # Django adds a Content-Security-Policy to every response it makes.
    assert "content-security-policy" not in headers
    assert "max-age=3600" in headers["cache-control"]
    # collectstatic's output, not just static/: the admin's files are there too.
    status, headers, _ = request(edge, "GET", "/static/admin/css/base.css")
    assert status == 200
    assert headers["content-type"].startswith("text/css")


def test_the_application_sees_https_from_the_proxy_whatever_the_client_says(edge):
    status, headers, _ = request(edge, "GET", "/api/auth/me", headers={"X-Forwarded-Proto": "http"})
    assert status == 401
    assert headers["strict-transport-security"].startswith("max-age=3600")


def test_metrics_are_refused_at_the_proxy(edge):
    status, _, _ = request(edge, "GET", "/metrics")
    assert status == 403


def test_readyz_through_the_proxy_answers_200(edge):
    status, _, body = request(edge, "GET", "/readyz")
    assert status == 200, body[:500]


# --- a reveal through the proxy --------------------------------------------------------------


async def _ticket(edge: Edge, player: Player) -> str:
    status, body = await asyncio.to_thread(
        api, edge, "POST", "/api/auth/ws-ticket", token=player.token
    )
    assert status == 200, body
    return body["ticket"]


async def _socket_through(
    edge: Edge, player: Player, ticket: str | None = None
) -> ClientConnection:
    ticket = ticket or await _ticket(edge, player)
    socket = await connect(
        f"wss://127.0.0.1:{edge.https_port}/ws/?ticket={ticket}",
        ssl=client_tls(),
        origin=edge.origin,  # type: ignore[arg-type]
        proxy=None,
        compression=None,
        open_timeout=30,
    )
    assert (await recv(socket))["type"] == "hello"
    return socket


async def _upstream_of(stack: LiveStack, before: dict[int, int]) -> int:
    """The daphne port that gained an established connection since `before`."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        gained = [
            server.port
            for server in stack.servers
            if established_on(server.port) > before[server.port]
        ]
        if gained:
            assert len(gained) == 1, gained
            return gained[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no daphne process got the proxied WebSocket")


async def test_a_reveal_through_the_proxy_reaches_a_socket_on_each_process(stack, edge, party):
    """Sockets are opened through nginx until each daphne process holds one
    (least_conn spreads them); the reveal is then made through nginx too."""
    sockets: dict[int, ClientConnection] = {}
    opened: list[ClientConnection] = []
    try:
        for player in party.players * 2:
            if len(sockets) == len(stack.servers):
                break
            before = {server.port: established_on(server.port) for server in stack.servers}
            socket = await _socket_through(edge, player)
            opened.append(socket)
            sockets.setdefault(await _upstream_of(stack, before), socket)
        assert len(sockets) == 2, "nginx sent every socket to the same process"
        for socket in sockets.values():
            await socket.send(json.dumps({"type": "join", "gameId": party.game_id}))
            await recv_until(socket, "joined")

        category_id, _, nominations = party.categories[0]
        status, body = await asyncio.to_thread(
            api,
            edge,
            "POST",
            f"/api/categories/{category_id}/winner",
            token=party.staff_token,
            body={"nominationId": nominations[0]},
        )
        assert status == 200, body

        for port, socket in sockets.items():
            frames = await recv_until(socket, "leaderboard:update")
            board = frames[-1]
            assert board["lastRevealed"]["categoryId"] == category_id, port
            leader = next(row for row in board["players"] if row["userId"] == party.players[0].id)
            assert leader["totalScore"] == 5, port
    finally:
        for socket in opened:
            await socket.close()


async def test_a_restart_drains_behind_the_proxy_and_clients_reconnect_at_once(stack, edge, party):
    """SIGTERM to one process: its socket is closed with 1012, and a
    handshake nginx gives it meanwhile (least_conn: it holds the fewest) is
    refused with 503 and handed to the other process, so a reconnecting
    client gets in at the first try."""
    by_port: dict[int, list[ClientConnection]] = {server.port: [] for server in stack.servers}
    try:
        for player in party.players:
            before = {port: established_on(port) for port in by_port}
            socket = await _socket_through(edge, player)
            by_port[await _upstream_of(stack, before)].append(socket)
        lone = next(s for s in stack.servers if len(by_port[s.port]) == 1)
        other = next(s for s in stack.servers if s is not lone)
        assert lone.process is not None
        ticket = await _ticket(edge, party.players[0])

        lone.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while await asyncio.to_thread(_status_of, lone, "/readyz") != 503:
            assert time.monotonic() < deadline, "the stopped process never said it was draining"
            await asyncio.sleep(0.05)

        before = {port: established_on(port) for port in by_port}
        reconnected = await _socket_through(edge, party.players[0], ticket)
        by_port[other.port].append(reconnected)
        assert await _upstream_of(stack, before) == other.port
        assert "websocket upgrade refused with 503" in lone.log()

        (closed,) = by_port[lone.port]
        await asyncio.wait_for(closed.wait_closed(), 15)
        assert closed.close_code == 1012
        for socket in by_port[other.port]:
            await socket.send(json.dumps({"type": "ping", "t": 1}))
            assert (await recv_until(socket, "pong"))[-1]["t"] == 1
    finally:
        for sockets in by_port.values():
            for socket in sockets:
                await socket.close()
        for server in stack.servers:
            if server.process is None or server.process.poll() is not None:
                await asyncio.to_thread(server.restart)


def _status_of(server: Server, path: str) -> int:
    """A plain-HTTP probe straight to a process (as a load balancer would)."""
    try:
        with urllib.request.urlopen(f"{server.url}{path}", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _read_events(response: http.client.HTTPResponse, frames: queue.Queue[Any]) -> None:
    """Each SSE `data:` line, decoded, into `frames`; None when the stream ends."""
    try:
        while line := response.readline():
            text = line.decode().rstrip("\r\n")
            if text.startswith("data:"):
                frames.put(json.loads(text[len("data:") :].strip()))
    except Exception as error:  # the connection closed under it, bad JSON: the test says
        frames.put(error)
    frames.put(None)


def test_the_event_stream_through_the_proxy_delivers_the_reveal(edge, party):
    player = party.players[1]
    connection = http.client.HTTPSConnection(
        "127.0.0.1", edge.https_port, timeout=30, context=client_tls()
    )
    try:
        connection.request(
            "GET",
            f"/api/games/{party.game_id}/events",
            headers={"Authorization": f"Token {player.token}", "Accept": "text/event-stream"},
        )
        response = connection.getresponse()
        assert response.status == 200, response.read(500)
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        frames: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=_read_events, args=(response, frames), daemon=True).start()

        category_id, _, nominations = party.categories[1]
        status, body = api(
            edge,
            "POST",
            f"/api/categories/{category_id}/winner",
            token=party.staff_token,
            body={"nominationId": nominations[1]},
        )
        assert status == 200, body

        deadline = time.monotonic() + 15
        while True:
            frame = frames.get(timeout=max(0.1, deadline - time.monotonic()))
            assert frame is not None and not isinstance(frame, Exception), frame
            if (
                frame.get("type") == "leaderboard:update"
                and (frame.get("lastRevealed") or {}).get("categoryId") == category_id
            ):
                break
    finally:
        connection.close()


# --- whose address the rate limit counts ------------------------------------------------------


def _fail_sign_ins(edge: Edge, source: str, tag: str) -> None:
    for attempt in range(ADDRESS_LIMIT):
        status, body = sign_in(edge, f"nobody-{tag}-{attempt}", "wrong", source=source)
        assert status == 401, body


def test_behind_the_trusted_proxy_only_the_failing_client_is_shut_out(edge, party):
    player = party.players[2]
    _fail_sign_ins(edge, CLIENT_A, "trusted")

    # A is shut out, even with the right password and whatever it writes in
    # X-Forwarded-For (nginx replaces it with the address it saw).
    status, body = sign_in(edge, player.username, PASSWORD, source=CLIENT_A)
    assert (status, body["error"]["code"]) == (429, "RATE_LIMITED")
    status, body = sign_in(
        edge,
        player.username,
        PASSWORD,
        source=CLIENT_A,
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert (status, body["error"]["code"]) == (429, "RATE_LIMITED")

    # B is another client: its door is open, and naming A does not shut it.
    status, body = sign_in(
        edge, player.username, PASSWORD, source=CLIENT_B, headers={"X-Forwarded-For": CLIENT_A}
    )
    assert status == 200, body
    status, body = sign_in(edge, player.username, PASSWORD, source=CLIENT_B)
    assert status == 200, body


def test_without_trusted_proxies_every_client_is_the_proxy(stack, edge, party):
    """The same proxy, not listed in TRUSTED_PROXIES: every request seems to
    come from 127.0.0.1, so one client's failures shut everyone out (and
    nothing is taken for HTTPS)."""
    trusted_env = [server.env for server in stack.servers]
    for server in stack.servers:
        server.env = {**server.env, "TRUSTED_PROXIES": ""}
    _restart_all(stack)
    try:
        player = party.players[2]
        _fail_sign_ins(edge, CLIENT_A, "untrusted")
        status, body = sign_in(edge, player.username, PASSWORD, source=CLIENT_B)
        assert (status, body["error"]["code"]) == (429, "RATE_LIMITED")
        status, headers, _ = request(edge, "GET", "/api/auth/me", source=CLIENT_B)
        assert status == 401
        assert "strict-transport-security" not in headers
    finally:
        for server, env in zip(stack.servers, trusted_env, strict=True):
            server.env = env
        _restart_all(stack)


def _restart_all(stack: LiveStack) -> None:
    """Restart every process at once (each stop waits out its drain notice)."""
    with ThreadPoolExecutor(len(stack.servers)) as pool:
        list(pool.map(Server.restart, stack.servers))
