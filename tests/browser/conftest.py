"""Fixtures for the browser tests: a real daphne stack and the system Chromium.

The stack is production-like (DEBUG off) on a fresh database; REDIS_URL and
DATABASE_URL are used when set, so the same tests run embedded and on the
real services.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from playwright.sync_api import Browser, BrowserContext

from tests.liveserver import ROOT, LiveStack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "gold-statue-2025"
PHONE = {"width": 390, "height": 844}
TV = {"width": 1920, "height": 1080}
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

_ceremony_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        reason = f"browser tests need the system Chromium at {CHROMIUM}"
        if IN_CI:
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@dataclass
class Site:
    """The running stack plus the helpers tests need to set up data."""

    stack: LiveStack
    tmp: Path
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.stack.url

    def import_ceremony(self, categories: list[dict]) -> int:
        """A ceremony of its own per test: reveals are per ceremony."""
        number = next(_ceremony_numbers)
        path = self.tmp / f"ceremony-{number}.json"
        name = f"Test Awards {number} {uuid.uuid4().hex[:6]}"
        path.write_text(
            json.dumps({"name": name, "date": "2025-03-02", "categories": categories}),
            encoding="utf-8",
        )
        return int(self.stack.manage("import_ceremony", str(path)).strip())

    def shell(self, code: str) -> str:
        return self.stack.shell(code)

    def api(self, method: str, path: str, body: dict | None = None, *, user: str = "boss") -> dict:
        """A script's API call (token auth): reveals must reach the running
        server's sockets, which a `manage.py shell` process cannot do without Redis."""
        url = f"{self.url}{path}"
        try:
            return _http(method, url, body, self._token(user))
        except urllib.error.HTTPError as exc:
            if exc.code != 401:
                raise
        # Signing out in a browser revokes the user's token: sign in again, once.
        self._tokens.pop(user, None)
        return _http(method, url, body, self._token(user))

    def _token(self, user: str) -> str:
        if user not in self._tokens:
            login = {"username": user, "password": PASSWORD}
            self._tokens[user] = _http("POST", f"{self.url}/api/auth/login", login)["token"]
        return self._tokens[user]


def _http(method: str, url: str, body: dict | None = None, token: str = "") -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _own_redis_url() -> str:
    """REDIS_URL moved to a logical database of the browser suite's own.

    A LiveStack flushes its Redis database when it starts, and the channel
    layer's group and presence keys are named by game id (every fresh stack
    has a game 1): other suites running at the same time on the same database
    would wipe or mix in our groups. Still the real Redis, just not shared.
    """
    url = os.environ.get("REDIS_URL", "")
    if not url:
        return ""
    parsed = urlparse(url)
    db = int(parsed.path.lstrip("/") or 0)
    return urlunparse(parsed._replace(path=f"/{(db + 11) % 16}"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    stack = LiveStack(processes=1, redis_url=_own_redis_url())
    stack.start()
    try:
        stack.create_user("boss", PASSWORD, staff=True, display_name="The Boss")
        yield Site(stack=stack, tmp=tmp_path_factory.mktemp("ceremonies"))
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        for index, server in enumerate(stack.servers):
            if server.log_path.exists():
                shutil.copy(server.log_path, ARTIFACTS / f"browser-daphne{index}.log")
        stack.close()


def sign_in(context: BrowserContext, site: Site, username: str, password: str = PASSWORD) -> None:
    """Sign a browser context in through the API (its cookies are the context's)."""
    response = context.request.post(
        f"{site.url}/api/auth/login", data={"username": username, "password": password}
    )
    assert response.status == 200, response.text()
