"""WebSocket authentication: `?ticket=…` (see accounts.tickets) or the session.

A valid ticket names the user and the socket skips Channels' session and auth
middleware altogether: they cost two trips through the database thread per
connection, and a burst of thousands of connects queued behind them. Without
a valid ticket, `AuthMiddlewareStack` resolves the session user as usual.

The middleware only decodes the ticket into `scope["ticket"]` (no I/O on the
event loop); after accepting, the consumer uses the ticket up in the shared
cache and loads its user from the database, in one trip to a database thread.
So a ticket already used (on any process) or issued before the user signed
out gets AUTH_REQUIRED and 4401, a ticket for a deleted or deactivated user
gets USER_NOT_FOUND and 4401, instead of an HTTP-level refusal the browser
cannot read. A ticket is used up by the first socket that presents it, even
if that socket is then refused.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser
from django.db import Error as DjangoDatabaseError
from redis.exceptions import RedisError

from accounts.tickets import TicketClaim, ticket_claim

# scope key: why the session's user could not be read (the database or Redis
# was unreachable). The consumer answers SERVICE_UNAVAILABLE and 1013.
AUTH_UNAVAILABLE = "envelope.auth_unavailable"


def scope_ticket(scope: dict[str, Any]) -> TicketClaim | None:
    query = scope.get("query_string", b"")
    try:
        params = parse_qs(query.decode("latin-1"))
    except ValueError:
        return None
    tickets = params.get("ticket")
    return ticket_claim(tickets[0]) if tickets else None


class _SessionAuth(AuthMiddleware):
    """Channels' AuthMiddleware, except that a session or user it cannot read
    (the database or Redis unreachable) is not an exception before the accept,
    which ends the connection with a traceback and a 1006 at the browser. The
    socket goes on without a user and with the error in the scope: the
    consumer accepts it and answers SERVICE_UNAVAILABLE, then 1013."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        try:
            await super().resolve_scope(scope)
        except (DjangoDatabaseError, RedisError, OSError) as error:
            scope["user"]._wrapped = AnonymousUser()
            scope[AUTH_UNAVAILABLE] = error


class TicketOrSessionAuth:
    """ASGI middleware: the ticket's user, else the session's (scope["user"])."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        # Channels' AuthMiddlewareStack, with _SessionAuth for AuthMiddleware.
        self.session_auth = CookieMiddleware(SessionMiddleware(_SessionAuth(inner)))

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[Any]:
        # Not a coroutine itself: it returns the inner application's, so an
        # idle socket does not keep this frame (and its scope) suspended.
        claim = scope_ticket(scope)
        if claim is not None:
            return self.inner(dict(scope, ticket=claim), receive, send)
        return self.session_auth(dict(scope, ticket=None), receive, send)
