"""The benchmarks start as bench/README.md says: `python bench/NAME.py`, from
a shell with no Django settings. They import the fault harness and the live
stack from tests/, so an import there that needs settings breaks them — as
it once did, unseen, until the next benchmark run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The scripts with a command line. bench/clients.py is a child process the
# benches drive on stdin, bench/seed.py a module they import.
SCRIPTS = [
    "fanout",
    "fast_client",
    "http_requests",
    "metrics_overhead",
    "parties",
    "reference_server",
    "sidebyside",
    "standings",
]


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_bench_script_starts_from_a_plain_shell(name: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--help"],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
