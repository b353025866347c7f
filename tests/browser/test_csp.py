"""Every page under the strict Content-Security-Policy and the Permissions-Policy,
in Chromium: the site's pages (signed out, player, host, TV) with the live
socket connected and an update received, and the admin pages staff use to
mark winners. Any CSP or Permissions-Policy report fails the test, whether
Chromium reports it as a `securitypolicyviolation` event or in the console,
and so does a page error (code the policy blocked can break a page silently).
Every HTML document's headers are checked as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    WebError,
    WebSocket,
    expect,
)

from tests.api.test_security_headers import assert_strict_headers
from tests.browser.conftest import PASSWORD, PHONE, TV, Site, sign_in
from tests.liveserver import free_port

pytestmark = pytest.mark.browser

# A closed loopback port refuses at once: the picture never loads, but the
# browser checks img-src before it tries, so the picks page exercises the
# policy for nominee pictures without reaching the internet.
PICTURE = f"https://127.0.0.1:{free_port()}/nominee.jpg"
CATEGORIES = [
    {
        "name": "Best Picture",
        "points": 5,
        "nominations": [
            {"title": "Anora", "subtitle": "Sean Baker", "imageUrl": PICTURE},
            {"title": "Conclave", "subtitle": "Edward Berger"},
        ],
    },
    {"name": "Best Score", "nominations": [{"title": "The Brutalist"}, {"title": "Wicked"}]},
]

# Runs in every document of the context before its own scripts, so a
# violation while the HTML is parsed is caught too. The listener is on window
# in the capture phase: violations fire at the offending element (or at the
# document for a detached one) and propagate through window either way.
WATCH_VIOLATIONS = """
window.addEventListener("securitypolicyviolation", (event) => {
  window.reportPolicyViolation({
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
    sample: event.sample,
    page: location.href,
  });
}, true);
"""
# Chromium's console wording: "Refused to ... violates the following Content
# Security Policy directive", "Error with Permissions-Policy header: ...",
# "[Violation] Permissions policy violation: ...".
POLICY_MESSAGE = re.compile(r"content.security.policy|permissions.policy", re.IGNORECASE)


@dataclass
class PolicyWatch:
    """What one browser context reports: policy violations, page errors, and
    every HTML document it received from the site (to check headers)."""

    site_url: str
    violations: list[str] = field(default_factory=list)
    documents: list[Response] = field(default_factory=list)
    sockets: list[WebSocket] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.expose_binding("reportPolicyViolation", self._on_violation)
        context.add_init_script(WATCH_VIOLATIONS)
        context.on("console", self._on_console)
        context.on("weberror", self._on_error)
        context.on("response", self._on_response)
        context.on("page", self._on_page)

    def _on_page(self, page: Page) -> None:
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, socket: WebSocket) -> None:
        self.sockets.append(socket)

    def _on_violation(self, source: dict[str, Any], report: dict[str, Any]) -> None:
        self.violations.append(f"securitypolicyviolation: {report}")

    def _on_console(self, message: ConsoleMessage) -> None:
        if POLICY_MESSAGE.search(message.text):
            self.violations.append(f"console {message.type} at {message.page.url}: {message.text}")

    def _on_error(self, error: WebError) -> None:
        where = error.page.url if error.page else "?"
        self.violations.append(f"page error at {where}: {error.error}")

    def _on_response(self, response: Response) -> None:
        if response.request.resource_type == "document" and response.url.startswith(self.site_url):
            self.documents.append(response)

    def assert_clean(self, min_documents: int) -> None:
        """No reports, and every document carried the strict headers."""
        assert self.violations == []
        assert len(self.documents) >= min_documents, [r.url for r in self.documents]
        for response in self.documents:
            assert_strict_headers(response.all_headers(), f"{response.status} {response.url}")


@pytest.fixture
def watched(chromium: Browser, site: Site) -> Iterator[tuple[BrowserContext, PolicyWatch]]:
    context = chromium.new_context(viewport=PHONE)
    watch = PolicyWatch(site.url)
    watch.attach(context)
    try:
        yield context, watch
    finally:
        context.close()


@pytest.fixture(scope="module")
def ceremony(site: Site) -> int:
    return site.import_ceremony(CATEGORIES)


@pytest.fixture(scope="module")
def chief(site: Site) -> int:
    """A superuser (the admin shows every model to them); their id."""
    out = site.shell(
        "from accounts.models import User\n"
        f"u = User.objects.create_superuser('chief', password={PASSWORD!r}, display_name='Chief')\n"
        "print(u.pk)"
    )
    return int(out.strip().splitlines()[-1])


def visit(page: Page, url: str, status: int = 200) -> None:
    response = page.goto(url)
    assert response is not None and response.status == status, url


def test_the_watch_reports_what_the_policy_blocks(
    site: Site, watched: tuple[BrowserContext, PolicyWatch]
) -> None:
    """The real policy, the real browser: inline style and script are refused
    and both reports reach the watch, so a clean run below means something."""
    context, watch = watched
    page = context.new_page()
    visit(page, f"{site.url}/")
    blocked = page.evaluate(
        """() => {
          document.body.setAttribute("style", "color: rgb(1, 2, 3)");
          const script = document.createElement("script");
          script.textContent = "window.inlineRan = true";
          document.head.append(script);
          return { color: getComputedStyle(document.body).color,
                   inlineRan: window.inlineRan === true };
        }"""
    )
    assert blocked["color"] != "rgb(1, 2, 3)" and blocked["inlineRan"] is False
    page.wait_for_function("true")  # a round trip: the reports are delivered by now
    reports = " ".join(watch.violations)
    assert "securitypolicyviolation" in reports and "style-src" in reports
    assert "script-src" in reports
    assert re.search(r"console \w+ at .*Content Security Policy", reports)


def test_site_pages_run_under_the_policy(
    site: Site, ceremony: int, chromium: Browser, watched: tuple[BrowserContext, PolicyWatch]
) -> None:
    game = site.api("POST", "/api/games", {"ceremonyId": ceremony, "name": "Policy party"})
    code = game["accessCode"]
    site.stack.create_user("dana", PASSWORD, display_name="Dana")
    context, watch = watched
    page = context.new_page()

    # --- signed out: sign-in page, 404, and the join link's sign-in ----------
    visit(page, f"{site.url}/")
    expect(page.locator("#signin-form")).to_be_visible()
    visit(page, f"{site.url}/no-such-page", status=404)
    visit(page, f"{site.url}/join/{code}")
    form = page.locator("#signin-form")
    form.get_by_label("Username").fill("dana")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign in").click()
    # The join page joins and moves on to the picks (a nominee with a picture).
    page.wait_for_url(f"{site.url}/games/{game['id']}/picks")
    expect(page.locator("img.nominee-image")).to_have_count(1)
    for index, title in enumerate(("Anora", "The Brutalist")):
        page.locator("[data-category-pill]").nth(index).click()
        page.locator("[data-nominees] .nominee", has_text=title).click()
        expect(page.locator("[data-save-state]")).to_have_text("Saved ✓")
    expect(page.locator("[data-picked-count]")).to_have_text("2 of 2 picked")

    # --- the live board: socket connected, an update received ----------------
    visit(page, f"{site.url}/games/{game['id']}/live")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    category = site.api("GET", f"/api/ceremonies/{ceremony}")["categories"][0]
    winner = next(n for n in category["nominations"] if n["title"] == "Anora")
    site.api("POST", f"/api/categories/{category['id']}/winner", {"nominationId": winner["id"]})
    expect(page.locator("[data-just-announced]")).to_have_text("Best Picture — Anora")
    expect(page.locator("[data-progress]")).to_have_text("1 of 2 revealed")
    expect(page.locator("[data-player-row] [data-score]")).to_have_text("5")
    # The socket went to this origin (connect-src 'self' covers ws:) and stayed up.
    ws_url = site.url.replace("http://", "ws://") + "/ws/"
    # (The picks page had one too, closed when the page was left.)
    assert watch.sockets and {socket.url for socket in watch.sockets} == {ws_url}
    assert not watch.sockets[-1].is_closed()
    page.locator('[data-reaction="👏"]').click()
    expect(page.locator('[data-floating-reaction="👏"]').first).to_be_attached()

    visit(page, f"{site.url}/")  # home, signed in, with the game listed
    expect(page.locator(f'[data-game-id="{game["id"]}"]')).to_be_visible()
    visit(page, f"{site.url}/games/{game['id']}/host", status=403)  # not dana's game

    # --- the host: host page (QR code) and the TV board ----------------------
    host = chromium.new_context(viewport=TV)
    try:
        host_watch = PolicyWatch(site.url)
        host_watch.attach(host)
        sign_in(host, site, "boss")
        host_page = host.new_page()
        visit(host_page, f"{site.url}/games/{game['id']}/host")
        expect(host_page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
        expect(host_page.locator(".qr svg")).to_have_count(1)
        expect(host_page.locator("[data-pick-count]").first).to_be_visible()
        visit(host_page, f"{site.url}/games/{game['id']}/live?tv=1")
        expect(host_page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
        expect(host_page.locator("[data-player-row]")).to_have_count(1)
        visit(host_page, f"{site.url}/games/{game['id']}/picks")
        expect(host_page.locator("[data-nominees] .nominee").first).to_be_visible()
        host_page.wait_for_function("true")
        host_watch.assert_clean(min_documents=3)
    finally:
        host.close()

    page.wait_for_function("true")
    # /, 404, join (sign-in), join, picks, live, home, 403.
    watch.assert_clean(min_documents=8)


# Models whose changelists and change forms staff use (games/admin.py,
# accounts/admin.py); the index must link every one of them.
ADMIN_MODELS = {
    "/admin/accounts/user/",
    "/admin/games/ceremony/",
    "/admin/games/category/",
    "/admin/games/game/",
    "/admin/games/gameparticipant/",
    "/admin/games/pick/",
    "/admin/games/gameevent/",
}


def test_admin_pages_run_under_the_policy(
    site: Site, chief: int, watched: tuple[BrowserContext, PolicyWatch]
) -> None:
    # Rows in every changelist: a game, its host's participant row and pick,
    # and events (locking the picks writes some). A ceremony of its own: no
    # category of it is revealed yet, so picks are open.
    ceremony = site.import_ceremony(CATEGORIES)
    game = site.api("POST", "/api/games", {"ceremonyId": ceremony, "name": "Admin party"})
    category = site.api("GET", f"/api/ceremonies/{ceremony}")["categories"][1]
    nomination = category["nominations"][0]
    site.api(
        "PUT",
        f"/api/games/{game['id']}/picks/{category['id']}",
        {"nominationId": nomination["id"]},
    )
    site.api("PATCH", f"/api/games/{game['id']}", {"status": "LIVE"})
    context, watch = watched
    page = context.new_page()

    # --- log in through the admin's own form ---------------------------------
    visit(page, f"{site.url}/admin/login/")
    page.get_by_label("Username").fill("chief")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/admin/")
    changelists: list[str] = page.locator("#content-main th[scope=row] a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert set(changelists) >= ADMIN_MODELS, changelists

    # --- every changelist, its first change form, and its add form ------------
    for changelist in changelists:
        visit(page, f"{site.url}{changelist}")
        expect(page.locator("#changelist")).to_be_visible()
        first = page.locator("#result_list tbody tr th a, #result_list tbody tr td a").first
        change_url = first.get_attribute("href") if first.count() else None
        add_url = (
            page.locator(".object-tools a.addlink").get_attribute("href")
            if page.locator(".object-tools a.addlink").count()
            else None
        )
        if changelist in ADMIN_MODELS:
            assert change_url, f"{changelist} has no rows to open"
        for url in (change_url, add_url):
            if url:
                visit(page, f"{site.url}{url}")
                expect(page.locator("#content-main")).to_be_visible()
    visit(page, f"{site.url}/admin/games/category/?q=Best&revealed=no")
    visit(page, f"{site.url}/admin/games/ceremony/?date__year=2025")
    visit(page, f"{site.url}/admin/games/ceremony/add/?_to_field=id&_popup=1")

    # --- the lock time's calendar and clock widgets (admin JS builds them) ---
    visit(page, f"{site.url}/admin/games/game/{game['id']}/change/")
    page.locator("#id_picks_lock_at_0 ~ span a[id^=calendarlink]").click()
    expect(page.locator(".calendarbox").first).to_be_visible()
    page.locator(".calendarbox .calendar-cancel a").first.click()
    page.locator("#id_picks_lock_at_1 ~ span a[id^=clocklink]").click()
    expect(page.locator(".clockbox").first).to_be_visible()
    page.locator(".clockbox .calendar-cancel a").first.click()

    # --- mark a winner the way the host does it here, then undo it -----------
    visit(page, f"{site.url}/admin/games/category/{category['id']}/change/")
    # inlines.js clones an empty nomination row (left empty, so not saved).
    rows = page.locator("#nominations-group tr.dynamic-nominations")
    before = rows.count()
    page.locator("#nominations-group .add-row a").click()
    expect(rows).to_have_count(before + 1)
    page.locator("#id_winner").select_option(label=nomination["title"])
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(f"{site.url}/admin/games/category/")
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")
    assert site.api("GET", f"/api/ceremonies/{ceremony}")["categories"][1]["isRevealed"]
    page.locator(f'#result_list input[name=_selected_action][value="{category["id"]}"]').check()
    page.locator("select[name=action]").select_option("undo_winner")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text("Undid the winner of 1 category(ies).")

    # --- a group with the permissions picker (SelectFilter2 builds it), then
    # deleted through its confirmation page; a password form; logging out ----
    visit(page, f"{site.url}/admin/auth/group/add/")
    page.locator("#id_name").fill("Night crew")
    page.locator("#id_permissions_input").fill("winner")  # the picker's filter box
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(f"{site.url}/admin/auth/group/")
    page.locator("#result_list").get_by_role("link", name="Night crew").click()
    page.get_by_role("link", name="Delete").click()
    expect(page.locator("#content")).to_contain_text("Are you sure you want to delete")
    page.get_by_role("button", name=re.compile("Yes, I.m sure")).click()
    expect(page.locator(".messagelist .success")).to_contain_text("deleted successfully")
    visit(page, f"{site.url}/admin/accounts/user/{chief}/password/")
    page.locator("#logout-form button").click()
    expect(page.locator("#content")).to_contain_text("Thanks for spending some quality time")

    page.wait_for_function("true")
    watch.assert_clean(min_documents=len(ADMIN_MODELS) * 2 + 10)
