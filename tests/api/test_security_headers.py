"""Content-Security-Policy and Permissions-Policy without a browser: every kind
of response carries both headers, the policy is strict, and no template or
script of ours needs what the policy forbids.

tests/browser/test_csp.py proves the pages really run under the policy in
Chromium; these catch a missing header or an inline snippet in milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client, RequestFactory
from django.views.defaults import server_error

ROOT = Path(__file__).resolve().parents[2]

# Sources that would let inline code or string evaluation back in.
UNSAFE_SOURCES = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'wasm-unsafe-eval'")
# Features the pages never use: the header must switch these off (`feature=()`).
DISABLED_FEATURES = ("camera", "microphone", "geolocation", "payment", "usb")


def parse_csp(header: str) -> dict[str, list[str]]:
    """`a b c; d e` -> {"a": ["b", "c"], "d": ["e"]}; directive names are case-insensitive."""
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        tokens = part.split()
        if tokens:
            directives[tokens[0].lower()] = tokens[1:]
    return directives


def assert_strict_headers(headers: Mapping[str, str], where: str) -> None:
    """The policy of CONTENT_SECURITY_POLICY / PERMISSIONS_POLICY, as the browser gets it.

    `headers` may use any case for names (Django's are case-insensitive,
    Playwright's lower-case)."""
    lower = {name.lower(): value for name, value in headers.items()}
    csp = lower.get("content-security-policy")
    assert csp, f"{where}: no Content-Security-Policy header"
    assert "content-security-policy-report-only" not in lower, f"{where}: report-only policy"
    for unsafe in UNSAFE_SOURCES:
        assert unsafe not in csp, f"{where}: {unsafe} in {csp!r}"
    directives = parse_csp(csp)
    # Scripts and styles from this site's files only: no inline code, no other hosts.
    assert directives.get("default-src") == ["'self'"], f"{where}: {csp!r}"
    assert directives.get("script-src") == ["'self'"], f"{where}: {csp!r}"
    assert directives.get("style-src") == ["'self'"], f"{where}: {csp!r}"
    assert directives.get("connect-src") == ["'self'"], f"{where}: {csp!r}"
    assert directives.get("object-src") == ["'none'"], f"{where}: {csp!r}"
    assert directives.get("base-uri") == ["'none'"], f"{where}: {csp!r}"
    assert directives.get("frame-ancestors") == ["'none'"], f"{where}: {csp!r}"
    for name, sources in directives.items():
        assert "*" not in sources, f"{where}: wildcard source in {name}"

    policy = lower.get("permissions-policy")
    assert policy, f"{where}: no Permissions-Policy header"
    features = {
        item.split("=", 1)[0].strip(): item.split("=", 1)[1].strip() for item in policy.split(",")
    }
    for feature in DISABLED_FEATURES:
        assert features.get(feature) == "()", f"{where}: {feature} not disabled in {policy!r}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/", 200, "text/html"),  # the sign-in page
        ("/join/ABCD2345", 200, "text/html"),  # sign in to join
        ("/admin/login/", 200, "text/html"),
        ("/games/1/live", 302, ""),  # signed out: a redirect to sign in
        ("/no-such-page", 404, "text/html"),
        ("/api/auth/me", 401, "application/json"),
        ("/api/no-such-endpoint", 404, "application/json"),
    ],
)
def test_signed_out_responses_carry_both_headers(
    client: Client, path: str, status: int, content_type: str
) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response["Content-Type"].startswith(content_type)
    assert_strict_headers(response.headers, path)


@pytest.mark.django_db
def test_signed_in_api_and_page_carry_both_headers(client: Client, api_for, user) -> None:
    api = api_for(user)
    response = api.get("/api/ceremonies")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert_strict_headers(response.headers, "GET /api/ceremonies")

    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    assert b'id="join-form"' in response.content  # the signed-in home page
    assert_strict_headers(response.headers, "GET / (signed in)")


