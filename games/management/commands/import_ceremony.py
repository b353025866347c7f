"""`manage.py import_ceremony FILE.json` (README, Configuration).

Standard output carries the new ceremony's id alone, so a script can capture
it; every human message goes to standard error.
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from games import services
from games.ceremony_file import CeremonyFileError, parse_ceremony
from games.errors import DomainError


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
        try:
            ceremony = services.ceremony_create(data=data)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        except IntegrityError:
            # Another import of the same ceremony committed between check and insert.
            raise CommandError(
                f"A ceremony named {data['name']!r} on {data['date']} already exists."
            ) from None
        nominations = sum(len(category["nominations"]) for category in data["categories"])
        self.stderr.write(
            f"Imported {ceremony.name!r}: {len(data['categories'])} categories, "
            f"{nominations} nominations.",
            style_func=self.style.SUCCESS,
        )
        self.stdout.write(str(ceremony.pk))
