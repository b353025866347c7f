"""WebSocket ticket authentication (`/ws/?ticket=…`, see accounts.tickets).

The middleware only decodes the ticket into `scope["ticket_user_id"]`; the
consumer loads that user from the database after accepting, so a ticket for a
deleted or deactivated user gets the contract's USER_NOT_FOUND frame and 4401
instead of an HTTP-level refusal the browser cannot read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.middleware import BaseMiddleware

from accounts.tickets import ticket_user_id


def scope_ticket_user_id(scope: dict[str, Any]) -> int | None:
    query = scope.get("query_string", b"")
    try:
        params = parse_qs(query.decode("latin-1"))
    except ValueError:
        return None
    tickets = params.get("ticket")
    return ticket_user_id(tickets[0]) if tickets else None


class TicketAuthMiddleware(BaseMiddleware):
    """A valid ticket names the user; without one the session user stands."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope, ticket_user_id=scope_ticket_user_id(scope))
        return await super().__call__(scope, receive, send)
