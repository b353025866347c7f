"""The whole party in two real browsers: sign in, create, join by link, pick,
reveal, live updates, a server restart with catch-up, and reactions."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, PASSWORD, PHONE, TV, Site

pytestmark = pytest.mark.browser

XSS_NAME = "<img src=x onerror=alert(1)>"
CATEGORIES = [
    {
        "name": "Best Picture",
        "points": 2,
        "nominations": [
            {"title": "Anora", "subtitle": "Sean Baker"},
            {"title": "Conclave", "subtitle": "Edward Berger"},
            {"title": "Wicked", "subtitle": "Jon M. Chu"},
        ],
    },
    {
        "name": "Best Director",
        "points": 3,
        "nominations": [
            {"title": "Brady Corbet", "subtitle": "The Brutalist"},
            {"title": "Sean Baker", "subtitle": "Anora"},
        ],
    },
    {
        "name": "Best Original Song",
        "points": 1,
        "nominations": [
            {"title": "El Mal", "subtitle": "Emilia Pérez"},
            {"title": "Like a Bird", "subtitle": "Sing Sing"},
        ],
    },
]


def track_errors(page: Page) -> list[str]:
    """JS errors and dialogs (an alert would mean injected HTML ran)."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on(
        "dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
    return problems


def pick_all(page: Page, titles: list[str]) -> None:
    """Pick one nominee per category through the wizard, saving on tap."""
    for index, title in enumerate(titles):
        page.locator("[data-category-pill]").nth(index).click()
        page.locator("[data-nominees] .nominee", has_text=title).first.click()
        expect(page.locator("[data-picked-count]")).to_have_text(
            f"{index + 1} of {len(titles)} picked"
        )
        expect(page.locator("[data-save-state]")).to_have_text("Saved ✓")


def row(page: Page, user_id: int):
    return page.locator(f'[data-player-row][data-user-id="{user_id}"]')


def expect_board(page: Page, expected: dict[int, tuple[int, int]], timeout: float) -> None:
    """Each user's (rank, score); exactly these rows."""
    expect(page.locator("[data-player-row]")).to_have_count(len(expected), timeout=timeout)
    for user_id, (rank, score) in expected.items():
        expect(row(page, user_id)).to_have_attribute("data-rank", str(rank), timeout=timeout)
        expect(row(page, user_id).locator("[data-score]")).to_have_text(str(score), timeout=timeout)


