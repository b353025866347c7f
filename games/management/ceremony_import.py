"""What the import commands (import_ceremony, import_wikipedia) do once they
hold a valid ceremony document: create it, or say why not."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from games import services
from games.errors import DomainError


def ceremony_create_and_report(
    command: BaseCommand, data: dict[str, Any], *, note: str = ""
) -> None:
    """Create the ceremony; its id alone on stdout (for scripts), a summary on
    stderr; a CommandError naming the problem otherwise."""
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
    command.stderr.write(
        f"Imported {ceremony.name!r}: {len(data['categories'])} categories, "
        f"{nominations} nominations{note}.",
        style_func=command.style.SUCCESS,
    )
    command.stdout.write(str(ceremony.pk))
