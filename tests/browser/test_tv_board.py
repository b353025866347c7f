"""The TV board (`/games/{id}/live?tv=1`) on a 1920x1080 screen nobody
touches: every ranked player is seen without scrolling. 13 players fit on one
screen; 50 and 500 are shown a screenful at a time, the board turning its
pages by itself, `[data-tv-more]` saying how many are not on screen."""

from __future__ import annotations

import json
import math
import re
import uuid

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, TV, Site, sign_in

pytestmark = pytest.mark.browser

PAGE_MS = 8000  # static/js/live.js, TV_PAGE_MS
MIN_ROW_VH = 4.4  # TV_ROW_MIN_VH: rows never shrink below it
MORE = re.compile(r"^\+(\d+) more · page (\d+) of (\d+)$")
NASTY_NAME = "<b>Bold</b> & <i>Co</i>"
CATEGORIES = [
    {
        "name": f"Category {n}",
        "points": points,
        "nominations": [{"title": f"Nominee {n}.{k}"} for k in range(1, 4)],
    }
    for n, points in ((1, 5), (2, 3), (3, 1))
]

# A game of the boss and `players - 1` guests, each with a seeded random pick
# in every category. Users, participants and picks are bulk-inserted (a
# 500-player party is set up in a second), then the counters rebuilt.
PARTY = """
import json, random
from accounts.models import User
from games.models import Category, GameParticipant, Pick
from games.services import game_create, participant_scores_recompute
host = User.objects.get(username="boss")
game = game_create(host=host, ceremony_id={ceremony_id}, name="TV party of {players}")
names = [f"Guest {{i:03d}}" for i in range({players} - 1)]
names[0] = {nasty!r}
names[1] = "Maximiliane Alexandrova-Featherstonehaugh the Third"
guests = User.objects.bulk_create([
    User(username=f"tv{tag}_{{i}}", display_name=name, password="!")
    for i, name in enumerate(names)
])
GameParticipant.objects.bulk_create([GameParticipant(game=game, user=u) for u in guests])
cats = list(Category.objects.filter(ceremony_id={ceremony_id}).prefetch_related("nominations"))
rng = random.Random({players})
Pick.objects.bulk_create([
    Pick(game=game, user=u, category=c, nomination=rng.choice(list(c.nominations.all())))
    for u in [host, *guests] for c in cats
])
participant_scores_recompute(game_id=game.pk)
print(json.dumps({{"game": game.pk, "reveal": [
    {{"id": c.pk, "winner": c.nominations.all()[0].pk}} for c in cats[:2]
]}}))
"""

# Rows on screen now, each with where it is and whether it can be seen.
SHOWN_ROWS = """
() => {
  const board = document.querySelector("[data-board]").getBoundingClientRect();
  return Array.from(document.querySelectorAll("[data-player-row]"))
    .filter((row) => row.checkVisibility())
    .map((row) => {
      const r = row.getBoundingClientRect();
      return { userId: Number(row.dataset.userId), rank: Number(row.dataset.rank),
        top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height,
        boardTop: board.top, boardBottom: board.bottom,
        name: row.querySelector(".row-name").textContent };
    });
}
"""


def make_party(site: Site, players: int) -> dict:
    ceremony_id = site.import_ceremony(CATEGORIES)
    tag = uuid.uuid4().hex[:8]
    code = PARTY.format(ceremony_id=ceremony_id, players=players, nasty=NASTY_NAME, tag=tag)
    return json.loads(site.shell(code).strip().splitlines()[-1])


def open_tv(chromium: Browser, site: Site, game_id: int) -> Page:
    context = chromium.new_context(viewport=TV)
    sign_in(context, site, "boss")
    page = context.new_page()
    page.clock.install()  # page turns are timers: the test moves time on
    page.goto(f"{site.url}/games/{game_id}/live?tv=1")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    return page


def reveal_two(site: Site, page: Page, party: dict) -> None:
    """Two winners, so scores spread out and the "just announced" banner takes
    its share of the screen, as on the night."""
    for count, category in enumerate(party["reveal"], start=1):
        site.api(
            "POST", f"/api/categories/{category['id']}/winner", {"nominationId": category["winner"]}
        )
        expect(page.locator("[data-progress]")).to_have_text(f"{count} of 3 revealed")
    expect(page.locator("[data-announce-box]")).to_be_visible()


