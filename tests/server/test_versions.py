"""server/versions.py: the server starts only on the daphne, Twisted and
autobahn versions it was tested with, and says which differ."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import version

import pytest
from django.core.management import CommandError, call_command, get_commands, load_command_class

from server import versions
from server.daphne_server import Server
from server.versions import TESTED, UntestedServerVersions, check_versions
from tests.liveserver import ROOT
from tests.server.asgi_app import make_application


def one_untested(name: str, installed: str | None):
    return lambda distribution: installed if distribution == name else TESTED[distribution]


def test_the_installed_versions_are_the_tested_ones():
    check_versions()
    assert {name: version(name) for name in TESTED} == dict(TESTED)


def test_pyproject_pins_exactly_the_tested_versions():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = dict(requirement.split("==") for requirement in pyproject["project"]["dependencies"])
    assert {name: pins.get(name) for name in TESTED} == dict(TESTED)


def test_an_untested_version_is_refused_naming_installed_and_tested():
    with pytest.raises(UntestedServerVersions) as refused:
        check_versions(one_untested("autobahn", "27.1.0"))
    message = str(refused.value)
    assert "autobahn: 27.1.0 is installed, tested with 26.11.1" in message
    assert message.count(" is installed, ") == 1  # only what differs
    assert "server/versions.py" in message


def test_a_missing_distribution_is_refused():
    with pytest.raises(UntestedServerVersions, match="Twisted: not installed is installed"):
        check_versions(one_untested("Twisted", None))


def test_our_server_refuses_to_be_made_on_an_untested_version(monkeypatch):
    monkeypatch.setattr(versions, "installed_version", one_untested("daphne", "4.3.0"))
    with pytest.raises(UntestedServerVersions, match=r"daphne: 4\.3\.0 is installed"):
        Server(application=make_application(), endpoints=["tcp:port=0"])


def test_python_m_server_refuses_to_start_on_an_untested_version():
    # The installed metadata says Twisted 99.0.0; then `python -m server` as usual.
    code = (
        "import importlib.metadata as m, runpy, sys\n"
        "real = m.version\n"
        "m.version = lambda name: '99.0.0' if name == 'Twisted' else real(name)\n"
        "sys.argv = ['server', '-e', 'tcp:port=0', 'tests.server.asgi_app:application']\n"
        "runpy.run_module('server', run_name='__main__', alter_sys=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "Twisted: 99.0.0 is installed, tested with 26.10.0" in result.stderr
    assert "Traceback" not in result.stderr


def test_runserver_is_ours_and_refuses_an_untested_version(monkeypatch):
    assert get_commands()["runserver"] == "server"
    assert load_command_class("server", "runserver").server_cls is Server
    monkeypatch.setattr(versions, "installed_version", one_untested("autobahn", "1.0"))
    with pytest.raises(CommandError, match=r"autobahn: 1\.0 is installed"):
        call_command("runserver", "--noreload", "127.0.0.1:0")
