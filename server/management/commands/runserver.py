"""`manage.py runserver`: daphne's development server with our Server.

The "server" app is listed before "daphne" in INSTALLED_APPS, so this command
is the one Django finds.
"""

from __future__ import annotations

from typing import Any

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.core.management import CommandError

from server.daphne_server import Server
from server.versions import UntestedServerVersions, check_versions


class Command(DaphneRunserver):
    server_cls = Server

    def handle(self, *args: Any, **options: Any) -> None:
        # Before the autoreloader: a refusal ends the command with its message.
        try:
            check_versions()
        except UntestedServerVersions as error:
            raise CommandError(str(error)) from None
        super().handle(*args, **options)
