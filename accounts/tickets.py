"""WebSocket tickets: short-lived signed user ids (Django's signing), for
clients that cannot send the session cookie on the WebSocket handshake."""

from __future__ import annotations

from django.conf import settings
from django.core import signing

SALT = "envelope.ws-ticket"


def ticket_issue(*, user_id: int) -> str:
    return signing.dumps({"u": user_id}, salt=SALT, compress=False)


def ticket_user_id(ticket: str) -> int | None:
    """The user id a valid, unexpired ticket names; None for anything else."""
    try:
        data = signing.loads(ticket, salt=SALT, max_age=settings.ENVELOPE_WS_TICKET_MAX_AGE)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    user_id = data.get("u") if isinstance(data, dict) else None
    return user_id if isinstance(user_id, int) else None
