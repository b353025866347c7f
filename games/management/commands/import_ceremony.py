"""`manage.py import_ceremony FILE.json` (README, Configuration).

Standard output carries the new ceremony's id alone, so a script can capture
it; every human message goes to standard error.
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from games.ceremony_file import CeremonyFileError, parse_ceremony
from games.management.ceremony_import import ceremony_create_and_report


class Command(BaseCommand):
    help = (
        "Import a ceremony from a UTF-8 JSON file and print its new id on standard output. "
        "The whole file is validated before anything is written; importing the same "
        "ceremony (name and date) twice is an error. "
        "The shipped games/fixtures/97th-academy-awards.json scores Best Picture 5 points, "
        "Best Director and the four acting categories 3, the two screenplays 2, the rest 1."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="path of the ceremony JSON file")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        path = Path(file)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file") from None
        except OSError as exc:
            raise CommandError(f"{file}: cannot be read ({exc.strerror})") from None
        try:
            data = parse_ceremony(raw)
        except CeremonyFileError as exc:
            where = f"{file}: {exc.path}" if exc.path else file
            raise CommandError(f"{where}: {exc.problem}") from None
        ceremony_create_and_report(self, data)
