"""Guest join in real Chromium on two phones: the join link asks for a name
and a PIN; the same name and PIN on the second phone bring back the picks;
a wrong PIN and a taken name say so."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import ARTIFACTS, PHONE, Site

pytestmark = pytest.mark.browser

CATEGORIES = [
    {
        "name": "Best Picture",
        "points": 2,
        "nominations": [{"title": "Anora"}, {"title": "Conclave"}, {"title": "Wicked"}],
    },
    {
        "name": "Best Director",
        "points": 1,
        "nominations": [{"title": "Brady Corbet"}, {"title": "Sean Baker"}],
    },
]


@pytest.fixture(scope="module")
def ceremony(site: Site) -> int:
    return site.import_ceremony(CATEGORIES)


@pytest.fixture
def phones(chromium: Browser) -> Iterator[list[BrowserContext]]:
    """Two phones: separate browser contexts share no cookie."""
    contexts = [chromium.new_context(viewport=PHONE) for _ in range(2)]
    yield contexts
    for context in contexts:
        context.close()


def watch(page: Page) -> list[str]:
    """JS errors, dialogs and CSP refusals: each one would be a bug."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on(
        "dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return problems


def guest_join(page: Page, name: str, pin: str) -> None:
    form = page.locator("#guest-form")
    form.get_by_label("Your name").fill(name)
    form.get_by_label("PIN").fill(pin)
    form.get_by_role("button", name="Join the game").click()


def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def nominee(page: Page, title: str):
    return page.locator("[data-nominees] .nominee", has_text=title).first


def test_a_guest_joins_picks_and_comes_back_on_another_phone(
    site: Site, ceremony: int, phones: list[BrowserContext]
) -> None:
    game = site.api("POST", "/api/games", {"ceremonyId": ceremony, "name": "Oscars at Mia's"})
    join_url = f"{site.url}/join/{game['accessCode']}"
    picks_url = f"{site.url}/games/{game['id']}/picks"

    # --- phone 1: the join link, a name and a PIN, straight to the picks --------
    one = phones[0].new_page()
    one_problems = watch(one)
    one.goto(join_url)
    expect(one.locator("h1")).to_have_text("Join the party")
    expect(one.locator(".lead")).to_contain_text(game["accessCode"])
    # Signing in or registering stays on offer for those with an account.
    expect(one.locator("#signin-form")).to_be_visible()
    expect(one.locator("#register-form")).to_be_visible()
    screenshot(one, "guest-join-phone")
    screenshot(one, "guest-join-full-phone", full_page=True)
    # Checked in the page before anything is sent.
    guest_join(one, "Mia", "12")
    expect(one.locator("#guest-form [data-form-error]")).to_have_text("Your PIN is 4 to 6 digits.")
    guest_join(one, "Mia", "2580")
    one.wait_for_url(picks_url)
    expect(one.locator(".whoami")).to_have_text("Mia")
    for index, title in enumerate(("Conclave", "Sean Baker")):
        one.locator("[data-category-pill]").nth(index).click()
        nominee(one, title).click()
        expect(one.locator("[data-picked-count]")).to_have_text(f"{index + 1} of 2 picked")
        expect(one.locator("[data-save-state]")).to_have_text("Saved ✓")
    screenshot(one, "guest-picks-phone")

    # --- phone 2: a wrong PIN, a taken name, then the right PIN ------------------
    two = phones[1].new_page()
    two_problems = watch(two)
    two.goto(join_url)
    guest_join(two, "mia", "1111")
    error = two.locator("#guest-form [data-form-error]")
    expect(error).to_have_text(re.compile(r"^Wrong PIN for this name\."))
    screenshot(two, "guest-join-wrong-pin-phone")
    assert two.url == join_url
    guest_join(two, "the boss", "1111")  # the host's display name, in any case
    expect(error).to_have_text(re.compile(r"^Someone in this game already has that name\."))
    assert two.url == join_url
    guest_join(two, "MIA", "2580")
    two.wait_for_url(picks_url)
    expect(two.locator(".whoami")).to_have_text("Mia")
    expect(two.locator("[data-picked-count]")).to_have_text("2 of 2 picked")
    two.locator("[data-category-pill]").nth(0).click()
    expect(nominee(two, "Conclave")).to_have_attribute("aria-pressed", "true")
    expect(nominee(two, "Anora")).to_have_attribute("aria-pressed", "false")
    two.locator("[data-category-pill]").nth(1).click()
    expect(nominee(two, "Sean Baker")).to_have_attribute("aria-pressed", "true")
    screenshot(two, "guest-back-phone")

    # Both phones are one player: the host sees two players, not three.
    players = site.api("GET", f"/api/games/{game['id']}")["participantCount"]
    assert players == 2
    assert one_problems == [] and two_problems == []


def test_a_bad_link_says_so_on_the_guest_form(
    site: Site, ceremony: int, phones: list[BrowserContext]
) -> None:
    page = phones[0].new_page()
    problems = watch(page)
    page.goto(f"{site.url}/join/ZZZZZZZZ")
    guest_join(page, "Noor", "4321")
    expect(page.locator("#guest-form [data-form-error]")).to_have_text(
        "No game has this code. Check the link with your host."
    )
    assert problems == []
