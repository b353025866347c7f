"""The rough edges a new host meets, in Chromium at phone size (and a laptop
for the admin): the create form's warning on a begun ceremony, the join code
that never wraps, category pills that say they scroll, a podium that waits
for points, a connection indicator that is not a status, human error
messages, the how-to-play sheet, the admin's names, and no 404 anywhere (the
icon included)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import ARTIFACTS, PASSWORD, PHONE, ROOT, TV, Site, sign_in

pytestmark = pytest.mark.browser

FIXTURE = ROOT / "games" / "fixtures" / "97th-academy-awards.json"
LAPTOP = {"width": 1280, "height": 800}
SMALL_PHONE = {"width": 320, "height": 640}
SMALL = [
    {
        "name": f"Category {n}",
        "points": 2,
        "nominations": [{"title": f"Nominee {n}.{k}"} for k in range(3)],
    }
    for n in range(1, 3)
]

# The boss hosts; two guests join. In every category the boss picks the
# first nominee and the guests the second: the third wins nobody a point.
PARTY = """
import json
from accounts.models import User
from games.models import Category
from games.services import game_create, game_join, pick_submit
host = User.objects.get(username="boss")
game = game_create(host=host, ceremony_id={ceremony_id}, name="Edges party")
players = [(host, 0)]
for name in ("Ada", "Bea"):
    user = User.objects.create_user(f"{{name.lower()}}{{game.pk}}", password="x-unused-x",
                                    display_name=name)
    game_join(user=user, access_code=game.access_code)
    players.append((user, 1))
cats = list(Category.objects.filter(ceremony_id={ceremony_id}).prefetch_related("nominations"))
for user, choice in players:
    for cat in cats:
        nominee = list(cat.nominations.all())[choice]
        pick_submit(game_id=game.pk, user=user, category_id=cat.pk, nomination_id=nominee.pk)
print(json.dumps({{"game": game.pk, "code": game.access_code, "categories": [
    [n.pk for n in c.nominations.all()] for c in cats
], "category_ids": [c.pk for c in cats]}}))
"""


def fixture_categories() -> list[dict]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))["categories"]


def make_party(site: Site, categories: list[dict]) -> dict:
    ceremony_id = site.import_ceremony(categories)
    party = json.loads(site.shell(PARTY.format(ceremony_id=ceremony_id)).strip().splitlines()[-1])
    return {**party, "ceremony": ceremony_id}


def reveal(site: Site, party: dict, index: int, nominee: int) -> None:
    category_id = party["category_ids"][index]
    winner = party["categories"][index][nominee]
    site.api("POST", f"/api/categories/{category_id}/winner", {"nominationId": winner})


def signed_in(
    chromium: Browser, site: Site, viewport: dict = PHONE, user: str = "boss"
) -> BrowserContext:
    context = chromium.new_context(viewport=viewport)
    sign_in(context, site, user)
    return context


@pytest.fixture(scope="module")
def chief(site: Site) -> str:
    """A superuser: the admin shows every model to them."""
    site.shell(
        "from accounts.models import User\n"
        f"User.objects.create_superuser('chief', password={PASSWORD!r}, display_name='Chief')"
    )
    return "chief"


def shot(page: Page, name: str, selector: str = "") -> None:
    """A screenshot of the page (or of one element) in test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(700)
    path = str(ARTIFACTS / f"{name}.png")
    if selector:
        page.locator(selector).screenshot(path=path)
    else:
        page.screenshot(path=path)


def one_line(page: Page, selector: str) -> dict:
    """How many line boxes an inline element takes, and its line height."""
    return page.eval_on_selector(
        selector,
        """(node) => ({ lines: node.getClientRects().length,
          height: node.getBoundingClientRect().height,
          lineHeight: parseFloat(getComputedStyle(node).fontSize) * 1.6,
          text: node.textContent })""",
    )


# --- the create form --------------------------------------------------------------


def test_create_form_warns_before_a_game_on_a_begun_ceremony(site: Site, chromium: Browser) -> None:
    upcoming = site.import_ceremony(SMALL)
    begun = make_party(site, SMALL)
    over = make_party(site, SMALL)
    reveal(site, begun, 0, 2)
    reveal(site, over, 0, 2)
    reveal(site, over, 1, 2)
    context = signed_in(chromium, site)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/")
        select = page.locator("#create-form select[name=ceremonyId]")
        warning = page.locator("[data-create-warning]")
        # An ended night is listed as such but cannot be chosen.
        over_option = select.locator(f'option[value="{over["ceremony"]}"]')
        expect(over_option).to_have_text(re.compile(r" · over$"))
        expect(over_option).to_be_disabled()
        select.select_option(str(upcoming))
        expect(warning).to_be_hidden()
        select.select_option(str(begun["ceremony"]))
        expect(warning).to_be_visible()
        expect(warning).to_contain_text("1 of 2 revealed")
        expect(warning).to_contain_text("starts live")
        expect(warning).to_contain_text("nobody can pick")
        page.locator("#create-form input[name=name]").fill("Late to the party")
        shot(page, "home-create-warning", "#create-form")
        page.locator("#create-form").get_by_role("button", name="Create game").click()
        # Created LIVE: the host lands on the board, not on a locked ballot.
        page.wait_for_url(re.compile(r"/games/\d+/live$"))
        expect(page.locator("[data-game-status]")).to_have_text("Picks locked")
    finally:
        context.close()


