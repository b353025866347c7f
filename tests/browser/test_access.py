"""Who sees which page: sign-in redirects, 403/404 pages, join errors, the
read-only picks page, the lock countdown, and a host who is not staff."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.browser.conftest import ARTIFACTS, PASSWORD, PHONE, Site, sign_in

pytestmark = pytest.mark.browser

CATEGORIES = [
    {
        "name": "Best Picture",
        "points": 5,
        "nominations": [{"title": "Anora"}, {"title": "Conclave"}],
    },
    {"name": "Best Score", "nominations": [{"title": "The Brutalist"}, {"title": "Wicked"}]},
]


@pytest.fixture(scope="module")
def ceremony(site: Site) -> int:
    return site.import_ceremony(CATEGORIES)


@pytest.fixture(scope="module")
def carol(site: Site) -> str:
    """A player who is not staff."""
    site.stack.create_user("carol", PASSWORD, display_name="Carol")
    return "carol"


@pytest.fixture
def context(chromium: Browser) -> BrowserContext:
    context = chromium.new_context(viewport=PHONE)
    yield context
    context.close()


def new_game(site: Site, ceremony: int, *, user: str = "boss", **fields: object) -> dict:
    return site.api(
        "POST", "/api/games", {"ceremonyId": ceremony, "name": "Party", **fields}, user=user
    )


def test_signed_out_visit_goes_to_sign_in_and_comes_back(
    site: Site, ceremony: int, context: BrowserContext
) -> None:
    game = new_game(site, ceremony)
    page = context.new_page()
    page.goto(f"{site.url}/games/{game['id']}/live")
    assert page.url == f"{site.url}/?next=/games/{game['id']}/live"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "signin-phone.png"), full_page=True)
    form = page.locator("#signin-form")
    form.get_by_label("Username").fill("boss")
    form.get_by_label("Password").fill("wrong password")
    form.get_by_role("button", name="Sign in").click()
    expect(form.locator("[data-form-error]")).to_have_text(re.compile("Wrong username or password"))
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.url}/games/{game['id']}/live")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    home = context.new_page()
    home.goto(f"{site.url}/")
    expect(home.locator(f'[data-game-id="{game["id"]}"]')).to_contain_text("Party")
    home.screenshot(path=str(ARTIFACTS / "home-phone.png"), full_page=True)

    # Signing out in one tab closes the other tab's socket with 4401, and
    # that tab goes to sign in (to come back to the board afterwards).
    home.get_by_role("button", name="Sign out").click()
    expect(home.locator("#signin-form")).to_be_visible()
    page.wait_for_url(f"{site.url}/?next=/games/{game['id']}/live")


def test_strangers_get_403_and_unknown_games_404(
    site: Site, ceremony: int, carol: str, context: BrowserContext
) -> None:
    game = new_game(site, ceremony)
    sign_in(context, site, carol)
    page = context.new_page()
    for path in ("live", "picks", "host"):
        response = page.goto(f"{site.url}/games/{game['id']}/{path}")
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text("Not your game")
    response = page.goto(f"{site.url}/games/999999/live")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Game not found")


def test_a_bad_join_code_says_so(
    site: Site, ceremony: int, carol: str, context: BrowserContext
) -> None:
    sign_in(context, site, carol)
    page = context.new_page()
    page.goto(f"{site.url}/join/ZZZZZZZZ")
    expect(page.locator("[data-form-error]")).to_have_text(re.compile("No game has this code"))
    expect(page.locator("[data-join-home]")).to_be_visible()


def test_a_locked_game_has_read_only_picks(
    site: Site, ceremony: int, carol: str, context: BrowserContext
) -> None:
    game = new_game(site, ceremony)
    site.api("POST", "/api/games/join", {"accessCode": game["accessCode"]}, user=carol)
    site.api("PATCH", f"/api/games/{game['id']}", {"status": "LIVE"})
    sign_in(context, site, carol)
    page = context.new_page()
    page.goto(f"{site.url}/games/{game['id']}/picks")
    expect(page.locator("[data-locked-note]")).to_be_visible()
    cards = page.locator("[data-nominees] .nominee")
    expect(cards).to_have_count(2)
    for index in range(2):
        expect(cards.nth(index)).to_be_disabled()
    expect(page.locator("[data-picked-count]")).to_have_text("0 of 2 picked")
    expect(page.locator("[data-countdown]")).to_have_text("Picks locked")

    # Carol has no picks, so the board leaves her out and says so.
    page.goto(f"{site.url}/games/{game['id']}/live")
    expect(page.locator("[data-player-row]")).to_have_count(0)
    expect(page.locator("[data-incomplete]")).to_have_text(
        "2 players have not finished their picks and are not ranked."
    )


def test_the_countdown_warns_in_the_last_half_hour(
    site: Site, ceremony: int, carol: str, context: BrowserContext
) -> None:
    lock_at = (datetime.now(UTC) + timedelta(minutes=20)).isoformat().replace("+00:00", "Z")
    game = new_game(site, ceremony, picksLockAt=lock_at)
    site.api("POST", "/api/games/join", {"accessCode": game["accessCode"]}, user=carol)
    sign_in(context, site, carol)
    page = context.new_page()
    page.goto(f"{site.url}/games/{game['id']}/picks")
    countdown = page.locator("[data-countdown]")
    expect(countdown).to_have_text(re.compile(r"^Picks lock in 1\dm \d\ds$"))
    expect(countdown).to_have_class(re.compile(r"\bwarning\b"))
    page.locator("[data-nominees] .nominee", has_text="Conclave").click()
    expect(page.locator("[data-save-state]")).to_have_text("Saved ✓")
    expect(page.locator("[data-picked-count]")).to_have_text("1 of 2 picked")


def test_a_host_who_is_not_staff_can_lock_but_not_mark_winners(
    site: Site, ceremony: int, carol: str, context: BrowserContext
) -> None:
    game = new_game(site, ceremony, user=carol)
    sign_in(context, site, carol)
    page = context.new_page()
    page.goto(f"{site.url}/games/{game['id']}/host")
    expect(page.locator("[data-staff-note]")).to_be_visible()
    expect(page.get_by_role("button", name="Mark winner")).to_have_count(0)
    expect(page.locator("[data-access-code]")).to_have_text(game["accessCode"])
    expect(page.locator("[data-join-link]")).to_have_text(f"{site.url}/join/{game['accessCode']}")
    page.get_by_role("button", name="Lock picks now").click()
    expect(page.locator("[data-game-status]")).to_have_text("Picks locked")
    expect(page.get_by_role("button", name="Lock picks now")).to_be_hidden()
    assert site.api("GET", f"/api/games/{game['id']}", user=carol)["status"] == "LIVE"


def test_staff_mark_a_winner_and_undo_it_on_the_host_page(
    site: Site, context: BrowserContext
) -> None:
    ceremony = site.import_ceremony(CATEGORIES)
    game = new_game(site, ceremony)
    sign_in(context, site, "boss")
    page = context.new_page()
    page.goto(f"{site.url}/games/{game['id']}/host")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    card = page.locator("[data-nominees] .nominee", has_text="Conclave")
    card.get_by_role("button", name="Mark winner").click()
    card.get_by_role("button", name="Cancel").click()
    expect(card.get_by_role("button", name="Mark winner")).to_be_visible()
    card.get_by_role("button", name="Mark winner").click()
    card.get_by_role("button", name="Confirm: Conclave wins").click()
    expect(card.locator(".badge-gold")).to_have_text("Winner")
    expect(page.locator("[data-category-pill]").first).to_have_text("✓ Best Picture")
    expect(page.locator("[data-game-status]")).to_have_text("Picks locked")
    category = site.api("GET", f"/api/ceremonies/{ceremony}")["categories"][0]
    assert category["isRevealed"] is True

    page.get_by_role("button", name="Undo winner").click()
    page.get_by_role("button", name="Confirm undo").click()
    expect(card.get_by_role("button", name="Mark winner")).to_be_visible()
    expect(page.locator("[data-category-pill]").first).to_have_text("Best Picture")
    category = site.api("GET", f"/api/ceremonies/{ceremony}")["categories"][0]
    assert category["isRevealed"] is False and category["winnerId"] is None


# A WebSocket stand-in the test drives by hand: open, deliver frames, close.
FAKE_SOCKET = """
window.sockets = [];
window.WebSocket = class {
  static OPEN = 1;
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() {}
  recv(frame) { this.readyState = 1; this.onmessage({ data: JSON.stringify(frame) }); }
  drop(code) { this.readyState = 3; this.onclose({ code }); }
};
window.events = [];
window.states = [];
window.live = new LiveSocket({
  onEvent: (frame) => events.push(frame),
  onState: (state) => states.push(state),
});
live.follow(7, 10);
"""


def test_the_socket_client_resumes_by_seq_and_backs_off(site: Site, context: BrowserContext):
    page = context.new_page()
    page.goto(f"{site.url}/")  # any page of the site: the test brings its own socket
    page.add_script_tag(url="/static/js/socket.js")
    page.evaluate(FAKE_SOCKET)
    js = page.evaluate
    assert js("sockets.length") == 1 and js("states") == ["connecting"]
    assert js("sockets[0].url").endswith("/ws/")

    js("sockets[0].recv({type: 'hello', userId: 1})")
    assert js("states.at(-1)") == "live"
    assert js("sockets[0].sent") == [{"type": "join", "gameId": 7, "lastSeq": 10}]

    def deliver(frame: str) -> None:
        js(f"sockets.at(-1).recv({frame})")

    deliver("{type: 'joined', gameId: 7, seq: 12}")
    deliver("{type: 'leaderboard:update', gameId: 7, seq: 12}")  # already covered
    deliver("{type: 'leaderboard:update', gameId: 7, seq: 13}")
    deliver("{type: 'game:status', gameId: 7, seq: 15}")  # 14 is missing: resume
    deliver("{type: 'leaderboard:update', gameId: 7, seq: 16}")  # resuming: dropped
    assert js("sockets[0].sent.at(-1)") == {"type": "join", "gameId": 7, "lastSeq": 13}
    deliver("{type: 'joined', gameId: 7, seq: 16}")
    deliver("{type: 'reaction:broadcast', gameId: 7, reactions: []}")
    deliver("{type: 'leaderboard:update', gameId: 8, seq: 1}")  # not followed
    deliver("{type: 'leaderboard:update', gameId: 7, seq: 17}")
    assert js("events.map(e => e.type + ':' + (e.seq ?? '-'))") == [
        "joined:12",
        "leaderboard:update:13",
        "joined:16",
        "reaction:broadcast:-",
        "leaderboard:update:17",
    ]

    # A dropped connection retries after 0.5-1 s, then 1-2 s (jittered backoff).
    js("sockets.at(-1).drop(1006)")
    assert js("states.at(-1)") == "connecting" and js("sockets.length") == 1
    page.wait_for_timeout(1100)
    assert js("sockets.length") == 2
    js("sockets.at(-1).drop(1006)")
    page.wait_for_timeout(900)
    assert js("sockets.length") == 2
    page.wait_for_timeout(1300)
    assert js("sockets.length") == 3
    # Back: it joins again from the last seq it applied.
    js("sockets.at(-1).recv({type: 'hello', userId: 1})")
    assert js("sockets.at(-1).sent") == [{"type": "join", "gameId": 7, "lastSeq": 17}]

    # 1012 (server restart) reconnects at once; 4401 goes to sign in.
    js("sockets.at(-1).drop(1012)")
    assert js("sockets.length") == 4
    js("sockets.at(-1).recv({type: 'hello', userId: 1})")
    with page.expect_navigation():
        js("sockets.at(-1).drop(4401)")
    assert page.url == f"{site.url}/?next=/"
