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
from accounts.tickets import TicketClaim, ticket_claim, ticket_release, tickets_consume
from leaderboard.batching import Batcher
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


# A request for `active_users`: (user id, POSIX time of the authentication, ticket).
UserRequest = tuple[int, float, "TicketClaim | None"]


def check_users(requests: list[UserRequest]) -> list[tuple[int, str] | str | Exception]:
    """For each connect, (id, name) of the user, or why the socket is
    refused: "TICKET_USED", "USER_NOT_FOUND" or "SIGNED_OUT"; many connects
    in one trip to a database thread and one query.

    A ticket, if the socket came with one, is used up first: a replayed
    ticket is refused without the user's row. An outage (the cache or the
    database unreachable) fails every connect of the batch with its error,
    and the tickets the batch used up are released: the clients may retry
    with them."""
    consumed: list[TicketClaim] = []
    answers: list[tuple[int, str] | str | Exception] = []
    try:
        tickets = [ticket for _, _, ticket in requests if ticket is not None]
        first_uses = iter(tickets_consume(tickets))
        for _, _, ticket in requests:
            if ticket is not None:
                if not next(first_uses):
                    answers.append("TICKET_USED")
                    continue
                consumed.append(ticket)
            answers.append("")  # the user's answer, below
        users = User.objects.filter(
            pk__in={
                user_id
                for (user_id, _, _), answer in zip(requests, answers, strict=True)
                if not answer
            },
            is_active=True,
        ).in_bulk()
    except (DjangoDatabaseError, RedisError, OSError) as error:
        for ticket in consumed:
            ticket_release(ticket)
        return [error] * len(requests)
    for index, ((user_id, auth_at, _), answer) in enumerate(zip(requests, answers, strict=True)):
        if answer:
            continue
        user = users.get(user_id)
        if user is None:
            answers[index] = "USER_NOT_FOUND"
        elif user.signed_out_at is not None and user.signed_out_at.timestamp() >= auth_at:
            answers[index] = "SIGNED_OUT"
        else:
            answers[index] = (user.pk, user.public_name)
    return answers


# The connects of a burst asking while a batch is on its way go in the next.
active_users: Batcher[UserRequest, tuple[int, str] | str] = Batcher(on_db_threads(check_users))


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
