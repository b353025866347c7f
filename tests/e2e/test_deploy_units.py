"""The systemd units and environment file in deploy/: what systemd itself says
of them (`systemd-analyze verify`, where it is installed), and that they run
what the rest of the repository tests: the server command the end-to-end
tests start, a drain that fits in the stop timeout, variables the code reads.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.admin_cmds.test_deploy_check import check_deploy
from tests.liveserver import ROOT, server_command

DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
ENV_EXAMPLE = DEPLOY / "envelope.env.example"
UNIT_FILES = ("envelope@.service", "envelope-migrate.service", "envelope-lock.service")
INSTALL_ROOT = "/srv/envelope"
ENV_FILE = "/etc/envelope/envelope.env"


def unit_settings(path: Path) -> dict[str, list[str]]:
    """`Section.Key` → its values, in order, for a unit file (continuation
    lines joined, comments skipped)."""
    settings: dict[str, list[str]] = {}
    section = ""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|min)?", value)
    assert match, f"not a plain duration: {value!r}"
    return int(match[1]) * (60 if match[2] == "min" else 1)


def test_the_server_unit_starts_the_command_the_end_to_end_tests_start():
    settings = unit_settings(UNITS / "envelope@.service")
    (exec_start,) = settings["Service.ExecStart"]
    argv = shlex.split(exec_start.replace("%i", "8001"))
    assert argv[0] == f"{INSTALL_ROOT}/.venv/bin/python"
    assert argv[1:] == server_command("daphne", 8001)


def test_stopping_waits_longer_than_the_drain():
    settings = unit_settings(UNITS / "envelope@.service")
    (timeout,) = settings["Service.TimeoutStopSec"]
    drain = float(env_example()["ENVELOPE_DRAIN_SECONDS"])
    assert seconds(timeout) > drain


def test_the_units_read_the_env_file_and_run_manage_commands_that_exist():
    for name in UNIT_FILES:
        settings = unit_settings(UNITS / name)
        assert settings["Service.EnvironmentFile"] == [ENV_FILE], name
        assert settings["Service.User"] == ["envelope"], name
        assert settings["Service.NoNewPrivileges"] == ["yes"], name
        assert settings["Service.ProtectSystem"] == ["strict"], name
        for command in settings["Service.ExecStart"]:
            argv = shlex.split(command)
            if argv[1] == "manage.py":
                path = ROOT / "games" / "management" / "commands" / f"{argv[2]}.py"
                builtin = argv[2] in {"migrate", "collectstatic"}
                assert builtin or path.is_file(), f"{name}: no command {argv[2]}"
    timer = unit_settings(UNITS / "envelope-lock.timer")
    assert timer["Timer.Unit"] == ["envelope-lock.service"]
    assert timer["Timer.OnCalendar"] == ["*-*-* *:*:00"]  # every minute


def test_every_variable_of_the_env_example_is_read_by_the_code():
    """A misspelt or retired variable in the example would be silently ignored."""
    sources = "\n".join(
        path.read_text()
        for app in ("config", "accounts", "games", "leaderboard", "server")
        for path in (ROOT / app).rglob("*.py")
    )
    unread = [name for name in env_example() if f'"{name}"' not in sources]
    assert not unread, f"{ENV_EXAMPLE.name} sets variables nothing reads: {unread}"


def test_only_the_server_processes_write_prometheus_files():
    """prometheus-client fails at import when PROMETHEUS_MULTIPROC_DIR does
    not exist: the server unit sets it with the directory it creates, and
    the env file, which manage.py commands read too, does not."""
    assert "PROMETHEUS_MULTIPROC_DIR" not in env_example()
    settings = unit_settings(UNITS / "envelope@.service")
    (runtime,) = settings["Service.RuntimeDirectory"]
    assert f"PROMETHEUS_MULTIPROC_DIR=/run/{runtime}" in settings["Service.Environment"]
    for name in ("envelope-migrate.service", "envelope-lock.service"):
        assert "PROMETHEUS_MULTIPROC_DIR" not in (UNITS / name).read_text(), name


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # systemd checks that ExecStart's program exists: point the units at this
    # checkout's interpreter and at a copy of the example env file.
    env_file = tmp_path / "envelope.env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    python = Path(sys.executable)
    paths = []
    for name in (*UNIT_FILES, "envelope-lock.timer"):
        text = (UNITS / name).read_text()
        text = text.replace(f"{INSTALL_ROOT}/.venv/bin/python", str(python))
        text = text.replace(INSTALL_ROOT, str(ROOT)).replace(ENV_FILE, str(env_file))
        # The template is verified as an instance: %i becomes a port.
        target = tmp_path / name.replace("@.", "@8001.")
        target.write_text(text)
        paths.append(str(target))
    result = subprocess.run(
        [analyze, "verify", *paths], capture_output=True, text=True, timeout=120
    )
    # Lines about other units (the host's own, in a container) are not ours to judge.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "envelope" in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


def test_the_env_example_once_filled_in_passes_check_deploy():
    """The example with a real secret key, as README's step 3 says, and
    nothing else: `manage.py check --deploy` finds no issue."""
    env = {
        **env_example(),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