# --- the host page ------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", [PHONE, SMALL_PHONE], ids=["390", "320"])
def test_join_code_never_wraps_mid_code(site: Site, chromium: Browser, viewport: dict) -> None:
    party = make_party(site, SMALL)
    context = signed_in(chromium, site, viewport)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/games/{party['game']}/host")
        expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
        link = page.locator("[data-join-link]")
        expect(link).to_have_attribute("href", re.compile(rf"/join/{party['code']}$"))
        expect(link).to_have_text(re.compile(rf"/join/{party['code']}$"))
        for selector in ("[data-join-code]", "[data-access-code]"):
            box = one_line(page, selector)
            assert box["text"].strip() == party["code"]
            assert box["lines"] == 1 and box["height"] < box["lineHeight"], (selector, box)
        # Nothing sticks out sideways either.
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    finally:
        context.close()


# --- pills that scroll ---------------------------------------------------------------------


def test_category_pills_say_when_they_scroll(site: Site, chromium: Browser) -> None:
    many = make_party(site, fixture_categories())
    few = make_party(site, SMALL)
    context = signed_in(chromium, site)
    try:
        page = context.new_page()
        for path in ("picks", "host"):
            page.goto(f"{site.url}/games/{many['game']}/{path}")
            scroller = page.locator("[data-pills-scroller]")
            expect(scroller).to_have_attribute("data-more", re.compile(r"\bright\b"))
            more = page.locator('[data-pills-more="right"]')
            expect(more).to_be_visible()
            expect(page.locator('[data-pills-more="left"]')).to_be_hidden()
            shot(page, f"{path}-phone")
            more.click()
            expect(scroller).to_have_attribute("data-more", re.compile(r"\bleft\b"))
            expect(page.locator('[data-pills-more="left"]')).to_be_visible()
            if path == "picks":
                # The strip ends: at its end the right hint goes away.
                page.eval_on_selector("[data-pills]", "(s) => { s.scrollLeft = s.scrollWidth; }")
                expect(scroller).to_have_attribute("data-more", "left")
        # Two pills fit: no hint at all.
        page.goto(f"{site.url}/games/{few['game']}/picks")
        expect(page.locator("[data-pills-scroller]")).to_have_attribute("data-more", "")
        expect(page.locator("[data-pills-more]:visible")).to_have_count(0)
    finally:
        context.close()


# --- the live page ---------------------------------------------------------------------------


def test_podium_waits_for_points_and_the_connection_is_not_a_status(
    site: Site, chromium: Browser
) -> None:
    party = make_party(site, SMALL)
    context = signed_in(chromium, site)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/games/{party['game']}/live")
        connection = page.locator("[data-connection]")
        expect(connection).to_have_attribute("data-connection", "live")
        expect(connection).to_have_text("Connected")
        status = page.locator("[data-game-status]")
        expect(status).to_have_text("Picks open")
        assert "status" not in (connection.get_attribute("class") or "").split()
        # Three players on 0 points: no "1st" three times, a line instead.
        expect(page.locator("[data-player-row]")).to_have_count(3)
        expect(page.locator("[data-podium]")).to_be_hidden()
        expect(page.locator("[data-podium-wait]")).to_have_text(re.compile("^No points yet"))
        expect(page.get_by_text("1st").filter(visible=True)).to_have_count(0)
        # A winner nobody picked: still no points, still waiting.
        reveal(site, party, 0, 2)
        expect(page.locator("[data-progress]")).to_have_text("1 of 2 revealed")
        expect(status).to_have_text("Picks locked")
        expect(page.locator("[data-podium]")).to_be_hidden()
        expect(page.locator("[data-podium-wait]")).to_be_visible()
        # The guests' pick wins: now there is a podium.
        reveal(site, party, 1, 1)
        expect(page.locator("[data-podium]")).to_be_visible()
        expect(page.locator("[data-podium-wait]")).to_be_hidden()
        expect(page.locator(".place-1 .podium-score")).to_have_text("2 pts")
        # A dropped socket reads as reconnecting, never as the game's state.
        label = page.evaluate(
            """() => { const node = document.querySelector("[data-connection]");
              window.envelope.setConnection(node, "connecting");
              const text = node.textContent;
              window.envelope.setConnection(node, "live");
              return text; }"""
        )
        assert label == "Reconnecting…"
        shot(page, "live-phone")
    finally:
        context.close()