def test_party_night(site: Site, chromium: Browser) -> None:
    ceremony_id = site.import_ceremony(CATEGORIES)
    host_ctx = chromium.new_context(viewport=PHONE)
    guest_ctx = chromium.new_context(viewport=PHONE)
    try:
        # --- the host signs in with the form and creates a game --------------
        host = host_ctx.new_page()
        host_problems = track_errors(host)
        host.goto(f"{site.url}/")
        signin = host.locator("#signin-form")
        signin.get_by_label("Username").fill("boss")
        signin.get_by_label("Password").fill(PASSWORD)
        signin.get_by_role("button", name="Sign in").click()
        create = host.locator("#create-form")
        create.get_by_label("Ceremony").select_option(str(ceremony_id))
        create.get_by_label("Game name").fill("Oscars at Sam's")
        create.get_by_role("button", name="Create game").click()
        host.wait_for_url(re.compile(r"/games/\d+/picks$"))
        game_id = int(host.url.split("/")[-2])
        boss_id = host_ctx.request.get(f"{site.url}/api/auth/me").json()["user"]["id"]

        host_page = host_ctx.new_page()
        host_page_problems = track_errors(host_page)
        host_page.goto(f"{site.url}/games/{game_id}/host")
        code = host_page.locator("[data-access-code]").inner_text().strip()
        assert re.fullmatch(r"[A-Z2-9]{8}", code)
        assert host_page.locator(".qr svg").count() == 1

        # --- a guest follows the join link, registers, lands on picks --------
        guest = guest_ctx.new_page()
        guest_problems = track_errors(guest)
        guest.goto(f"{site.url}/join/{code}")
        register = guest.locator("#register-form")
        register.get_by_label("Username").fill("alice")
        register.get_by_label("Display name").fill(XSS_NAME)
        register.get_by_label("Password").fill(PASSWORD)
        register.get_by_role("button", name="Create account").click()
        guest.wait_for_url(f"{site.url}/games/{game_id}/picks")
        guest_id = guest_ctx.request.get(f"{site.url}/api/auth/me").json()["user"]["id"]

        # --- both pick -------------------------------------------------------
        pick_all(host, ["Conclave", "Brady Corbet", "El Mal"])
        pick_all(guest, ["Anora", "Sean Baker", "Like a Bird"])

        # --- both watch the live board ---------------------------------------
        host.goto(f"{site.url}/games/{game_id}/live")
        guest.goto(f"{site.url}/games/{game_id}/live")
        for page in (host, guest):
            expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
            expect_board(page, {boss_id: (1, 0), guest_id: (1, 0)}, timeout=5000)
        expect(host.locator("[data-watchers-count]")).to_have_text(re.compile(r"^[23] watching$"))

        # --- the host marks a winner with one confirmation -------------------
        host_page.locator("[data-category-pill]").nth(0).click()
        card = host_page.locator("[data-nominees] .nominee", has_text="Anora")
        card.get_by_role("button", name="Mark winner").click()
        started = time.monotonic()
        card.get_by_role("button", name="Confirm: Anora wins").click()
        for page in (host, guest):
            expect_board(page, {guest_id: (1, 2), boss_id: (2, 0)}, timeout=1000)
            expect(page.locator("[data-just-announced]")).to_have_text(
                "Best Picture — Anora", timeout=1000
            )
        assert time.monotonic() - started < 2.0
        expect(guest.locator("[data-progress]")).to_have_text("1 of 3 revealed")
        expect(host_page.locator("[data-game-status]")).to_have_text("Picks locked")

        # The guest's name is text everywhere it shows, never markup.
        expect(row(host, guest_id).locator(".row-name")).to_have_text(XSS_NAME)
        expect(host.locator(".podium-name", has_text=XSS_NAME)).to_be_visible()
        assert host.locator("img").count() == 0
        assert guest.locator("img").count() == 0

        _screenshot(host, "live-phone")

        # --- the server restarts; a reveal happens while the pages are away --
        server = site.stack.servers[0]
        server.stop()
        for page in (host, guest):
            expect(page.locator("[data-connection]")).to_have_attribute(
                "data-connection", "connecting", timeout=5000
            )
            expect(page.locator('[data-reaction="🔥"]').first).to_be_disabled()
        director = site.shell(
            "from games.models import Category, Nomination\n"
            "from games.services import category_reveal\n"
            f"c = Category.objects.get(ceremony_id={ceremony_id}, name='Best Director')\n"
            "n = Nomination.objects.get(category=c, title='Brady Corbet')\n"
            "category_reveal(category_id=c.pk, nomination_id=n.pk)\n"
            "print(c.pk)"
        )
        assert director.strip().splitlines()[-1].isdigit()
        server.start()
        for page in (host, guest):
            expect(page.locator("[data-connection]")).to_have_attribute(
                "data-connection", "live", timeout=35000
            )
            expect_board(page, {boss_id: (1, 3), guest_id: (2, 2)}, timeout=5000)
            expect(page.locator("[data-just-announced]")).to_have_text(
                "Best Director — Brady Corbet"
            )
            expect(page.locator("[data-progress]")).to_have_text("2 of 3 revealed")

        # --- a reaction sent in one browser floats in the other --------------
        guest.locator('[data-reaction="🔥"]').click()
        floating = host.locator('[data-floating-reaction="🔥"]')
        expect(floating.first).to_be_attached(timeout=3000)
        expect(floating.first.locator(".float-name")).to_have_text(XSS_NAME)
        expect(guest.locator('[data-floating-reaction="🔥"]').first).to_be_attached()
        assert host.locator("img").count() == 0

        # --- the picks page is read-only now and shows right and wrong -------
        guest.goto(f"{site.url}/games/{game_id}/picks")
        expect(guest.locator("[data-locked-note]")).to_be_visible()
        expect(guest.locator("[data-nominees] .nominee").first).to_be_disabled()
        expect(guest.locator("[data-category-pill].right")).to_have_count(1)
        expect(guest.locator("[data-category-pill].wrong")).to_have_count(1)
        _screenshot(guest, "picks-locked-phone")
        _screenshot(host_page, "host-phone")

        # --- the big screen ---------------------------------------------------
        tv = host_ctx.new_page()
        tv.set_viewport_size(TV)
        tv_problems = track_errors(tv)
        tv.goto(f"{site.url}/games/{game_id}/live?tv=1")
        expect(tv.locator("[data-connection]")).to_have_attribute("data-connection", "live")
        expect_board(tv, {boss_id: (1, 3), guest_id: (2, 2)}, timeout=5000)
        assert tv.locator("[data-reaction]").count() == 0
        _screenshot(tv, "live-tv")

        problems = host_problems + host_page_problems + guest_problems + tv_problems
        assert problems == []
    finally:
        host_ctx.close()
        guest_ctx.close()


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(1800)  # let the reveal flash and row moves settle
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
