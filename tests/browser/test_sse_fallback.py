"""The live board in real Chromium with WebSockets blocked: after a few
failed attempts it falls back to Server-Sent Events, shows "live" (read-only:
no reactions), and a reveal through the API updates the board; once
WebSockets work again it switches back to one (reactions return)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

from tests.browser.conftest import PHONE, Site, sign_in

pytestmark = pytest.mark.browser

CATEGORIES = [
    {
        "name": "Best Picture",
        "points": 2,
        "nominations": [{"title": "Anora"}, {"title": "Conclave"}],
    },
    {
        "name": "Best Director",
        "points": 3,
        "nominations": [{"title": "Brady Corbet"}, {"title": "Sean Baker"}],
    },
]

# The boss hosts; the guest picks the first nominee everywhere, the boss the second.
PARTY = """
import json
from accounts.models import User
from games.models import Category
from games.services import game_create, game_join, pick_submit
boss = User.objects.get(username="boss")
guest = User.objects.create_user("sse-guest", password="x-unused-x", display_name="Guest")
game = game_create(host=boss, ceremony_id={ceremony_id}, name="SSE party")
game_join(user=guest, access_code=game.access_code)
cats = list(Category.objects.filter(ceremony_id={ceremony_id}).order_by("order"))
for cat in cats:
    noms = list(cat.nominations.order_by("order"))
    pick_submit(game_id=game.pk, user=guest, category_id=cat.pk, nomination_id=noms[0].pk)
    pick_submit(game_id=game.pk, user=boss, category_id=cat.pk, nomination_id=noms[1].pk)
print(json.dumps({{"game": game.pk, "boss": boss.pk, "guest": guest.pk,
    "categories": [[c.pk, [n.pk for n in c.nominations.order_by("order")]] for c in cats]}}))
"""

# The page tries the WebSocket again this often while on SSE (60 s in production).
PROBE_MS = 2000


def row(page: Page, user_id: int):
    return page.locator(f'[data-player-row][data-user-id="{user_id}"]')


def test_sse_fallback_updates_the_board_with_websockets_blocked(
    site: Site, chromium: Browser
) -> None:
    ceremony_id = site.import_ceremony(CATEGORIES)
    party = json.loads(site.shell(PARTY.format(ceremony_id=ceremony_id)).strip().splitlines()[-1])
    game_id, guest_id, boss_id = party["game"], party["guest"], party["boss"]
    (picture, picture_noms), (director, director_noms) = party["categories"]

    context = chromium.new_context(viewport=PHONE)
    blocked = {"on": True}
    attempts = {"blocked": 0, "through": 0}

    def route(ws: WebSocketRoute) -> None:
        # A network that lets no WebSocket through: each one closes at once.
        if blocked["on"]:
            attempts["blocked"] += 1
            ws.close()
        else:
            attempts["through"] += 1
            ws.connect_to_server()

    context.route_web_socket(re.compile(r"/ws/"), route)
    context.add_init_script(f"window.envelopeLiveOptions = {{wsRetryOnSseMs: {PROBE_MS}}};")
    streams: list[str] = []
    context.on("request", lambda r: streams.append(r.url) if "/events" in r.url else None)
    try:
        sign_in(context, site, "boss")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{site.url}/games/{game_id}/live")
        connection = page.locator("[data-connection]")
        # Four refused sockets (about 7 s of backoff) while HTTP works, then the stream.
        expect(connection).to_have_attribute("data-connection", "live", timeout=20000)
        assert attempts["blocked"] >= 4 and attempts["through"] == 0, attempts
        assert any(f"/api/games/{game_id}/events?lastSeq=" in url for url in streams), streams
        # Read-only: reactions cannot go over the stream.
        expect(page.locator('[data-reaction="🔥"]').first).to_be_disabled()
        expect(page.locator("[data-watchers-count]")).to_have_text(re.compile(r"^1 watching$"))

        site.api("POST", f"/api/categories/{picture}/winner", {"nominationId": picture_noms[0]})
        expect(row(page, guest_id).locator("[data-score]")).to_have_text("2", timeout=10000)
        expect(row(page, guest_id)).to_have_attribute("data-rank", "1")
        expect(row(page, boss_id).locator("[data-score]")).to_have_text("0")
        expect(page.locator("[data-just-announced]")).to_have_text("Best Picture — Anora")
        expect(page.locator("[data-progress]")).to_have_text("1 of 2 revealed")

        # WebSockets work again: the next try switches back, reactions return.
        blocked["on"] = False
        expect(page.locator('[data-reaction="🔥"]').first).to_be_enabled(timeout=PROBE_MS * 5)
        assert attempts["through"] >= 1, attempts
        expect(connection).to_have_attribute("data-connection", "live")
        site.api("POST", f"/api/categories/{director}/winner", {"nominationId": director_noms[1]})
        expect(row(page, boss_id).locator("[data-score]")).to_have_text("3", timeout=10000)
        expect(row(page, boss_id)).to_have_attribute("data-rank", "1")
        expect(page.locator("[data-progress]")).to_have_text("2 of 2 revealed")
        assert errors == [], errors
    finally:
        context.close()
