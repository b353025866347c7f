"""The admin's "Import from Wikipedia", in Chromium on a real daphne stack:
paste a page URL, see the preview, import; the page fetched from a local
stand-in for the MediaWiki API. Everything runs under the strict
Content-Security-Policy (any violation fails the test)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.admin_cmds.test_import_wikipedia import RECENT, StandInWikipedia, wikitext
from tests.browser.conftest import ARTIFACTS, PASSWORD, _own_redis_url
from tests.browser.test_csp import PolicyWatch
from tests.liveserver import LiveStack

pytestmark = pytest.mark.browser

PAGE_URL = "https://en.wikipedia.org/wiki/96th_Academy_Awards"


@pytest.fixture(scope="module")
def wikipedia() -> Iterator[StandInWikipedia]:
    stand_in = StandInWikipedia({"96th Academy Awards": wikitext(RECENT)}).start()
    try:
        yield stand_in
    finally:
        stand_in.stop()


@pytest.fixture(scope="module")
def stack(wikipedia: StandInWikipedia) -> Iterator[LiveStack]:
    """The browser suite's stack, its Wikipedia API the stand-in."""
    stack = LiveStack(
        processes=1,
        redis_url=_own_redis_url(),
        extra_env={"WIKIPEDIA_API_URL": wikipedia.api_url, "WIKIPEDIA_TIMEOUT": "2"},
    )
    stack.start()
    try:
        stack.create_user("chief", PASSWORD, staff=True)
        stack.shell(
            "from accounts.models import User\n"
            "User.objects.filter(username='chief').update(is_superuser=True)"
        )
        yield stack
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        for server in stack.servers:
            if server.log_path.exists():
                shutil.copy(server.log_path, ARTIFACTS / "browser-admin-import-daphne.log")
        stack.close()


@pytest.fixture
def watched(chromium: Browser, stack: LiveStack) -> Iterator[tuple[BrowserContext, PolicyWatch]]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    watch = PolicyWatch(stack.url)
    watch.attach(context)
    try:
        yield context, watch
    finally:
        context.close()


def log_in(page: Page, stack: LiveStack) -> None:
    page.goto(f"{stack.url}/admin/login/")
    page.get_by_label("Username").fill("chief")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{stack.url}/admin/")


def ceremony_count(stack: LiveStack) -> int:
    out = stack.shell("from games.models import Ceremony\nprint(Ceremony.objects.count())")
    return int(out.strip().splitlines()[-1])


def test_preview_then_import_from_a_pasted_url(
    stack: LiveStack, wikipedia: StandInWikipedia, watched: tuple[BrowserContext, PolicyWatch]
) -> None:
    context, watch = watched
    page = context.new_page()
    log_in(page, stack)

    # The ceremony list links to the import page.
    page.goto(f"{stack.url}/admin/games/ceremony/")
    page.get_by_role("link", name="Import from Wikipedia").click()
    expect(page.get_by_role("heading", name="Import a ceremony from Wikipedia")).to_be_visible()

    # A URL that is not a Wikipedia article is refused, and nothing is fetched.
    page.get_by_label("Wikipedia page URL").fill("https://example.com/wiki/96th_Academy_Awards")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator(".messagelist .error")).to_contain_text(
        "IMPORT_INVALID: wikipediaUrl: must be a Wikipedia article URL"
    )
    assert wikipedia.requests == []

    # Paste the page, preview: the categories and nominees, no winner marked.
    page.get_by_label("Wikipedia page URL").fill(PAGE_URL)
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#wikipedia-preview")
    expect(preview.get_by_role("heading", name="96th Academy Awards — 2024-03-10")).to_be_visible()
    expect(preview).to_contain_text("23 categories, 120 nominations.")
    expect(preview.locator("caption")).to_have_count(23)
    picture = preview.locator("table", has=page.locator("caption", has_text="Best Picture ("))
    expect(picture.locator("tbody tr").first).to_contain_text("American Fiction")
    expect(picture.locator("tr", has_text="Oppenheimer").locator("td").nth(1)).to_have_text(
        "Emma Thomas, Charles Roven, and Christopher Nolan"
    )
    song = preview.locator("table", has=page.locator("caption", has_text="Best Original Song"))
    expect(song).to_contain_text("Barbie — Billie Eilish and Finneas O'Connell")
    expect(preview).not_to_contain_text("‡")
    assert len(wikipedia.requests) == 1
    assert ceremony_count(stack) == 0  # a preview writes nothing

    # Import: the ceremony's page, with its categories and no winner.
    page.get_by_role("button", name="Import this ceremony").click()
    page.wait_for_url(f"{stack.url}/admin/games/ceremony/*/change/")
    expect(page.locator(".messagelist .success")).to_contain_text(
        "Imported '96th Academy Awards': 23 categories, no winners."
    )
    expect(page.locator("#id_name")).to_have_value("96th Academy Awards")
    assert ceremony_count(stack) == 1
    revealed = stack.shell(
        "from games.models import Category\n"
        "print(Category.objects.filter(winner__isnull=False).count())"
    )
    assert revealed.strip().splitlines()[-1] == "0"
    assert len(wikipedia.requests) == 1  # the import wrote what was previewed

    # Importing it again is refused on the page, and writes nothing.
    page.goto(f"{stack.url}/admin/games/ceremony/import-wikipedia/")
    page.get_by_label("Wikipedia page URL").fill(PAGE_URL)
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Import this ceremony").click()
    expect(page.locator(".messagelist .error")).to_contain_text("already exists")
    assert ceremony_count(stack) == 1

    watch.assert_clean(min_documents=8)
