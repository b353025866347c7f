"""The `/ws/` consumer (docs/protocol.md): one socket per browser tab, following
any number of games.

It reads as parse, check, call, send: a client frame is parsed
(leaderboard.protocol) and rate-limited, then answered here (`ping`) or by
the call it names — a join or leave (leaderboard.joining), a reaction
(leaderboard.reactions) — and the reply sent.

Group messages reach the socket through the process's fan-out hub
(leaderboard.fanout), not through a channel of its own. Each game's last seq
decides what to do with an event: one the socket already has is dropped, the
next one is sent, and one beyond it means something was lost on the way — it
is dropped too and the hub replays the missing ones from the event log, in
order. With the join's hold-back (leaderboard.joining), a client sees every
event of a game once and in order on one socket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import Error as DjangoDatabaseError
from django.utils import timezone
from redis.exceptions import RedisError

from accounts.tickets import TicketClaim
from config import logs, metrics
from games.formatting import iso_utc
from leaderboard import joining, reactions
from leaderboard.auth import AUTH_UNAVAILABLE, active_users
from leaderboard.fanout import get_hub
from leaderboard.protocol import (
    MAX_FRAME_BYTES,
    FloodGuard,
    Inbound,
    ProtocolError,
    TokenBucket,
    encode_reply,
    error_frame,
    parse_frame,
)
from leaderboard.top import top_text
from server.extension import EXTENSION as PREPARED_SEND

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FLOODING = 4429
CLOSE_TOO_BIG = 1009
CLOSE_RESTARTING = 1012
# RFC 6455 "Try Again Later": the database or Redis could not be reached at
# connect; a client backs off and reconnects (its ticket was not used up).
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_INTERNAL_ERROR = 1011

# Every inbound frame, per socket: a burst of 30, then 10 per second.
FRAME_BURST = 30
FRAMES_PER_SECOND = 10.0
# Refusals tolerated per window before the socket is closed with 4429.
FLOOD_LIMIT = 20
FLOOD_WINDOW = 10.0

# Refusals at connect: (the contract's code, its message); each closes 4401.
_CONNECT_REFUSALS = {
    "AUTH_REQUIRED": ("AUTH_REQUIRED", "Sign in to follow a game."),
    "TICKET_USED": ("AUTH_REQUIRED", "That ticket was already used: ask for a new one."),
    "SIGNED_OUT": ("AUTH_REQUIRED", "You signed out."),
    "USER_NOT_FOUND": ("USER_NOT_FOUND", "That account no longer exists."),
}


class LeaderboardConsumer(AsyncJsonWebsocketConsumer):
    # No channel per socket: the process's hub receives each group message
    # once and hands it to its local sockets. `__call__` reads only the
    # client's messages; this alias names no layer, so nothing in Channels
    # can reach for one either.
    channel_layer_alias = "envelope.no-per-socket-channel"
    # Monotonic clock of the rate limits; tests replace it to freeze time.
    clock: Callable[[], float] = staticmethod(time.monotonic)

    user_id: int | None = None
    name: str = ""
    # POSIX time the user was authenticated (the ticket's issue, else the
    # connect): a sign-out at or after it closes the socket.
    auth_at: float = 0.0
    closed: bool = False
    prepared_send: Any = None
    # Games this socket joined with `board: "top"` (leaderboard.top). Most
    # sockets have none: they share this empty class attribute.
    top_games: frozenset[int] = frozenset()
    # Monotonic time of the connect, for the close's log line.
    connected_at: float = 0.0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' AsyncConsumer.__call__ for a consumer without a channel of
        its own: one source of messages, read directly.

        Kept for memory per idle socket (docs/fanout.md): Channels' general
        loop (await_many_dispatch) runs each receive as a new task under
        asyncio.wait — two more coroutines, a task and futures held by every
        idle socket, and a task made for every message. Handlers are still
        found as Channels finds them (`dispatch`)."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass  # the socket is done: Channels' own clean exit
        except Exception:
            # A bug ends the application (daphne closes the socket 1011)
            # and no disconnect would follow: leave the games first, or the
            # user stays online until presence expires. disconnect() never raises.
            await self.disconnect(CLOSE_INTERNAL_ERROR)
            raise

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' AsyncConsumer.dispatch, handlers named the same way
        (`websocket.receive` → `websocket_receive`; the hub's `game.event` →
        `game_event`), without its close_old_connections before every
        handler: a trip through the database thread per frame, which every
        query here already makes itself (database_sync_to_async)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- connection -------------------------------------------------------------

    async def connect(self) -> None:
        # game id → last seq sent to this socket for that game
        self.games: dict[int, int] = {}
        # game id → hub messages held back while that game's join is answered
        self.joining: dict[int, list[dict[str, Any]]] = {}
        self.connected_at = time.monotonic()
        self.hub = get_hub()
        # daphne's one-frame-many-sockets write, when the server offers it.
        self.prepared_send = self.scope.get("extensions", {}).get(PREPARED_SEND)
        await self.hub.start()
        self.socket_id = self.hub.new_socket_id()
        # Accept first: a close before accept reaches browsers as 1006, not our code.
        await self.accept()
        claimed, auth_at = None, time.time()
        ticket: TicketClaim | None = self.scope.get("ticket")
        if ticket is not None:
            claimed, auth_at = ticket.user_id, ticket.issued_at
        else:
            unavailable = self.scope.get(AUTH_UNAVAILABLE)
            if unavailable is not None:  # the session could not be read
                await self._close_unavailable(unavailable)
                return
            session_user = self.scope.get("user")
            if session_user is not None and session_user.is_authenticated:
                claimed = session_user.pk
        user: tuple[int, str] | str = "AUTH_REQUIRED"
        if claimed is not None:
            try:
                user = await active_users.ask((claimed, auth_at, ticket))
            except (DjangoDatabaseError, RedisError, OSError) as error:
                await self._close_unavailable(error)
                return
        if isinstance(user, str):
            metrics.socket_connect(CLOSE_UNAUTHENTICATED)
            logs.socket_event("refuse", socket_id=self.socket_id, code=CLOSE_UNAUTHENTICATED)
            await self._close_unauthenticated(*_CONNECT_REFUSALS[user])
            return
        self.user_id, self.name = user
        self.auth_at = auth_at
        self.frames = TokenBucket(capacity=FRAME_BURST, rate=FRAMES_PER_SECOND, clock=self.clock)
        self.reactions = TokenBucket(
            capacity=reactions.BURST, rate=reactions.PER_SECOND, clock=self.clock
        )
        self.flood = FloodGuard(limit=FLOOD_LIMIT, window=FLOOD_WINDOW, clock=self.clock)
        await self.hub.follow_user(self.user_id, self)
        await self._send({"type": "hello", "userId": self.user_id, "serverTime": _now()})
        metrics.socket_connect(None)
        logs.socket_event("connect", socket_id=self.socket_id, user_id=self.user_id)

    async def disconnect(self, code: int) -> None:
        # Never raises: one failed cleanup step must not skip the others.
        self.closed = True
        metrics.socket_closed(code)
        logs.socket_event(
            "close",
            socket_id=getattr(self, "socket_id", None),
            user_id=self.user_id,
            code=code,
            games=len(getattr(self, "games", ())),
            duration_s=round(time.monotonic() - self.connected_at, 3),
        )
        for game_id in list(getattr(self, "games", {})):
            await joining.leave_game(self, game_id)
        if self.user_id is not None:
            self.hub.unfollow_user(self.user_id, self)

    async def _close_unauthenticated(self, code: str, message: str) -> None:
        await self._send(error_frame(code, message))
        await self._close(CLOSE_UNAUTHENTICATED)

    async def _close_unavailable(self, error: Exception) -> None:
        """The cache or the database could not be reached at connect: the
        contract's SERVICE_UNAVAILABLE, then 1013 (try again later). One line
        in the log, no traceback: an outage refuses every connect, and a
        traceback per socket would bury the log."""
        reason = " ".join(str(error).split())[:200]
        metrics.socket_connect(CLOSE_TRY_AGAIN_LATER)
        logger.warning(
            "connect refused, a service is unreachable: %s: %s",
            type(error).__name__,
            reason,
            extra={"event": "refuse", "socket_id": self.socket_id, "code": CLOSE_TRY_AGAIN_LATER},
        )
        await self._send(
            error_frame(
                "SERVICE_UNAVAILABLE",
                "The service is briefly unavailable: connect again in a moment.",
            )
        )
        await self._close(CLOSE_TRY_AGAIN_LATER)

    async def _close(self, code: int) -> None:
        self.closed = True
        await self.close(code=code)

    # --- inbound frames -----------------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if self.closed or self.user_id is None:
            return
        # The backstop of the server's own limit (server/close_codes.py
        # closes 1009 before such a frame is read). "surrogatepass": a text
        # that did not come from UTF-8 on the wire (another server, tests) may
        # hold lone surrogates, and measuring it must not raise.
        if (
            text_data is not None
            and len(text_data.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES
        ):
            await self._close(CLOSE_TOO_BIG)
            return
        message: Inbound | None = None
        refusal: ProtocolError | None = None
        if text_data is None:
            refusal = ProtocolError("INVALID_MESSAGE", "Frames must be JSON text, not binary.")
        else:
            try:
                message = parse_frame(text_data)
            except ProtocolError as error:
                refusal = error
        ref = message.ref if message else refusal.ref if refusal else None
        if not self.frames.take():
            await self._rate_limited(ref, message.game_id if message else None)
            return
        if refusal is not None:
            await self._error(
                refusal.code, refusal.message, ref=refusal.ref, game_id=refusal.game_id
            )
            return
        assert message is not None
        if message.type == "ping":
            await self._ping(message)
        elif message.type == "join":
            await self._join(message)
        elif message.type == "leave":
            await self._leave(message)
        else:
            await self._reaction(message)

    async def _ping(self, message: Inbound) -> None:
        pong: dict[str, Any] = {"type": "pong"}
        if message.has_t:
            pong["t"] = message.t
        # The newest seq this process knows of per followed game: a client
        # that missed a night's last event notices it here.
        latest = self.hub.latest
        pong["seqs"] = {
            str(game_id): max(seq, latest.get(game_id, 0)) for game_id, seq in self.games.items()
        }
        await self._send(pong, ref=message.ref)

    async def _join(self, message: Inbound) -> None:
        refusal = await joining.join_game(self, message)
        if refusal is None:
            metrics.joined()
            logs.socket_event("join", socket_id=self.socket_id, game_id=message.game_id)
            return  # answered: `joined`, and the replay
        metrics.join_refused(refusal.code)
        logs.socket_event(
            "join_refused", socket_id=self.socket_id, game_id=message.game_id, code=refusal.code
        )
        if refusal.code == "USER_NOT_FOUND":
            await self._close_unauthenticated(refusal.code, "That account is no longer active.")
            return
        await self._error(
            refusal.code,
            joining.JOIN_REFUSALS[refusal.code],
            ref=message.ref,
            game_id=refusal.game_id,
        )

    async def _leave(self, message: Inbound) -> None:
        game_id = message.game_id
        assert game_id is not None
        if game_id not in self.games:
            await self._not_joined(message)
            return
        await joining.leave_game(self, game_id)
        metrics.left()
        logs.socket_event("leave", socket_id=self.socket_id, game_id=game_id)
        await self._send({"type": "left", "gameId": game_id}, ref=message.ref)

    async def _reaction(self, message: Inbound) -> None:
        game_id = message.game_id
        assert game_id is not None and message.emoji is not None and self.user_id is not None
        if game_id not in self.games:
            await self._not_joined(message)
            return
        if not self.reactions.take():
            await self._rate_limited(message.ref, game_id)
            return
        await reactions.reaction_send(
            game_id=game_id, user_id=self.user_id, name=self.name, emoji=message.emoji
        )

    # --- messages from the hub (handlers by Channels' naming of their type) ------------

    async def game_event(self, message: dict[str, Any]) -> None:
        """`game.event`: a game's event, with its seq, sent in seq order."""
        if self.closed or not joining.take_in_order(self, message):
            return
        game_id = message["game_id"]
        if message.get("removed") == self.user_id:
            await joining.leave_game(self, game_id)
            await self._send({"type": "game:removed", "gameId": game_id})
            return
        await self._send_shared(message, top=game_id in self.top_games)

    async def game_broadcast(self, message: dict[str, Any]) -> None:
        """`game.broadcast`: a game's frame without seq (presence, reactions)."""
        if self.closed or joining.hold_back(self, message):
            return
        if message["game_id"] in self.games:
            await self._send_shared(message)

    async def user_signed_out(self, message: dict[str, Any]) -> None:
        """`user.signed_out`: this socket's user signed out."""
        if not self.closed:
            await self._close_unauthenticated("AUTH_REQUIRED", "You signed out.")

    async def restart_notice(self) -> None:
        """The process is shutting down: tell the client to reconnect at once."""
        if not self.closed:
            await self._close(CLOSE_RESTARTING)

    # --- outbound helpers ----------------------------------------------------------------

    async def _send_shared(self, message: dict[str, Any], *, top: bool = False) -> None:
        """Send a hub message's text, which many local sockets share; for a
        socket on the top board, its top form (made by the first such socket)."""
        text_key, prepared_key = ("top_text", "top_prepared") if top else ("text", "prepared")
        text = message.get(text_key)
        if text is None:  # only the top form is ever missing
            text = message[text_key] = top_text(message["text"])
        prepared_send = self.prepared_send
        if prepared_send is None:
            await self.send(text_data=text)
            return
        # Framed once per message and form, by the first socket that sends it.
        prepared = message.get(prepared_key)
        if prepared is None:
            prepared = message[prepared_key] = prepared_send.prepare(text)
        if not prepared_send.send(prepared):
            self.closed = True  # closing: its disconnect is queued

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        prepared_send = self.prepared_send
        if prepared_send is not None and text_data is not None and not close:
            # Under our server, this socket's own frames (hello, joined,
            # replies) are written at once too: the ASGI send's layers were
            # a share of the loop in a burst of joins (bench/README.md).
            if not prepared_send.send(prepared_send.prepare(text_data)):
                self.closed = True  # closing: its disconnect is queued
            return
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except OSError:
            # The client left (ASGI servers raise an OSError for a send on a
            # closed connection); its websocket.disconnect is queued behind
            # the group message we were delivering. Nothing to report.
            self.closed = True

    async def _send(self, frame: dict[str, Any], *, ref: str | None = None) -> None:
        if ref is not None:
            frame = {**frame, "ref": ref}
        # A reply may echo the client's values (ref, a ping's t), lone
        # surrogates included: encode_reply keeps its text encodable as UTF-8.
        await self.send(text_data=encode_reply(frame))

    async def _error(
        self, code: str, message: str, *, ref: str | None = None, game_id: int | None = None
    ) -> None:
        await self._send(error_frame(code, message, ref=ref, game_id=game_id))

    async def _not_joined(self, message: Inbound) -> None:
        await self._error(
            "NOT_JOINED", "Join the game first.", ref=message.ref, game_id=message.game_id
        )

    async def _rate_limited(self, ref: str | None, game_id: int | None) -> None:
        await self._error("RATE_LIMITED", "Slow down.", ref=ref, game_id=game_id)
        if self.flood.hit():
            await self._close(CLOSE_FLOODING)


def _now() -> str:
    return iso_utc(timezone.now()) or ""
