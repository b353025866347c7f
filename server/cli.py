"""daphne's command line with our `Server`: every daphne option keeps working."""

from __future__ import annotations

from daphne.cli import CommandLineInterface as DaphneCommandLineInterface

from server.daphne_server import Server


class CommandLineInterface(DaphneCommandLineInterface):
    server_class = Server

    def __init__(self) -> None:
        super().__init__()
        self.parser.prog = "python -m server"
