"""Where the socket path's database reads run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async


# On the loop's thread pool rather than Channels' default single
# "thread-sensitive" thread: in a burst of joins each read waits on
# PostgreSQL round trips, and one thread made every join wait for all others.
def on_db_threads(function: Callable[..., Any]) -> Callable[..., Any]:
    return database_sync_to_async(function, thread_sensitive=False)
