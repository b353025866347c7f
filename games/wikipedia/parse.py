"""An Academy Awards ceremony page's wikitext to a ceremony document.

What is read:

- the name: the infobox's `name`, else the page's title;
- the date: the infobox's `date` (`{{Start date|2024|3|10}}`, "March 10, 2024"
  or "10 March 2024"); none is allowed (the ceremony file's date is optional);
- the categories: every `{| class="wikitable"` whose header cells hold
  `{{Award category|…}}` (or a link to an "Academy Award for …" page). Header
  cells name the categories; the data cells under them, matched by position,
  hold one bullet (`*`, `**`) per nominee. Recent pages put two categories in
  a row, older ones one; both read the same way, row by row, left to right.

The page lists the winner first and marks it (bold, {{double-dagger}}). The
import is for a *prediction* game, so the marks are dropped and such a
category's nominees are put in alphabetical order: neither a mark nor a
position gives the winner away, and nothing is revealed. Every category is
worth 1 point; staff change points afterwards in the admin.

The document is then validated like a ceremony file, and any problem is an
ImportInvalid naming the part of the page (or the document path) at fault.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import mwparserfromhell
from mwparserfromhell.nodes import Tag, Template, Text
from mwparserfromhell.wikicode import Wikicode

from games.ceremony_file import CeremonyFileError, validate_ceremony
from games.errors import ImportInvalid
from games.wikipedia.nominees import NomineeLineError, title_and_subtitle
from games.wikipedia.wikicode import Flattened, flatten, template_name

POINTS_PER_CATEGORY = 1
DATE_TEMPLATES = frozenset({"start date", "start date and age", "start-date", "dts", "date"})
DATE_FORMATS = ("%B %d, %Y", "%d %B %Y", "%Y-%m-%d", "%b %d, %Y", "%d %b %Y")
DATE_TEXT = re.compile(
    r"[A-Z][a-z]+\.? \d{1,2}, \d{4}|\d{1,2} [A-Z][a-z]+\.? \d{4}|\d{4}-\d{2}-\d{2}"
)
LEADING_ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
# How much of a refused line an error message quotes.
QUOTED_MAX = 80


@dataclass
class _Line:
    """One bullet of a nominee cell."""

    depth: int
    nodes: list[Any]


def ceremony_from_wikitext(wikitext: str, *, page_title: str | None = None) -> dict[str, Any]:
    """Validated data for `games.services.ceremony_create(data=...)`."""
    document = document_from_wikitext(wikitext, page_title=page_title)
    try:
        return validate_ceremony(document)
    except CeremonyFileError as exc:
        raise ImportInvalid(f"{_named_path(document, exc.path)}: {exc.problem}") from None


def document_from_wikitext(wikitext: str, *, page_title: str | None = None) -> dict[str, Any]:
    """The ceremony file's JSON shape, not yet validated."""
    if not isinstance(wikitext, str) or not wikitext.strip():
        raise ImportInvalid("wikitext: empty")
    code = mwparserfromhell.parse(wikitext)
    # The tables first: without them this is not a ceremony page at all,
    # which says more than a missing name.
    categories = _categories(code)
    infobox = _infobox(code)
    return {"name": _name(infobox, page_title), "date": _date(infobox), "categories": categories}


# --- name and date -------------------------------------------------------------


def _infobox(code: Wikicode) -> Template | None:
    for template in code.filter_templates(recursive=False):
        if template_name(template).startswith("infobox"):
            return template
    return None


def _param(infobox: Template | None, name: str) -> Wikicode | None:
    if infobox is None or not infobox.has(name):
        return None
    return infobox.get(name).value


def _name(infobox: Template | None, page_title: str | None) -> str:
    value = _param(infobox, "name")
    name = flatten(value).text if value is not None else ""
    if not name:
        name = (page_title or "").strip()
    if not name:
        raise ImportInvalid("name: the infobox has no name and the page title is unknown")
    return name


def _date(infobox: Template | None) -> str | None:
    value = _param(infobox, "date")
    if value is None:
        return None
    for template in value.filter_templates(recursive=False):
        if template_name(template) in DATE_TEMPLATES:
            return _date_from_template(template)
    text = flatten(value).text
    if not text:
        return None
    match = DATE_TEXT.search(text)
    if match:
        for date_format in DATE_FORMATS:
            try:
                parsed = dt.datetime.strptime(match.group(0).replace(".", ""), date_format)
                return parsed.date().isoformat()
            except ValueError:
                continue
    raise ImportInvalid(f"infobox date: cannot read {text!r} as a date")


def _date_from_template(template: Template) -> str:
    numbers = [str(param.value).strip() for param in template.params if not param.showkey][:3]
    try:
        year, month, day = (int(number) for number in numbers)
        return dt.date(year, month, day).isoformat()
    except ValueError:
        raise ImportInvalid(
            f"infobox date: cannot read {str(template)!r} as a year, month and day"
        ) from None


# --- categories ------------------------------------------------------------------


