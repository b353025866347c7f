"""Wikicode (mwparserfromhell's tree) to plain text as a reader sees it.

The text keeps one thing of the markup: which runs are in italics, because
on a ceremony page italics are what tell a film's title from a person's
name (`[[Cillian Murphy]]`, a dash, then `''[[Oppenheimer (film)|Oppenheimer]]''`).
The winner's mark ({{double-dagger}} or a bare ‡) is noted and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Node,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode

DOUBLE_DAGGER = "‡"
WINNER_TEMPLATES = frozenset({"double-dagger", "double dagger", "ddagger", DOUBLE_DAGGER})
# Templates whose output is their first positional argument as text.
FIRST_ARGUMENT_TEMPLATES = frozenset(
    {"ill", "interlanguage link", "interlanguage link multi", "nowrap", "nobr", "no wrap"}
)
# {{lang|fr|texte}}, {{sort|key|shown}}, {{Award category|#EEDD82|[[...|Best Picture]]}}.
SECOND_ARGUMENT_TEMPLATES = frozenset({"lang", "sort", "award category"})
# Links into these namespaces are pictures or page categories, not text.
NON_TEXT_NAMESPACES = ("file:", "image:", "category:")
SKIPPED_TAGS = frozenset({"ref", "references", "gallery", "math", "templatestyles"})


@dataclass(frozen=True)
class Run:
    text: str
    italic: bool


@dataclass
class Flattened:
    runs: list[Run] = field(default_factory=list)
    winner_marked: bool = False

    @property
    def text(self) -> str:
        return " ".join("".join(run.text for run in self.runs).split())


def template_name(template: Template) -> str:
    return " ".join(str(template.name).strip().replace("_", " ").lower().split())


def flatten(nodes: Wikicode | list[Node]) -> Flattened:
    out = Flattened()
    _walk(nodes.nodes if isinstance(nodes, Wikicode) else nodes, False, out)
    out.runs = _merged(out.runs)
    return out


def _walk(nodes: list[Node], italic: bool, out: Flattened) -> None:
    for node in nodes:
        _node(node, italic, out)


def _node(node: Node, italic: bool, out: Flattened) -> None:
    if isinstance(node, Text):
        _text(str(node.value), italic, out)
    elif isinstance(node, HTMLEntity):
        _text(node.normalize(), italic, out)
    elif isinstance(node, Wikilink):
        if str(node.title).strip().lower().startswith(NON_TEXT_NAMESPACES):
            return
        shown = node.text if node.text is not None else node.title
        _walk(shown.nodes, italic, out)
    elif isinstance(node, ExternalLink):
        if node.title is not None:
            _walk(node.title.nodes, italic, out)
    elif isinstance(node, Tag):
        _tag(node, italic, out)
    elif isinstance(node, Template):
        _template(node, italic, out)
    elif isinstance(node, Comment | Heading | Argument):
        return


def _text(value: str, italic: bool, out: Flattened) -> None:
    if DOUBLE_DAGGER in value:
        out.winner_marked = True
        value = value.replace(DOUBLE_DAGGER, "")
    out.runs.append(Run(value, italic))


def _tag(node: Tag, italic: bool, out: Flattened) -> None:
    tag = str(node.tag).lower()
    if tag in SKIPPED_TAGS or tag == "li":
        return
    if tag == "br":
        out.runs.append(Run(" ", italic))
    elif node.contents is not None and not node.self_closing:
        _walk(node.contents.nodes, italic or tag == "i", out)


def _template(node: Template, italic: bool, out: Flattened) -> None:
    name = template_name(node)
    positional = [param.value for param in node.params if not param.showkey]
    if name in WINNER_TEMPLATES:
        out.winner_marked = True
    elif name in FIRST_ARGUMENT_TEMPLATES and positional:
        _walk(positional[0].nodes, italic, out)
    elif name in SECOND_ARGUMENT_TEMPLATES and len(positional) > 1:
        _walk(positional[1].nodes, italic, out)
    elif name == "sortname" and len(positional) > 1:
        # {{sortname|First|Last|link}} shows "First Last".
        _walk(positional[0].nodes, italic, out)
        out.runs.append(Run(" ", italic))
        _walk(positional[1].nodes, italic, out)
    # Any other template (a footnote, a citation, a style) adds no text.


def _merged(runs: list[Run]) -> list[Run]:
    """Neighbouring runs of the same style joined, so a title is one run."""
    merged: list[Run] = []
    for run in runs:
        if not run.text:
            continue
        if merged and merged[-1].italic == run.italic:
            merged[-1] = Run(merged[-1].text + run.text, run.italic)
        else:
            merged.append(run)
    return merged
