"""WebSocket tickets: short-lived, one-use signed user ids (Django's signing),
for clients that cannot send the session cookie on the WebSocket handshake.

A ticket carries the user id `u`, its issue time `t` and a random nonce `n`.
The signature makes it unforgeable and `max_age` makes it expire; the nonce
makes it usable once: the first socket that presents it records the nonce in
the shared cache (`ticket_consume`), and every later presentation, on any
server process, finds it there. Without the nonce a ticket sniffed from a
log or a proxy could open any number of sockets for a minute.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import NamedTuple

from django.conf import settings
from django.core import signing
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

SALT = "envelope.ws-ticket"
# 16 random bytes: a collision between two tickets is out of reach.
NONCE_BYTES = 16


class TicketClaim(NamedTuple):
    user_id: int
    issued_at: float  # POSIX time: a sign-out at or after it revokes the ticket
    nonce: str  # what makes the ticket one-use (ticket_consume)


def ticket_issue(*, user_id: int) -> str:
    payload = {"u": user_id, "t": time.time(), "n": secrets.token_urlsafe(NONCE_BYTES)}
    return signing.dumps(payload, salt=SALT, compress=False)


def ticket_claim(ticket: str) -> TicketClaim | None:
    """Who a valid, unexpired ticket names, when it was issued and its nonce;
    None for anything else (a ticket without a nonce included). Whether it was
    already used is `ticket_consume`'s question: it needs the cache."""
    try:
        data = signing.loads(ticket, salt=SALT, max_age=settings.ENVELOPE_WS_TICKET_MAX_AGE)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    user_id, issued_at, nonce = data.get("u"), data.get("t"), data.get("n")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    if not isinstance(issued_at, int | float) or isinstance(issued_at, bool):
        return None
    if not isinstance(nonce, str) or not nonce:
        return None
    return TicketClaim(user_id, float(issued_at), nonce)


def ticket_consume(claim: TicketClaim) -> bool:
    """Use the ticket up: True for its first use, False ever after.

    Blocking (a cache round trip): call it off the event loop. `cache.add`
    is atomic (SET NX on Redis, which every server process shares), so of two
    sockets presenting the same ticket at once exactly one wins. The entry
    lives as long as a ticket can: it is written after the ticket was issued,
    so it outlives the ticket's own expiry. Raises what the cache raises when
    it cannot be reached (redis.exceptions.RedisError, OSError)."""
    # At least a second: a timeout of 0 would store nothing, and every use
    # would look like the first.
    timeout = max(settings.ENVELOPE_WS_TICKET_MAX_AGE, 1)
    return cache.add(_key(claim), claim.user_id, timeout=timeout)


def tickets_consume(claims: list[TicketClaim]) -> list[bool]:
    """`ticket_consume` of many tickets, with one cache round trip on Redis:
    a burst of connects uses its tickets up in one pipeline of SET NX
    instead of one round trip each. Raises as `ticket_consume` does."""
    if not claims:
        return []
    default = caches[DEFAULT_CACHE_ALIAS]  # `cache` is a proxy of it
    if not isinstance(default, RedisCache):
        return [ticket_consume(claim) for claim in claims]
    timeout = default.get_backend_timeout(max(settings.ENVELOPE_WS_TICKET_MAX_AGE, 1))
    keys = [default.make_and_validate_key(_key(claim)) for claim in claims]
    # Django's RedisCache has no add_many: its client, as RedisCache.add uses it.
    backend = default._cache
    client = backend.get_client(keys[0], write=True)
    with client.pipeline(transaction=False) as pipe:
        for key, claim in zip(keys, claims, strict=True):
            pipe.set(key, backend._serializer.dumps(claim.user_id), ex=timeout, nx=True)
        return [bool(added) for added in pipe.execute()]


def ticket_release(claim: TicketClaim) -> None:
    """Give back a ticket whose socket was refused because a service was down
    (not because of the ticket), so the client may retry with it while it is
    valid. Still one socket per ticket: only a refused socket gives it back.
    Best effort, blocking: a cache that cannot be reached keeps it used."""
    with contextlib.suppress(RedisError, OSError):
        cache.delete(_key(claim))


def _key(claim: TicketClaim) -> str:
    return f"ws-ticket:{claim.nonce}"
