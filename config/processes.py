"""Questions about other processes, with no Django in them: the fault
harness and the benches (which import it before any settings exist) ask
them as well as config.metrics."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
