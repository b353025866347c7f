"""`GET /api/games/{id}/events`: a game's events as Server-Sent Events
(docs/api.md; the stream itself: docs/protocol.md, "Server-Sent Events").

Answers in the API's error shape until the stream starts: who asks (the
session cookie, or `Authorization: Token`), the resume point
(`Last-Event-ID`, else `?lastSeq=`), the per-user cap on open streams, then
the join sequence a socket's `join` runs (leaderboard.joining), whose
refusals become 404 / 403 / 503. Only after a successful join does the
response start, with the `joined` frame (and the replay) first.

An async view: the stream is one more follower on the server's event loop,
and Django (under ASGI) writes the body as it is produced and cancels it when
the client disconnects. No middleware here buffers a streaming body.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from django.db import Error as DjangoDatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import RedisError
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from config import outages
from config.errors import error_body
from leaderboard import joining
from leaderboard.auth import active_users
from leaderboard.db_threads import on_db_threads
from leaderboard.fanout import get_hub
from leaderboard.protocol import Inbound
from leaderboard.sse import SseStream, streams_of, streams_per_user
from server.extension import draining

logger = logging.getLogger(__name__)

UNREACHABLE = (DjangoDatabaseError, RedisError, OSError)
# A seq: what fits PostgreSQL's bigint, written plainly.
_SEQ = re.compile(r"[0-9]{1,18}")

# Join refusals (leaderboard.joining) as HTTP answers.
_REFUSALS = {
    "GAME_NOT_FOUND": (404, "NOT_FOUND", "No game with that id."),
    "NOT_PARTICIPANT": (403, "NOT_PARTICIPANT", "You are not a player in this game."),
    "USER_NOT_FOUND": (401, "AUTH_REQUIRED", "That account is no longer active."),
    "SERVICE_UNAVAILABLE": (503, "SERVICE_UNAVAILABLE", outages.MESSAGE),
}


def _error(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse(error_body(code, message), status=status)
    if status == 503:
        response["Retry-After"] = str(outages.RETRY_AFTER_SECONDS)
    return response


def _token_user_id(request: HttpRequest) -> int | None:
    """The user of an `Authorization: Token` header (DRF's own parsing and
    checks); None without one. Raises AuthenticationFailed for a bad one."""
    found = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    return None if found is None else found[0].pk


async def _signed_in(request: HttpRequest) -> tuple[int, str] | None:
    """(user id, public name) of who asks, else None. Raises on an outage."""
    try:
        user_id = await on_db_threads(_token_user_id)(request)
    except AuthenticationFailed:
        return None
    if user_id is None:
        user = await request.auser()
        if not user.is_authenticated:
            return None
        user_id = user.pk
    # Active, not signed out, and the name presence announces: the socket's check.
    answer = await active_users.ask((user_id, time.time(), None))
    return answer if isinstance(answer, tuple) else None


def _last_seq(request: HttpRequest) -> int | None:
    """Where to resume: EventSource's `Last-Event-ID` on a reconnect, else
    `?lastSeq=` (the page's seq when it first connects). Raises ValueError."""
    value = request.headers.get("Last-Event-ID") or request.GET.get("lastSeq")
    if value is None or value == "":
        return None
    if not _SEQ.fullmatch(value):
        raise ValueError(value)
    return int(value)


@csrf_exempt  # nothing changes here; a POST must get the API's 405, not CSRF's page
async def game_events(request: HttpRequest, game_id: int) -> HttpResponse:
    if request.method != "GET":
        response = _error(405, "METHOD_NOT_ALLOWED", f'Method "{request.method}" not allowed.')
        response["Allow"] = "GET"
        return response
    if draining():
        # Shutting down (as a socket's upgrade is refused): EventSource's
        # reconnect goes to a process that stays.
        return _error(503, "SERVICE_UNAVAILABLE", outages.MESSAGE)
    try:
        user = await _signed_in(request)
    except UNREACHABLE as error:
        logger.warning("SSE refused, a service is unreachable: %s", type(error).__name__)
        return _error(503, "SERVICE_UNAVAILABLE", outages.MESSAGE)
    if user is None:
        return _error(401, "AUTH_REQUIRED", "Authentication credentials were not provided.")
    try:
        last_seq = _last_seq(request)
    except ValueError:
        return _error(400, "VALIDATION_ERROR", "Last-Event-ID and lastSeq must be an integer ≥ 0.")
    user_id, name = user
    hub = get_hub()
    await hub.start()
    streams = streams_of(hub)
    if not streams.reserve(user_id):
        return _error(
            429,
            "RATE_LIMITED",
            f"At most {streams_per_user()} event streams per user: close one first.",
        )
    stream = SseStream(hub, user_id=user_id, name=name, auth_at=time.time())
    try:
        await hub.follow_user(user_id, stream)
        refusal = await joining.join_game(
            stream, Inbound(type="join", game_id=game_id, last_seq=last_seq)
        )
    except BaseException:
        # The client left mid-join (cancelled), or a bug: undo what was done.
        await asyncio.shield(stream.leave())
        raise
    if refusal is not None:
        await stream.leave()
        return _error(*_REFUSALS[refusal.code])
    stream.opened()
    response = StreamingHttpResponse(stream.body(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # nginx buffers proxied responses unless told not to.
    response["X-Accel-Buffering"] = "no"
    return response
