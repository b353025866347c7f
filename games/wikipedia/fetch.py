"""Fetch a Wikipedia page's wikitext through the MediaWiki API.

Only a Wikipedia article URL (`https://<lang>.wikipedia.org/wiki/<Title>`) is
accepted, and only its language and title are used: the request always goes
to settings.WIKIPEDIA_API_URL, so a pasted URL cannot make the server call
any other host (no SSRF). The call has a total time limit, a size cap and no
redirects; every failure is an ImportInvalid naming `wikipediaUrl`.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from django.conf import settings

from games.errors import ImportInvalid

USER_AGENT = (
    "Envelope/1.0 (awards-night prediction game; imports Academy Awards "
    "ceremony pages for staff) Python-urllib"
)
# en, de, simple, zh-yue, be-tarask: a language subdomain, optionally the mobile site.
WIKIPEDIA_HOST = re.compile(
    r"(?P<lang>[a-z]{2,3}(?:-[a-z0-9]{2,8})*|simple)\.(?:m\.)?wikipedia\.org"
)
TITLE_MAX = 255  # MediaWiki's own limit, in bytes; characters are close enough here
CHUNK = 64 * 1024


@dataclass(frozen=True)
class WikipediaPage:
    lang: str
    title: str


@dataclass(frozen=True)
class FetchedPage:
    title: str
    wikitext: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def page_from_url(url: str) -> WikipediaPage:
    """The language and title of a Wikipedia article URL, or ImportInvalid."""
    refusal = ImportInvalid(
        "wikipediaUrl: must be a Wikipedia article URL, https://<lang>.wikipedia.org/wiki/<Title>"
    )
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise refusal from None
    host = WIKIPEDIA_HOST.fullmatch(parts.hostname or "")
    if (
        parts.scheme != "https"
        or host is None
        or port is not None
        or parts.username is not None
        or parts.query
        or not parts.path.startswith("/wiki/")
    ):
        raise refusal
    title = unquote(parts.path.removeprefix("/wiki/")).replace("_", " ").strip()
    if not title or len(title) > TITLE_MAX or any(ch in title for ch in "[]{}|#<>"):
        raise refusal
    return WikipediaPage(lang=host.group("lang"), title=title)


def fetch_page(page: WikipediaPage) -> FetchedPage:
    """The page's current wikitext (redirects between articles followed by the API)."""
    query = urlencode(
        {
            "action": "parse",
            "page": page.title,
            "prop": "wikitext",
            "redirects": "1",
            "format": "json",
            "formatversion": "2",
        }
    )
    api_url = settings.WIKIPEDIA_API_URL.format(lang=page.lang)
    request = urllib.request.Request(
        f"{api_url}?{query}", headers={"User-Agent": USER_AGENT, "Accept": "application/json"}
    )
    body = _get(request)
    return _page_of(body, page)


def _get(request: urllib.request.Request) -> bytes:
    timeout = float(settings.WIKIPEDIA_TIMEOUT)
    cap = int(settings.WIKIPEDIA_MAX_BYTES)
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(_NoRedirects)
    too_slow = ImportInvalid(f"wikipediaUrl: Wikipedia did not answer within {timeout:g} seconds")
    try:
        with opener.open(request, timeout=timeout) as response:
            # The socket timeout is per read: a server dribbling bytes would
            # never trip it, so the whole answer has a deadline too (read1
            # returns what has arrived instead of waiting for a full chunk).
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read1(CHUNK):
                size += len(chunk)
                if size > cap:
                    raise ImportInvalid(f"wikipediaUrl: the answer is larger than {cap} bytes")
                if time.monotonic() > deadline:
                    raise too_slow
                chunks.append(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        raise ImportInvalid(f"wikipediaUrl: Wikipedia answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise too_slow from None
        raise ImportInvalid(
            f"wikipediaUrl: Wikipedia could not be reached ({exc.reason})"
        ) from None
    except TimeoutError:
        raise too_slow from None
    except OSError as exc:
        raise ImportInvalid(f"wikipediaUrl: the connection to Wikipedia failed ({exc})") from None


def _page_of(body: bytes, page: WikipediaPage) -> FetchedPage:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ImportInvalid("wikipediaUrl: Wikipedia's answer is not JSON") from None
    if not isinstance(data, dict):
        raise ImportInvalid("wikipediaUrl: Wikipedia's answer has no page")
    if isinstance(data.get("error"), dict):
        info = data["error"].get("info") or data["error"].get("code") or "unknown error"
        raise ImportInvalid(f"wikipediaUrl: Wikipedia: {info} ({page.title})")
    parsed = data.get("parse")
    wikitext = parsed.get("wikitext") if isinstance(parsed, dict) else None
    if isinstance(wikitext, dict):  # formatversion=1 wraps it as {"*": text}
        wikitext = wikitext.get("*")
    if not isinstance(wikitext, str):
        raise ImportInvalid("wikipediaUrl: Wikipedia's answer has no wikitext")
    title = parsed.get("title")
    return FetchedPage(title=title if isinstance(title, str) else page.title, wikitext=wikitext)
