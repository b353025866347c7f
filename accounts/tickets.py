"""WebSocket tickets: short-lived signed user ids (Django's signing), for
clients that cannot send the session cookie on the WebSocket handshake."""

from __future__ import annotations

import time
from typing import NamedTuple

from django.conf import settings
from django.core import signing

SALT = "envelope.ws-ticket"


class TicketClaim(NamedTuple):
    user_id: int
    issued_at: float  # POSIX time: a sign-out at or after it revokes the ticket


def ticket_issue(*, user_id: int) -> str:
    return signing.dumps({"u": user_id, "t": time.time()}, salt=SALT, compress=False)


def ticket_claim(ticket: str) -> TicketClaim | None:
    """Who a valid, unexpired ticket names and when it was issued; None for
    anything else."""
    try:
        data = signing.loads(ticket, salt=SALT, max_age=settings.ENVELOPE_WS_TICKET_MAX_AGE)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    user_id, issued_at = data.get("u"), data.get("t")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    if not isinstance(issued_at, int | float) or isinstance(issued_at, bool):
        return None
    return TicketClaim(user_id, float(issued_at))