def _categories(code: Wikicode) -> list[dict[str, Any]]:
    categories: list[dict[str, Any]] = []
    tables = [tag for tag in code.filter_tags(recursive=True) if str(tag.tag) == "table"]
    award_tables = [table for table in tables if _is_award_table(table)]
    if not award_tables:
        raise ImportInvalid(
            "categories: no table of {{Award category}} headers found; "
            "is this an Academy Awards ceremony page?"
        )
    for number, table in enumerate(award_tables, start=1):
        categories.extend(_table_categories(table, f"table {number}"))
    seen: set[str] = set()
    for category in categories:
        if category["name"] in seen:
            raise ImportInvalid(f"categories: {category['name']!r} appears twice")
        seen.add(category["name"])
    return categories


def _cells(row: Tag, kind: str) -> list[Tag]:
    return [cell for cell in row.contents.filter_tags(recursive=False) if str(cell.tag) == kind]


def _rows(table: Tag) -> list[Tag]:
    return [row for row in table.contents.filter_tags(recursive=False) if str(row.tag) == "tr"]


def _is_award_table(table: Tag) -> bool:
    return any(_is_award_header(cell) for row in _rows(table) for cell in _cells(row, "th"))


def _is_award_header(cell: Tag) -> bool:
    if any(template_name(t) == "award category" for t in cell.contents.filter_templates()):
        return True
    return any(
        str(link.title).strip().lower().startswith("academy award for")
        for link in cell.contents.filter_wikilinks()
    )


def _table_categories(table: Tag, where: str) -> list[dict[str, Any]]:
    categories: list[dict[str, Any]] = []
    pending: list[str] = []
    for row_number, row in enumerate(_rows(table), start=1):
        headers = [flatten(cell.contents).text for cell in _cells(row, "th")]
        cells = _cells(row, "td")
        if headers and not cells:
            pending = headers
            continue
        if not cells:
            continue
        names = headers or pending
        if len(names) != len(cells):
            raise ImportInvalid(
                f"{where}, row {row_number}: {len(cells)} nominee cell(s) under "
                f"{len(names)} category header(s)"
            )
        for name, cell in zip(names, cells, strict=True):
            if not name:
                raise ImportInvalid(f"{where}, row {row_number}: a category header is empty")
            categories.append(_category(name, cell))
        pending = []
    if pending:
        raise ImportInvalid(f"{where}: {pending[0]!r} has no nominee cell under it")
    return categories


def _category(name: str, cell: Tag) -> dict[str, Any]:
    lines = [(line, flatten(line.nodes)) for line in _bullet_lines(cell.contents)]
    lines = [(line, flat) for line, flat in lines if flat.text]
    if not lines:
        raise ImportInvalid(f"{name}: no nominees (one bullet per nominee expected)")
    nominations = [_nomination(name, number, flat) for number, (_, flat) in enumerate(lines, 1)]
    if _winner_shown(lines):
        nominations.sort(key=lambda nomination: _sort_key(nomination["title"]))
    return {"name": name, "points": POINTS_PER_CATEGORY, "nominations": nominations}


def _nomination(category: str, number: int, line: Flattened) -> dict[str, Any]:
    try:
        title, subtitle = title_and_subtitle(line.runs)
    except NomineeLineError as exc:
        shown = line.text if len(line.text) <= QUOTED_MAX else line.text[: QUOTED_MAX - 1] + "…"
        raise ImportInvalid(f"{category}, nominee {number} ({shown!r}): {exc}") from None
    return {"title": title, "subtitle": subtitle, "imageUrl": None}


def _winner_shown(lines: list[tuple[_Line, Flattened]]) -> bool:
    """A mark, or the winner's bullet above the nominees' deeper ones."""
    depths = {line.depth for line, _ in lines}
    return any(flat.winner_marked for _, flat in lines) or len(depths) > 1


def _sort_key(title: str) -> tuple[str, str]:
    folded = title.casefold()
    return LEADING_ARTICLE.sub("", folded), folded


def _bullet_lines(code: Wikicode) -> list[_Line]:
    """The cell's bullets, each with its depth (`*` 1, `**` 2); text outside
    bullets (a note, a picture) is not a nominee."""
    lines: list[_Line] = []
    current: _Line | None = None
    at_line_start = True
    for node in code.nodes:
        if isinstance(node, Tag) and str(node.tag) == "li":
            if current is not None and not at_line_start and current.nodes == []:
                current.depth += 1  # `**`: the markers come as one tag each
                continue
            current = _Line(depth=1, nodes=[])
            lines.append(current)
            at_line_start = False
            continue
        if isinstance(node, Text) and "\n" in str(node.value):
            head = str(node.value).split("\n", 1)[0]
            if current is not None and head:
                current.nodes.append(Text(head))
            current = None
            at_line_start = True
            continue
        at_line_start = False
        if current is not None:
            current.nodes.append(node)
    return lines


def _named_path(document: dict[str, Any], path: str) -> str:
    """`categories[3].nominations[0].title` with the category's name added."""
    match = re.match(r"categories\[(\d+)\]", path)
    categories = document.get("categories") or []
    if match and int(match.group(1)) < len(categories):
        name = categories[int(match.group(1))].get("name")
        return f"{path} ({name})"
    return path or "ceremony"