def shown_rows(page: Page, screen: dict = TV) -> list[dict]:
    # Where rows rest, not where a reveal's moves are sliding them through.
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    rows = page.evaluate(SHOWN_ROWS)
    for row in rows:
        # Wholly on the screen and inside the board (nothing clipped), readable.
        assert row["top"] >= 0 and row["bottom"] <= screen["height"], row
        assert row["left"] >= 0 and row["right"] <= screen["width"], row
        assert row["boardTop"] - 0.5 <= row["top"] and row["bottom"] <= row["boardBottom"] + 0.5
        assert row["height"] >= MIN_ROW_VH / 100 * screen["height"] - 1, row
    return rows


def every_page(page: Page, players: int) -> list[list[dict]]:
    """The rows of each page, turning pages by moving the page's clock on
    until the board is back on its first page."""
    pages = [shown_rows(page)]
    more = page.locator("[data-tv-more]")
    if not more.is_visible():
        return pages
    total = int(MORE.match(more.inner_text()).group(3))
    for number in range(2, total + 1):
        page.clock.fast_forward(PAGE_MS)
        expect(page.locator("[data-board]")).to_have_attribute("data-tv-page", str(number))
        pages.append(shown_rows(page))
        expected_more = players - len(pages[-1])
        expect(more).to_have_text(f"+{expected_more} more · page {number} of {total}")
    page.clock.fast_forward(PAGE_MS)
    expect(page.locator("[data-board]")).to_have_attribute("data-tv-page", "1")
    return pages


def ranked(site: Site, game_id: int) -> list[int]:
    board = site.api("GET", f"/api/games/{game_id}/leaderboard")
    return [player["userId"] for player in board["players"]]


@pytest.mark.parametrize("players", [13, 50, 500])
def test_every_player_is_seen_on_a_1080p_tv(site: Site, chromium: Browser, players: int) -> None:
    party = make_party(site, players)
    page = open_tv(chromium, site, party["game"])
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        reveal_two(site, page, party)
        expect(page.locator("[data-player-row]")).to_have_count(players)
        pages = every_page(page, players)
        seen = [row["userId"] for rows in pages for row in rows]
        # Every ranked player on exactly one page, the pages in rank order.
        assert len(seen) == len(set(seen)) == players
        assert seen == ranked(site, party["game"])
        ranks = [row["rank"] for rows in pages for row in rows]
        assert ranks == sorted(ranks)

        more = page.locator("[data-tv-more]")
        if players == 13:
            # Few enough to fit: one screen, all of them, nothing to page.
            assert len(pages) == 1
            expect(more).to_be_hidden()
        else:
            per_page = len(pages[0])
            assert len(pages) == math.ceil(players / per_page) > 1
            assert all(len(rows) == per_page for rows in pages[:-1])
            expect(more).to_have_text(f"+{players - per_page} more · page 1 of {len(pages)}")
        # Names are text, never markup; the TV highlights nobody's own row.
        names = {row["name"] for rows in pages for row in rows}
        assert NASTY_NAME in names
        assert page.locator("[data-board] b, [data-board] i").count() == 0
        assert page.locator("[data-player-row].me, .podium-slot.me").count() == 0
        expect(page.locator("[data-podium]")).to_be_visible()

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"tv-{players}-players.png"))
        assert problems == []
    finally:
        page.context.close()


def test_tv_board_refits_when_the_window_changes(site: Site, chromium: Browser) -> None:
    """A smaller screen (a 720p TV) gets smaller pages, still all inside it."""
    party = make_party(site, 50)
    page = open_tv(chromium, site, party["game"])
    try:
        reveal_two(site, page, party)
        before = len(shown_rows(page))
        small = {"width": 1280, "height": 720}
        page.set_viewport_size(small)
        expect(page.locator("[data-tv-more]")).not_to_have_text(
            re.compile(rf"^\+{50 - before} more")
        )
        rows = shown_rows(page, small)
        assert 0 < len(rows) < before
        expect(page.locator("[data-tv-more]")).to_have_text(
            f"+{50 - len(rows)} more · page 1 of {math.ceil(50 / len(rows))}"
        )
    finally:
        page.context.close()
