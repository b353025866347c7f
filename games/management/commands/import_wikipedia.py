"""`manage.py import_wikipedia URL_OR_FILE [--preview]` (README, Configuration).

Reads an Academy Awards ceremony page (fetched from Wikipedia, or wikitext
saved in a file) into the ceremony file format (games.wikipedia). Like
import_ceremony, standard output carries the new ceremony's id alone and
every human message goes to standard error; with --preview standard output
carries the ceremony's JSON instead and nothing is written.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from games.ceremony_file import ceremony_document
from games.errors import DomainError
from games.management.ceremony_import import ceremony_create_and_report
from games.wikipedia import ceremony_from_url, ceremony_from_wikitext


class Command(BaseCommand):
    help = (
        "Import an Academy Awards ceremony from its Wikipedia page "
        "(https://<lang>.wikipedia.org/wiki/<Title>) or from a file of the page's "
        "wikitext, and print the new ceremony's id on standard output. Winners marked "
        "on the page are not revealed: the ceremony is imported with no winners, every "
        "category worth 1 point. --preview prints the ceremony's JSON and writes nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("source", help="a Wikipedia page URL, or the path of a wikitext file")
        parser.add_argument(
            "--preview", action="store_true", help="print the ceremony JSON; write nothing"
        )

    def handle(self, *args: Any, source: str, preview: bool, **options: Any) -> None:
        try:
            data = self._read(source)
        except DomainError as exc:
            raise CommandError(f"{source}: {exc.message}") from None
        if preview:
            self.stdout.write(json.dumps(ceremony_document(data), ensure_ascii=False, indent=2))
            return
        ceremony_create_and_report(self, data, note=", no winners")

    def _read(self, source: str) -> dict[str, Any]:
        if source.startswith(("http://", "https://")):
            self.stderr.write(f"Fetching {source} …")
            return ceremony_from_url(source)
        path = Path(source)
        try:
            wikitext = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise CommandError(f"{source}: no such file") from None
        except UnicodeDecodeError as exc:
            raise CommandError(
                f"{source}: not UTF-8 (invalid byte at offset {exc.start})"
            ) from None
        except OSError as exc:
            raise CommandError(f"{source}: cannot be read ({exc.strerror})") from None
        # A saved page is usually named after it: "96th_Academy_Awards.wikitext".
        return ceremony_from_wikitext(wikitext, page_title=path.stem.replace("_", " "))
