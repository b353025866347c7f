"""A fixed-window failure counter in Django's cache (Redis when configured, so
every server process shares it). Used for login failures and wrong join codes.

Keys carry the window's index, so a window's counter is only ever touched
while it is alive and simply expires afterwards: no counter can outlive its
window, whatever the cache backend does with increments.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True, slots=True)
class FailureCounter:
    scope: str
    limit: int
    window: int  # seconds

    def _window_index(self) -> int:
        return int(time.time() // self.window)

    def _key(self, identity: str, index: int) -> str:
        # Hashed: identities are user input (usernames, addresses) of any length.
        digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
        return f"failures:{self.scope}:{digest}:{index}"

    def retry_after(self) -> int:
        """Seconds until the current window ends."""
        return max(1, int((self._window_index() + 1) * self.window - time.time()))

    def is_blocked(self, *identities: str) -> bool:
        """True when any identity has reached the limit in this window."""
        index = self._window_index()
        counts = cache.get_many([self._key(identity, index) for identity in identities])
        return any(count >= self.limit for count in counts.values())

    def record_failure(self, *identities: str) -> None:
        index = self._window_index()
        for identity in identities:
            key = self._key(identity, index)
            # add() is atomic and only creates: concurrent failures all count.
            if not cache.add(key, 1, timeout=self.window):
                try:
                    cache.incr(key)
                except ValueError:  # evicted meanwhile: start over
                    cache.set(key, 1, timeout=self.window)

    def reset(self, *identities: str) -> None:
        index = self._window_index()
        cache.delete_many([self._key(identity, index) for identity in identities])
