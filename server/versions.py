"""The daphne, Twisted and autobahn versions the server seam was tested with.

The subclasses in this package override daphne methods (one of them a copy of
daphne 4.2's `Server.create_application`) and read Twisted and autobahn
attributes that are not public API (`_tempDataBuffer`, `_writeDisconnected`,
`_perMessageCompress`, `message_data_total_length`, ...). A new release may
rename any of them and nothing would say so until a client noticed. So the
server refuses to start on versions other than these, and pyproject.toml pins
the same ones (tests/server/test_versions.py checks that they agree).

To upgrade one: install it, run tests/server (which drive the real daphne and
autobahn classes and fail on a renamed attribute), tests/e2e and the benches
(bench/README.md), then change its version here and in pyproject.toml.
There is deliberately no switch to start on untested versions anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version

# Distribution name -> the version tests/server, tests/e2e and the benches ran on.
TESTED: Mapping[str, str] = {
    "daphne": "4.2.3",
    "Twisted": "26.10.0",
    "autobahn": "26.11.1",
}


class UntestedServerVersions(RuntimeError):
    """The installed daphne, Twisted or autobahn is not the tested version."""


def installed_version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def untested(
    installed: Callable[[str], str | None] | None = None,
) -> list[tuple[str, str | None, str]]:
    """(distribution, installed version or None, tested version) for each
    distribution whose installed version is not the tested one."""
    installed = installed or installed_version
    found = []
    for distribution, tested in TESTED.items():
        actual = installed(distribution)
        if actual != tested:
            found.append((distribution, actual, tested))
    return found


def check_versions(installed: Callable[[str], str | None] | None = None) -> None:
    """Raise UntestedServerVersions, naming installed and tested versions,
    unless every distribution in TESTED is installed at its tested version."""
    found = untested(installed)
    if not found:
        return
    lines = [
        f"  {name}: {actual or 'not installed'} is installed, tested with {tested}"
        for name, actual, tested in found
    ]
    raise UntestedServerVersions(
        "Envelope's server (server/) patches daphne, Twisted and autobahn internals "
        "and starts only on the versions it was tested with:\n"
        + "\n".join(lines)
        + "\nInstall the tested versions (pip install -e .), or test the new ones "
        "and update server/versions.py and pyproject.toml (see server/versions.py)."
    )
