"""WebSocket authentication: `?ticket=…` (see accounts.tickets) or the session.

A valid ticket names the user and the socket skips Channels' session and auth
middleware altogether: they cost two trips through the database thread per
connection, and a burst of thousands of connects queued behind them. Without
a valid ticket, `AuthMiddlewareStack` resolves the session user as usual.

The middleware only decodes the ticket into `scope["ticket"]`; the consumer
loads that user from the database after accepting, so a ticket for a deleted
or deactivated user gets the contract's USER_NOT_FOUND frame and 4401 instead
of an HTTP-level refusal the browser cannot read, and a ticket issued before
the user signed out gets AUTH_REQUIRED and 4401.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack

from accounts.tickets import TicketClaim, ticket_claim


def scope_ticket(scope: dict[str, Any]) -> TicketClaim | None:
    query = scope.get("query_string", b"")
    try:
        params = parse_qs(query.decode("latin-1"))
    except ValueError:
        return None
    tickets = params.get("ticket")
    return ticket_claim(tickets[0]) if tickets else None


class TicketOrSessionAuth:
    """ASGI middleware: the ticket's user, else the session's (scope["user"])."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.session_auth = AuthMiddlewareStack(inner)

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[Any]:
        # Not a coroutine itself: it returns the inner application's, so an
        # idle socket does not keep this frame (and its scope) suspended.
        claim = scope_ticket(scope)
        if claim is not None:
            return self.inner(dict(scope, ticket=claim), receive, send)
        return self.session_auth(dict(scope, ticket=None), receive, send)
