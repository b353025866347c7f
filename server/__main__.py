"""`python -m server [daphne options] config.asgi:application`: production's
and the tests' way to start the server (daphne's command line, our Server).

The versions are checked before daphne is even imported: an untested daphne,
Twisted or autobahn stops here with a message naming them, exit status 1.
"""

from server.versions import UntestedServerVersions, check_versions

try:
    check_versions()
except UntestedServerVersions as error:
    raise SystemExit(f"error: {error}") from None

from server.cli import CommandLineInterface  # after the check

CommandLineInterface.entrypoint()
