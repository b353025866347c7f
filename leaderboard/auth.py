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

from accounts.models import User
from accounts.tickets import TicketClaim, ticket_claim, ticket_consume, ticket_release
from leaderboard.db_threads import on_db_threads

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


@on_db_threads
def active_user(user_id: int, auth_at: float, ticket: TicketClaim | None) -> tuple[int, str] | str:
    """(id, name) of the user, or why the socket is refused: "TICKET_USED",
    "USER_NOT_FOUND" or "SIGNED_OUT".

    The ticket, if the socket came with one, is used up first, in the same
    trip off the event loop as the user's query: a replayed ticket is refused
    without touching the database. Raises what the cache or the database
    raises when it cannot be reached."""
    if ticket is not None and not ticket_consume(ticket):
        return "TICKET_USED"
    try:
        user = User.objects.filter(pk=user_id, is_active=True).first()
    except DjangoDatabaseError:
        if ticket is not None:
            ticket_release(ticket)  # refused for the outage: the client may retry with it
        raise
    if user is None:
        return "USER_NOT_FOUND"
    if user.signed_out_at is not None and user.signed_out_at.timestamp() >= auth_at:
        return "SIGNED_OUT"
    return user.pk, user.public_name


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
