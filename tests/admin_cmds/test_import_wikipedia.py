"""Importing a ceremony from its Wikipedia page (games.wikipedia and
`manage.py import_wikipedia`): the parser on saved pages of both table
layouts, the fetch through a local stand-in for the MediaWiki API, and the
command. No test needs the internet."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command

from games.errors import ImportInvalid
from games.models import Category, Ceremony, Nomination
from games.wikipedia import ceremony_from_url, ceremony_from_wikitext
from games.wikipedia.fetch import USER_AGENT, page_from_url
from games.wikipedia.parse import document_from_wikitext

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wikipedia"
RECENT = FIXTURES / "96th_Academy_Awards.wikitext"  # two categories per row
OLDER = FIXTURES / "72nd_Academy_Awards.wikitext"  # one category per row


def wikitext(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def by_name(data: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {
        category["name"]: [(n["title"], n["subtitle"]) for n in category["nominations"]]
        for category in data["categories"]
    }


# --- a local stand-in for the MediaWiki API ------------------------------------


class StandInWikipedia:
    """`/<lang>/w/api.php?action=parse&page=…`: each title's wikitext, or a
    misbehaviour for the special titles; records every request."""

    SLOW, DRIBBLE, BROKEN, HUGE, REDIRECT = "Slow", "Dribble", "Broken", "Huge", "Redirect"

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        self.requests: list[dict[str, Any]] = []
        self.delay = 2.0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{{lang}}/w/api.php"

    def start(self) -> StandInWikipedia:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        self.requests.append(
            {"path": parts.path, "query": query, "user_agent": handler.headers["User-Agent"]}
        )
        title = query.get("page", "")
        if title == self.SLOW:
            time.sleep(self.delay)
        if title == self.BROKEN:
            return self._send(handler, 503, b"upstream down")
        if title == self.REDIRECT:
            handler.send_response(302)
            handler.send_header("Location", "http://127.0.0.1:9/elsewhere")
            handler.end_headers()
            return None
        if title == self.HUGE:
            return self._send(handler, 200, b'{"parse": {"wikitext": "' + b"x" * 5000 + b'"}}')
        if title == self.DRIBBLE:
            return self._dribble(handler)
        if title not in self.pages:
            body = {
                "error": {"code": "missingtitle", "info": "The page you specified doesn't exist."}
            }
            return self._send(handler, 200, json.dumps(body).encode())
        body = {"parse": {"title": title, "pageid": 1, "wikitext": self.pages[title]}}
        return self._send(handler, 200, json.dumps(body).encode())

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _dribble(self, handler: BaseHTTPRequestHandler) -> None:
        """A byte every 0.1 s: each read is quick, the whole answer is not."""
        body = b'{"parse": {"wikitext": "' + b"y" * 40 + b'"}}'
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            for byte in body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass  # the client gave up, as it should


@pytest.fixture
def wikipedia(settings) -> Iterator[StandInWikipedia]:
    stand_in = StandInWikipedia(
        {"96th Academy Awards": wikitext(RECENT), "72nd Academy Awards": wikitext(OLDER)}
    ).start()
    settings.WIKIPEDIA_API_URL = stand_in.api_url
    settings.WIKIPEDIA_TIMEOUT = 0.5
    settings.WIKIPEDIA_MAX_BYTES = 4096
    try:
        yield stand_in
    finally:
        stand_in.stop()


# --- the parser: the recent two-per-row layout -----------------------------------


def test_recent_page_reads_every_category_in_page_order() -> None:
    data = ceremony_from_wikitext(wikitext(RECENT))
    assert data["name"] == "96th Academy Awards"
    assert data["date"].isoformat() == "2024-03-10"
    names = [category["name"] for category in data["categories"]]
    assert len(names) == 23
    # Row by row, left then right; Visual Effects alone on the last row.
    assert names[:4] == ["Best Picture", "Best Director", "Best Actor", "Best Actress"]
    assert names[-3:] == ["Best Costume Design", "Best Film Editing", "Best Visual Effects"]
    assert all(category["points"] == 1 for category in data["categories"])
    assert sum(len(category["nominations"]) for category in data["categories"]) == 120
    assert all(
        nomination["imageUrl"] is None
        for category in data["categories"]
        for nomination in category["nominations"]
    )


def test_recent_page_maps_title_and_subtitle_per_kind_of_category() -> None:
    categories = by_name(ceremony_from_wikitext(wikitext(RECENT)))
    # Film, then its credits without ", producers".
    assert ("Oppenheimer", "Emma Thomas, Charles Roven, and Christopher Nolan") in categories[
        "Best Picture"
    ]
    assert ("The Holdovers", "Mark Johnson") in categories["Best Picture"]
    # Person, then the film (not the role played).
    assert ("Christopher Nolan", "Oppenheimer") in categories["Best Director"]
    assert ("Cillian Murphy", "Oppenheimer") in categories["Best Actor"]
    assert ("Da'Vine Joy Randolph", "The Holdovers") in categories["Best Supporting Actress"]
    assert ("Emily Blunt", "Oppenheimer") in categories["Best Supporting Actress"]
    # Screenplays: labels and the source they are based on dropped.
    assert ("American Fiction", "Cord Jefferson") in categories["Best Adapted Screenplay"]
    assert ("Oppenheimer", "Christopher Nolan") in categories["Best Adapted Screenplay"]
    assert ("Anatomy of a Fall", "Justine Triet and Arthur Harari") in categories[
        "Best Original Screenplay"
    ]
    # International feature: the country, not the language.
    assert ("The Zone of Interest", "United Kingdom") in categories[
        "Best International Feature Film"
    ]
    assert ("Io capitano", "Italy") in categories["Best International Feature Film"]
    # Songs: the song, then film — writers.
    songs = categories["Best Original Song"]
    assert ("What Was I Made For?", "Barbie — Billie Eilish and Finneas O'Connell") in songs
    assert ("The Fire Inside", "Flamin' Hot — Diane Warren") in songs
    assert (
        "Wahzhazhe (A Song for My People)",
        "Killers of the Flower Moon — Scott George",
    ) in songs
    # Documentaries and shorts: film, then its makers.
    assert ("20 Days in Mariupol", "Mstyslav Chernov, Michelle Mizner, and Raney Aronson-Rath") in (
        categories["Best Documentary Feature Film"]
    )
    assert ("The Last Repair Shop", "Ben Proudfoot and Kris Bowers") in categories[
        "Best Documentary Short Film"
    ]
    assert (
        "War Is Over! Inspired by the Music of John & Yoko",
        "Dave Mullins and Brad Booker",
    ) in (categories["Best Animated Short Film"])
    # Crafts: labels dropped; a dash inside an italic title is part of it.
    assert ("Poor Things", "James Price and Shona Heath; Zsuzsa Mihalek") in categories[
        "Best Production Design"
    ]
    assert (
        "Mission: Impossible – Dead Reckoning Part One",
        "Chris Munro, James H. Mather, Chris Burdon, and Mark Taylor",
    ) in categories["Best Sound"]
    assert ("Oppenheimer", "Hoyte van Hoytema") in categories["Best Cinematography"]


def test_winner_marks_are_dropped_and_do_not_decide_the_order() -> None:
    categories = by_name(ceremony_from_wikitext(wikitext(RECENT)))
    # The page lists Oppenheimer first with a double dagger; the import
    # orders the nominees alphabetically (leading articles ignored).
    assert [title for title, _ in categories["Best Picture"]] == [
        "American Fiction",
        "Anatomy of a Fall",
        "Barbie",
        "The Holdovers",
        "Killers of the Flower Moon",
        "Maestro",
        "Oppenheimer",
        "Past Lives",
        "Poor Things",
        "The Zone of Interest",
    ]
    for nominations in categories.values():
        for title, subtitle in nominations:
            assert "‡" not in title + subtitle and "'''" not in title + subtitle


def test_a_page_before_the_ceremony_keeps_the_page_order() -> None:
    # Before the night the page has no marks and every nominee at one level.
    upcoming = re.sub(r"\s*\{\{double-dagger\}\}", "", wikitext(RECENT))
    # Unbold the winners: people (`'''Name, dash, ''Film'''''`), the song, then films.
    upcoming = re.sub(r"\* '''(.*?) – ''(.*?)'''''", r"* \1 – ''\2''", upcoming)
    upcoming = re.sub(r"\* '''(\".*?\" from ''.*?)'''''", r"* \1''", upcoming)
    upcoming = upcoming.replace("'''''", "''").replace("\n** ", "\n* ")
    table = upcoming.split('{| class="wikitable" role="presentation"')[1].split("|}")[0]
    assert "'''" not in table and "**" not in table
    categories = by_name(ceremony_from_wikitext(upcoming))
    assert [title for title, _ in categories["Best Picture"]][:3] == [
        "Oppenheimer",
        "American Fiction",
        "Anatomy of a Fall",
    ]
    assert categories["Best Actor"][0] == ("Cillian Murphy", "Oppenheimer")


# --- the parser: the older one-per-row layout ------------------------------------


def test_older_page_reads_one_category_per_row() -> None:
    data = ceremony_from_wikitext(wikitext(OLDER))
    assert data["name"] == "72nd Academy Awards"
    assert data["date"].isoformat() == "2000-03-26"
    categories = by_name(data)
    assert list(categories) == [
        "Best Picture",
        "Best Director",
        "Best Actor",
        "Best Supporting Actress",
        "Best Foreign Language Film",
        "Best Original Song",
        "Best Documentary Feature",
        "Best Visual Effects",
    ]
    # Headers are plain links here, dashes are &ndash; and winners only bold.
    assert ("American Beauty", "Bruce Cohen and Dan Jinks") in categories["Best Picture"]
    assert ("Sam Mendes", "American Beauty") in categories["Best Director"]
    assert ("Angelina Jolie", "Girl, Interrupted") in categories["Best Supporting Actress"]
    assert ("All About My Mother", "Spain") in categories["Best Foreign Language Film"]
    assert ("You'll Be in My Heart", "Tarzan — Phil Collins") in categories["Best Original Song"]
    assert (
        "Star Wars: Episode I – The Phantom Menace",
        "John Knoll, Dennis Muren, Scott Squires and Rob Coleman",
    ) in categories["Best Visual Effects"]
    # The bold winner's bullet sits above the others: the order is alphabetical.
    assert categories["Best Director"][0][0] == "Lasse Hallström"


# --- the parser: what it refuses -----------------------------------------------------


def refusal(text: str) -> str:
    with pytest.raises(ImportInvalid) as caught:
        ceremony_from_wikitext(text)
    assert caught.value.code == "IMPORT_INVALID" and caught.value.status == 400
    return caught.value.message


TABLE = """{{Infobox award event
| name = Test Awards
| date = %(date)s
}}
{| class="wikitable"
|-
! {{Award category|#EEDD82|[[Academy Award for Best Picture|Best Picture]]}}
! {{Award category|#EEDD82|[[Academy Award for Best Sound|Best Sound]]}}
|-
| valign="top" |
%(left)s
| valign="top" |
%(right)s
|}
"""


def page(
    left: str = "* ''Anora'' – Sean Baker", right: str = "* ''Wicked'' – Someone", date: str = ""
) -> str:
    return TABLE % {"left": left, "right": right, "date": date or "March 2, 2025"}


def test_a_well_formed_small_page_is_read() -> None:
    assert by_name(ceremony_from_wikitext(page())) == {
        "Best Picture": [("Anora", "Sean Baker")],
        "Best Sound": [("Wicked", "Someone")],
    }


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("* {{sortname|Sean|Baker}} – ''[[Anora]]''<ref>A note.</ref>", ("Sean Baker", "Anora")),
        ("* ''{{ill|Flow|lv|Straume}}'' – [[Gints Zilbalodis]]", ("Flow", "Gints Zilbalodis")),
        ("* ''[[Anora]]'' – <!-- hidden --> Alex Coco, producer ‡", ("Anora", "Alex Coco")),
        (
            "* \"[[Never Too Late]]\" from ''[[Elton John: Never Too Late]]'' – "
            "Music by [[Elton John]]; Lyrics by [[Bernie Taupin]]",
            ("Never Too Late", "Elton John: Never Too Late — Elton John; Bernie Taupin"),
        ),
        ("* [[Quincy Jones]]", ("Quincy Jones", "")),
        ("* ''[[Wicked (2024 film)|Wicked]]''", ("Wicked", "")),
        ("* ''[[Anora]]'' &ndash; [[Sean Baker]]", ("Anora", "Sean Baker")),
    ],
)
def test_nominee_lines_of_every_shape(line: str, expected: tuple[str, str]) -> None:
    assert by_name(ceremony_from_wikitext(page(left=line)))["Best Picture"] == [expected]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "wikitext: empty"),
        ("The '''1st Academy Awards''' were held in 1929.", "no table of {{Award category}}"),
        (page(right="No bullets here."), "Best Sound: no nominees"),
        (page(left="* – Sean Baker"), "Best Picture, nominee 1"),
        (page(left="* \"Unclosed from ''Film'' – X"), "closing quote"),
        (page(date="sometime in spring"), "infobox date: cannot read 'sometime in spring'"),
        (page(date="{{Start date|2025|13|2}}"), "infobox date"),
        (page(left="* ''" + "A" * 301 + "''"), "categories[0].nominations[0].title (Best Picture)"),
        (
            page().replace("[[Academy Award for Best Sound|Best Sound]]", "Best Picture"),
            "'Best Picture' appears twice",
        ),
        (
            page().replace("| valign=\"top\" |\n* ''Wicked'' – Someone\n", ""),
            "table 1, row 2: 1 nominee cell(s) under 2 category header(s)",
        ),
    ],
)
def test_bad_wikitext_is_refused_naming_the_part(text: str, named: str) -> None:
    assert named in refusal(text)


def test_the_page_title_names_a_ceremony_whose_infobox_does_not() -> None:
    text = page().replace("| name = Test Awards\n", "")
    assert ceremony_from_wikitext(text, page_title="Test Awards 2")["name"] == "Test Awards 2"
    assert "name: the infobox has no name" in refusal(text)


def test_document_is_in_the_ceremony_file_format() -> None:
    document = document_from_wikitext(page())
    assert document == {
        "name": "Test Awards",
        "date": "2025-03-02",
        "categories": [
            {
                "name": "Best Picture",
                "points": 1,
                "nominations": [{"title": "Anora", "subtitle": "Sean Baker", "imageUrl": None}],
            },
            {
                "name": "Best Sound",
                "points": 1,
                "nominations": [{"title": "Wicked", "subtitle": "Someone", "imageUrl": None}],
            },
        ],
    }


# --- the fetch ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://en.wikipedia.org/wiki/96th_Academy_Awards",  # not https
        "https://en.wikipedia.org.evil.example/wiki/96th_Academy_Awards",
        "https://evil.example/wiki/96th_Academy_Awards",
        "https://en.wikipedia.org:8443/wiki/96th_Academy_Awards",
        "https://user@en.wikipedia.org/wiki/96th_Academy_Awards",
        "https://en.wikipedia.org/w/index.php?title=96th_Academy_Awards",
        "https://en.wikipedia.org/wiki/",
        "https://127.0.0.1/wiki/96th_Academy_Awards",
        "file:///etc/passwd",
        "not a url",
    ],
)
def test_only_wikipedia_article_urls_are_accepted(url: str, wikipedia: StandInWikipedia) -> None:
    with pytest.raises(ImportInvalid) as caught:
        ceremony_from_url(url)
    assert caught.value.message.startswith("wikipediaUrl: must be a Wikipedia article URL")
    assert wikipedia.requests == []  # refused before any request


def test_article_urls_give_language_and_title() -> None:
    page_ = page_from_url("https://de.m.wikipedia.org/wiki/Oscarverleihung_2024#Preise")
    assert (page_.lang, page_.title) == ("de", "Oscarverleihung 2024")
    assert page_from_url("https://en.wikipedia.org/wiki/M%C3%A9lo").title == "Mélo"


def test_fetch_calls_the_mediawiki_api_and_parses_the_page(settings, wikipedia) -> None:
    settings.WIKIPEDIA_MAX_BYTES = 1024 * 1024
    data = ceremony_from_url("https://en.wikipedia.org/wiki/96th_Academy_Awards")
    assert data["name"] == "96th Academy Awards" and len(data["categories"]) == 23
    [request] = wikipedia.requests
    assert request["path"] == "/en/w/api.php"
    assert request["query"] == {
        "action": "parse",
        "page": "96th Academy Awards",
        "prop": "wikitext",
        "redirects": "1",
        "format": "json",
        "formatversion": "2",
    }
    assert request["user_agent"] == USER_AGENT


@pytest.mark.parametrize(
    ("title", "message"),
    [
        ("Slow", "wikipediaUrl: Wikipedia did not answer within 0.5 seconds"),
        ("Dribble", "wikipediaUrl: Wikipedia did not answer within 0.5 seconds"),
        ("Broken", "wikipediaUrl: Wikipedia answered HTTP 503"),
        ("Redirect", "wikipediaUrl: Wikipedia answered HTTP 302"),
        ("Huge", "wikipediaUrl: the answer is larger than 4096 bytes"),
        ("No such page", "wikipediaUrl: Wikipedia: The page you specified doesn't exist."),
    ],
)
def test_fetch_failures_are_import_invalid(title: str, message: str, wikipedia) -> None:
    started = time.monotonic()
    with pytest.raises(ImportInvalid) as caught:
        ceremony_from_url(f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}")
    assert caught.value.message.startswith(message)
    # The time limit holds for the whole answer, not only for each read.
    assert time.monotonic() - started < 1.5


def test_an_unreachable_api_is_import_invalid(settings) -> None:
    settings.WIKIPEDIA_API_URL = "http://127.0.0.1:9/{lang}/w/api.php"  # discard: refused
    with pytest.raises(ImportInvalid) as caught:
        ceremony_from_url("https://en.wikipedia.org/wiki/96th_Academy_Awards")
    assert caught.value.message.startswith("wikipediaUrl: Wikipedia could not be reached")


# --- the command --------------------------------------------------------------------------


def run(*args: str) -> tuple[str, str]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("import_wikipedia", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_preview_prints_the_json_and_writes_nothing() -> None:
    out, _ = run(str(RECENT), "--preview")
    document = json.loads(out)
    assert document["name"] == "96th Academy Awards" and document["date"] == "2024-03-10"
    assert len(document["categories"]) == 23
    assert Ceremony.objects.count() == 0 and Nomination.objects.count() == 0


@pytest.mark.django_db
def test_import_prints_the_id_alone_and_sets_no_winner() -> None:
    out, err = run(str(RECENT))
    ceremony = Ceremony.objects.get()
    assert out.strip() == str(ceremony.pk)
    assert "23 categories" in err
    assert ceremony.categories.count() == 23
    assert Nomination.objects.filter(category__ceremony=ceremony).count() == 120
    # A prediction game: nothing revealed, whatever the page marked.
    assert not Category.objects.filter(winner__isnull=False).exists()
    assert not Category.objects.filter(revealed_at__isnull=False).exists()
    picture = ceremony.categories.get(order=1)
    assert picture.name == "Best Picture" and picture.points == 1
    assert list(picture.nominations.values_list("title", flat=True)[:2]) == [
        "American Fiction",
        "Anatomy of a Fall",
    ]


@pytest.mark.django_db
def test_reimporting_the_same_ceremony_is_an_error() -> None:
    run(str(OLDER))
    with pytest.raises(CommandError, match=r"72nd Academy Awards.*already exists"):
        run(str(OLDER))
    assert Ceremony.objects.count() == 1


@pytest.mark.django_db
def test_command_fetches_a_url_through_the_api(wikipedia, settings) -> None:
    settings.WIKIPEDIA_MAX_BYTES = 1024 * 1024
    out, _ = run("https://en.wikipedia.org/wiki/72nd_Academy_Awards")
    assert Ceremony.objects.get(pk=int(out)).name == "72nd Academy Awards"


@pytest.mark.django_db
def test_command_errors_name_the_part_and_write_nothing(tmp_path, wikipedia) -> None:
    bad = tmp_path / "bad.wikitext"
    bad.write_text(page(right="No bullets here."), encoding="utf-8")
    with pytest.raises(CommandError, match="Best Sound: no nominees"):
        run(str(bad))
    with pytest.raises(CommandError, match="no such file"):
        run(str(tmp_path / "missing.wikitext"))
    with pytest.raises(CommandError, match="must be a Wikipedia article URL"):
        run("https://example.com/wiki/96th_Academy_Awards")
    with pytest.raises(CommandError, match="did not answer within"):
        run("https://en.wikipedia.org/wiki/Slow")
    assert Ceremony.objects.count() == 0


# --- the admin page (the browser test drives it end to end) ------------------------

ADMIN_IMPORT = "/admin/games/ceremony/import-wikipedia/"


def test_admin_page_is_for_staff_who_may_add_ceremonies(client, db) -> None:
    from tests.factories import UserFactory

    assert client.get(ADMIN_IMPORT).status_code == 302  # to the admin's login
    client.force_login(UserFactory(is_staff=True))  # staff, but no add permission
    assert client.post(ADMIN_IMPORT, {"wikitext": wikitext(OLDER)}).status_code == 403
    assert Ceremony.objects.count() == 0


def test_admin_preview_writes_nothing_and_import_writes_the_preview(staff_client) -> None:
    response = staff_client.post(ADMIN_IMPORT, {"wikitext": wikitext(OLDER), "_preview": "1"})
    assert response.status_code == 200
    document = json.loads(response.context["preview_json"])
    assert document["name"] == "72nd Academy Awards" and len(document["categories"]) == 8
    assert b"You&#x27;ll Be in My Heart" in response.content
    assert Ceremony.objects.count() == 0

    response = staff_client.post(ADMIN_IMPORT, {"document": json.dumps(document), "_import": "1"})
    ceremony = Ceremony.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/games/ceremony/{ceremony.pk}/change/"
    assert ceremony.categories.count() == 8
    assert not Category.objects.filter(winner__isnull=False).exists()


def test_admin_import_validates_the_posted_document_again(staff_client) -> None:
    document = document_from_wikitext(page())
    document["categories"][0]["nominations"] = []
    response = staff_client.post(
        ADMIN_IMPORT, {"document": json.dumps(document), "_import": "1"}, follow=True
    )
    assert "categories[0].nominations: must not be empty" in response.content.decode()
    assert Ceremony.objects.count() == 0
