"""One nominee's line of a ceremony page to (title, subtitle), as a person
filling in a ballot would write it.

The page's lines come in three shapes, told apart by how they begin (the
page's dash is an en dash, written — here):

- a film, in italics: `''Anora'' — Alex Coco, Samantha Quan, and Sean Baker, producers`
  → ("Anora", "Alex Coco, Samantha Quan, and Sean Baker"); the international
  feature's `''I'm Still Here'' (Brazil) in Portuguese` → ("I'm Still Here", "Brazil");
- a song, in quotes: `"El Mal" from ''Emilia Pérez'' — Music by Clément Ducol and
  Camille; Lyrics by Clément Ducol, Camille, and Jacques Audiard`
  → ("El Mal", "Emilia Pérez — Clément Ducol and Camille; Clément Ducol, …");
- a person: `Adrien Brody — ''The Brutalist'' as László Tóth` → ("Adrien Brody",
  "The Brutalist").

Credits lose their labels ("Screenplay by", "Production Design:"), the
source a screenplay is based on and the trailing ", producers".
"""

from __future__ import annotations

import re

from games.wikipedia.wikicode import Run

# The dash between the nominee and its credits: an en or em dash, or a
# hyphen with spaces round it; only outside italics (titles hold dashes).
SEPARATOR = re.compile(r"\s+[–—]\s*|\s*[–—]\s+|\s+-\s+")
QUOTES = '"“”'
SONG = re.compile(r"^[\"“](?P<title>.+?)[\"”]")
COUNTRY = re.compile(r"^\s*\((?P<country>[^)]+)\)")
# "Screenplay by", "Music and Lyrics by", "Written by", "Production Design:".
CREDIT_LABEL = re.compile(
    r"^(?:[A-Z][a-z]+(?:\s+(?:and|&)\s+[A-Z]?[a-z]+|\s+[a-z]+)*\s+by\s+"
    r"|[A-Z][A-Za-z]+(?:\s+[A-Za-z]+){0,3}\s*:\s*)"
)
BASED_ON = re.compile(r"[;,]?\s*\bbased on\b.*$", re.IGNORECASE)
PRODUCERS = re.compile(r",?\s*\b(?:executive\s+)?producers?\s*$", re.IGNORECASE)


class NomineeLineError(ValueError):
    """The line has no recognisable nominee; the message says why."""


def title_and_subtitle(runs: list[Run]) -> tuple[str, str]:
    lead, rest = _split_at_separator(runs)
    lead_text = _text(lead)
    if not lead_text:
        raise NomineeLineError("no nominee before the dash")
    if lead_text[0] in QUOTES:
        return _song(lead, lead_text, rest)
    first = next(run for run in lead if run.text.strip())
    if first.italic:
        return _film(lead, first, rest)
    films = [_clean(run.text) for run in rest if run.italic and run.text.strip()]
    return lead_text, ", ".join(films) if films else _credits(rest)


def _song(lead: list[Run], lead_text: str, rest: list[Run]) -> tuple[str, str]:
    match = SONG.match(lead_text)
    if not match or not match.group("title").strip():
        raise NomineeLineError("a song title's closing quote is missing")
    film = ", ".join(_clean(run.text) for run in lead if run.italic and run.text.strip())
    return _clean(match.group("title")), " — ".join(part for part in (film, _credits(rest)) if part)


def _film(lead: list[Run], title_run: Run, rest: list[Run]) -> tuple[str, str]:
    after = _text(lead[lead.index(title_run) + 1 :])
    country = COUNTRY.match(after)
    if country:
        return _clean(title_run.text), _clean(country.group("country"))
    return _clean(title_run.text), _credits(rest)


def _split_at_separator(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    for index, run in enumerate(runs):
        if run.italic:
            continue
        match = SEPARATOR.search(run.text)
        if match:
            before, after = run.text[: match.start()], run.text[match.end() :]
            lead = [*runs[:index], Run(before, False)]
            return lead, [Run(after, False), *runs[index + 1 :]]
    return runs, []


def _credits(runs: list[Run]) -> str:
    text = BASED_ON.sub("", _text(runs))
    parts = [CREDIT_LABEL.sub("", part.strip()) for part in text.split(";")]
    return PRODUCERS.sub("", "; ".join(part for part in parts if part)).strip(" ,;")


def _text(runs: list[Run]) -> str:
    return _clean("".join(run.text for run in runs))


def _clean(text: str) -> str:
    return " ".join(text.split()).strip(" ,;")