def test_the_header_check_rejects_a_weak_policy() -> None:
    """assert_strict_headers is what both test files rely on: it must say no."""
    good = {
        "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        "Permissions-Policy": "camera=(), geolocation=(), microphone=(), payment=(), usb=()",
    }
    assert_strict_headers(good, "good")
    weak = [
        {**good, "Content-Security-Policy": good["Content-Security-Policy"] + " 'unsafe-inline'"},
        {
            **good,
            "Content-Security-Policy": good["Content-Security-Policy"].replace(
                "script-src 'self'", "script-src 'self' https:"
            ),
        },
        {"Permissions-Policy": good["Permissions-Policy"]},
        {"Content-Security-Policy": good["Content-Security-Policy"]},
        {**good, "Permissions-Policy": "camera=(self), geolocation=(), microphone=()"},
    ]
    for headers in weak:
        with pytest.raises(AssertionError):
            assert_strict_headers(headers, "weak")


# --- the source: nothing the policy would block ------------------------------------

# In templates: what CSP blocks without 'unsafe-inline' (json_script's data
# block is produced at render time and is not script to CSP).
TEMPLATE_PATTERNS = {
    "<style> element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "inline <script>": re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.I),
    "on* event handler": re.compile(r"\son[a-z]+\s*=\s*[\"'{]", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}
# In our JS: a style attribute (CSSOM `el.style.x = ...` is allowed), HTML
# parsed from strings (could carry either), and strings evaluated as code.
SCRIPT_PATTERNS = {
    "style attribute": re.compile(r"setAttribute\(\s*[\"']style[\"']"),
    "HTML from a string": re.compile(
        r"\.(?:inner|outer)HTML\s*\+?=|insertAdjacentHTML|document\.write|createContextualFragment"
    ),
    "eval": re.compile(r"\beval\s*\(|\bnew\s+Function\s*\("),
    "string timer": re.compile(r"\bset(?:Timeout|Interval)\s*\(\s*[\"'`]"),
}
SOURCE_FILES = sorted([*(ROOT / "templates").rglob("*.html"), *(ROOT / "static").rglob("*.js")])


def test_the_source_scan_sees_our_templates_and_scripts() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in SOURCE_FILES}
    assert {"templates/base.html", "templates/500.html", "static/js/live.js"} <= names


@pytest.mark.parametrize("path", SOURCE_FILES, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_no_inline_code_or_style_in_the_source(path: Path) -> None:
    patterns = TEMPLATE_PATTERNS if path.suffix == ".html" else SCRIPT_PATTERNS
    text = path.read_text(encoding="utf-8")
    found = [
        f"{what} at line {text.count(chr(10), 0, match.start()) + 1}: {match.group(0)!r}"
        for what, pattern in patterns.items()
        for match in pattern.finditer(text)
    ]
    assert found == []


def test_the_source_scan_finds_what_the_policy_blocks() -> None:
    """Each pattern matches the snippet it exists for, so the scan cannot pass by accident."""
    html = {
        "<style> element": "<style>p{color:red}</style>",
        "style attribute": '<p style="color:red">',
        "inline <script>": "<script>alert(1)</script>",
        "on* event handler": '<img src="x" onerror="alert(1)">',
        "javascript: URL": '<a href="javascript:void(0)">',
    }
    js = {
        "style attribute": 'node.setAttribute("style", "color: red");',
        "HTML from a string": "node.innerHTML = text;",
        "eval": "new Function(code)();",
        "string timer": 'setTimeout("go()", 10);',
    }
    for what, snippet in html.items():
        assert TEMPLATE_PATTERNS[what].search(snippet), what
    for what, snippet in js.items():
        assert SCRIPT_PATTERNS[what].search(snippet), what
    # And leave alone what the policy allows.
    assert not TEMPLATE_PATTERNS["inline <script>"].search('<script src="/static/js/a.js" defer>')
    assert not SCRIPT_PATTERNS["style attribute"].search('node.style.setProperty("--hue", "1");')


def test_the_500_page_styles_itself_from_a_file(rf: RequestFactory) -> None:
    """Django's handler500 renders templates/500.html without base.html: its
    look comes from a stylesheet of its own, which must exist."""
    response = server_error(rf.get("/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert "<style" not in body and "style=" not in body
    assert '<link rel="stylesheet" href="/static/css/server-error.css">' in body
    assert finders.find("css/server-error.css")