def test_how_to_play_on_picks_and_live_but_not_on_the_tv(site: Site, chromium: Browser) -> None:
    party = make_party(site, SMALL)
    context = signed_in(chromium, site)
    try:
        page = context.new_page()
        for path in ("picks", "live"):
            page.goto(f"{site.url}/games/{party['game']}/{path}")
            sheet = page.locator("details[data-how-to-play]")
            expect(sheet).to_have_count(1)
            expect(sheet.locator("li").first).to_be_hidden()  # collapsed
            sheet.locator("summary").click()
            items = sheet.locator("li")
            expect(items).to_have_count(4)
            for words in ("one nominee in every category", "points", "live", "React"):
                expect(sheet).to_contain_text(words)
            expect(items.first).to_be_visible()
            if path == "picks":
                shot(page, "picks-how-to-play")
        page.set_viewport_size(TV)
        page.goto(f"{site.url}/games/{party['game']}/live?tv=1")
        expect(page.locator("[data-player-row]")).to_have_count(3)
        expect(page.locator("[data-how-to-play]")).to_have_count(0)
    finally:
        context.close()


# --- errors people read ------------------------------------------------------------------------


def test_validation_errors_name_the_field_as_people_see_it(site: Site, chromium: Browser) -> None:
    context = chromium.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/")
        form = page.locator("#register-form")
        form.get_by_label("Username").fill("shortpass")
        form.get_by_label("Display name").fill("Shorty")
        form.get_by_label("Password").fill("abc")
        form.get_by_role("button", name="Create account").click()
        error = form.locator("[data-form-error]")
        expect(error).to_have_text(re.compile(r"^Password: \S"))
        assert not re.match(r"^[a-z]\w*: ", error.inner_text())
        # Several fields and unknown ones: labels, not keys.
        human = page.evaluate(
            """() => window.envelope.humanValidation(
              "displayName: This field may not be blank.; picks_lock_at: Bad time.; plain text")"""
        )
        assert human == "Display name: This field may not be blank. Picks lock at: Bad time. " + (
            "plain text"
        )
    finally:
        context.close()


# --- the admin --------------------------------------------------------------------------------


def test_admin_says_envelope_and_shows_revealed_at_whole(
    site: Site, chromium: Browser, chief: str
) -> None:
    party = make_party(site, SMALL)
    reveal(site, party, 0, 1)
    context = signed_in(chromium, site, LAPTOP, chief)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/admin/")
        expect(page.locator("#site-name")).to_have_text("Envelope administration")
        expect(page).to_have_title(re.compile("Envelope admin"))
        expect(page.get_by_role("link", name="Ceremonies", exact=True).first).to_be_visible()
        expect(page.get_by_text("Ceremonys")).to_have_count(0)
        expect(page.get_by_text("Django administration")).to_have_count(0)
        page.goto(f"{site.url}/admin/games/category/?ceremony__id__exact={party['ceremony']}")
        revealed = page.locator("#result_list td.field-revealed").filter(has_text=re.compile(r"\d"))
        expect(revealed).to_have_count(1)
        expect(revealed).to_have_text(re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{2}:\d{2}$"))
        expect(page.locator("#result_list th.column-revealed")).to_have_text("Revealed at")
        # Every column inside the list: nothing to scroll sideways for.
        fits = page.eval_on_selector(
            "#changelist-form .results", "(r) => r.scrollWidth <= r.clientWidth"
        )
        assert fits
        box = revealed.bounding_box()
        assert box is not None and box["x"] + box["width"] <= LAPTOP["width"]
    finally:
        context.close()


# --- no 404s, an icon everywhere -------------------------------------------------------------


def test_no_page_asks_for_anything_missing(site: Site, chromium: Browser, chief: str) -> None:
    party = make_party(site, SMALL)
    game = f"/games/{party['game']}"
    visits = {
        None: ["/"],  # signed out: the sign-in page
        "boss": ["/", f"{game}/picks", f"{game}/live", f"{game}/live?tv=1", f"{game}/host"],
        chief: [
            "/admin/",
            "/admin/games/category/",
            f"/admin/games/ceremony/{party['ceremony']}/change/",
        ],
    }
    failures: list[str] = []
    for user, paths in visits.items():
        context = chromium.new_context(viewport=PHONE)
        context.on(
            "response",
            lambda response: (
                failures.append(f"{response.status} {response.url}")
                if response.status >= 400
                else None
            ),
        )
        try:
            if user:
                sign_in(context, site, user)
            page = context.new_page()
            for path in paths:
                page.goto(f"{site.url}{path}")
                page.wait_for_load_state("networkidle")
                expect(page.locator('link[rel="icon"]')).to_have_count(1)
                icon = page.eval_on_selector('link[rel="icon"]', "(link) => link.href")
                assert context.request.get(icon).status == 200, path
            # Browsers and crawlers ask for /favicon.ico whatever the page links.
            favicon = context.request.get(f"{site.url}/favicon.ico")
            assert favicon.status == 200
            assert favicon.headers["content-type"] in {"image/x-icon", "image/vnd.microsoft.icon"}
            assert favicon.body()[:4] == b"\x00\x00\x01\x00"  # an ICO file
        finally:
            context.close()
    assert failures == []
