"""The `/ws/` consumer (CONTRACT §4): one socket per browser tab, following
any number of games.

Group messages reach the socket through the process's fan-out hub
(leaderboard/fanout.py), not through a channel of its own. While a `join` is
being answered, the hub's events for that game are buffered and handled after
the `joined` frame (and replay) went out. Each game's last seq then decides:
an event the socket already has is dropped, the next one is sent, and one
beyond it means something was lost on the way — it is dropped too and the
hub replays the missing ones from the event log, in order. So a client sees
every event of a game once and in order on one socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import DatabaseError
from django.db import Error as DjangoDatabaseError
from django.utils import timezone
from redis.exceptions import RedisError

from accounts.models import User
from accounts.tickets import TicketClaim, ticket_consume, ticket_release
from config.daphne_prepared_send import EXTENSION as PREPARED_SEND
from games import errors as game_errors
from games.formatting import iso_utc
from games.models import Game, GameParticipant
from games.services import game_lock_if_due
from leaderboard import events, reactions
from leaderboard import presence as presence_module
from leaderboard.auth import AUTH_UNAVAILABLE
from leaderboard.fanout import Hub, get_hub, on_new_hub
from leaderboard.history import join_snapshot
from leaderboard.presence import REFRESH_SECONDS, SocketGames, get_presence
from leaderboard.protocol import (
    MAX_FRAME_BYTES,
    MAX_ID,
    FloodGuard,
    Inbound,
    ProtocolError,
    TokenBucket,
    encode_reply,
    error_frame,
    parse_frame,
    wire_text,
)
from leaderboard.top import top_payload, top_text

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


# The socket path's reads run on the loop's thread pool rather than Channels'
# default single "thread-sensitive" thread: in a burst of joins each waits on
# PostgreSQL round trips, and one thread made every join wait for all others.
def _on_db_threads(function: Callable[..., Any]) -> Callable[..., Any]:
    return database_sync_to_async(function, thread_sensitive=False)


@_on_db_threads
def _active_user(user_id: int, auth_at: float, ticket: TicketClaim | None) -> tuple[int, str] | str:
    """(id, name) of the user, or the refusal (a key of _CONNECT_REFUSALS).

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


@_on_db_threads
def _join_check(game_id: int, user_id: int) -> int | str:
    """The game's ceremony id when the user may follow the game, else the
    refusal code. Two queries when the answer is yes; a refusal looks closer
    for its reason."""
    try:
        # Persist a lock that came due, so the snapshot shows the game LIVE.
        game_lock_if_due(game_id=game_id)
        game_found = True
    except game_errors.NotFound:
        game_found = False
    if game_found:
        ceremony_id = (
            GameParticipant.objects.filter(game_id=game_id, user_id=user_id, user__is_active=True)
            .values_list("game__ceremony_id", flat=True)
            .first()
        )
        if ceremony_id is not None:
            return ceremony_id
    if not User.objects.filter(pk=user_id, is_active=True).exists():
        return "USER_NOT_FOUND"
    return "NOT_PARTICIPANT" if game_found else "GAME_NOT_FOUND"


_snapshot = _on_db_threads(join_snapshot)

# Refusals at connect: (the contract's code, its message); each closes 4401.
_CONNECT_REFUSALS = {
    "AUTH_REQUIRED": ("AUTH_REQUIRED", "Sign in to follow a game."),
    "TICKET_USED": ("AUTH_REQUIRED", "That ticket was already used: ask for a new one."),
    "SIGNED_OUT": ("AUTH_REQUIRED", "You signed out."),
    "USER_NOT_FOUND": ("USER_NOT_FOUND", "That account no longer exists."),
}

_JOIN_REFUSALS = {
    "GAME_NOT_FOUND": "No game with that id.",
    "NOT_PARTICIPANT": "You are not a player in this game.",
    "SERVICE_UNAVAILABLE": "The service is briefly unavailable: join again in a moment.",
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

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' AsyncConsumer.__call__ for a consumer without a channel of
        its own: one source of messages, read directly. Channels' general loop
        (await_many_dispatch) runs each receive as a new task under
        asyncio.wait: two more coroutines, a task and futures held by every
        idle socket, and a task made for every message."""
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
        # Channels closes stale database connections (a trip through its
        # database thread) before every handler; every query here already runs
        # in database_sync_to_async, which does that itself.
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
                user = await _active_user(claimed, auth_at, ticket)
            except (DjangoDatabaseError, RedisError, OSError) as error:
                await self._close_unavailable(error)
                return
        if isinstance(user, str):
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

    async def disconnect(self, code: int) -> None:
        # Never raises: one failed cleanup step must not skip the others.
        self.closed = True
        for game_id in list(getattr(self, "games", {})):
            await self._forget_game(game_id)
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
        logger.warning(
            "connect refused, a service is unreachable: %s: %s", type(error).__name__, reason
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
        # The backstop of the server's own limit (config/daphne_close_codes.py
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
            pong: dict[str, Any] = {"type": "pong"}
            if message.has_t:
                pong["t"] = message.t
            # The newest seq this process knows of per followed game: a client
            # that missed a night's last event notices it here.
            latest = self.hub.latest
            pong["seqs"] = {
                str(game_id): max(seq, latest.get(game_id, 0))
                for game_id, seq in self.games.items()
            }
            await self._send(pong, ref=message.ref)
        elif message.type == "join":
            await self._join(message)
        elif message.type == "leave":
            await self._leave(message)
        else:
            await self._reaction(message)

    async def _join(self, message: Inbound) -> None:
        game_id = message.game_id
        assert game_id is not None and self.user_id is not None
        checked: int | str = "GAME_NOT_FOUND" if not 1 <= game_id <= MAX_ID else 0
        # The participant check runs before any group_add (CONTRACT §4).
        if checked == 0:
            try:
                checked = await _join_check(game_id, self.user_id)
            except DatabaseError:
                checked = "SERVICE_UNAVAILABLE"
        if checked == "USER_NOT_FOUND":
            await self._close_unauthenticated(checked, "That account is no longer active.")
            return
        if isinstance(checked, str):
            await self._error(checked, _JOIN_REFUSALS[checked], ref=message.ref, game_id=game_id)
            return
        try:
            await self._follow(message, ceremony_id=checked)
        except (DatabaseError, RedisError, OSError):
            logger.warning("join of game %s failed: a service is unreachable", game_id)
            self.games.setdefault(game_id, 0)
            await self._forget_game(game_id)
            await self._error(
                "SERVICE_UNAVAILABLE",
                _JOIN_REFUSALS["SERVICE_UNAVAILABLE"],
                ref=message.ref,
                game_id=game_id,
            )

    async def _follow(self, message: Inbound, *, ceremony_id: int) -> None:
        game_id = message.game_id
        assert game_id is not None and self.user_id is not None
        # Follow first, snapshot second: an event committed in between is in
        # the snapshot or held back for this socket, never lost.
        self.joining.setdefault(game_id, [])
        try:
            await self.hub.follow_game(game_id, ceremony_id, self)
            presence = get_presence()
            already_following = game_id in self.games
            first_tab = False
            if not already_following:
                first_tab = await presence.join(
                    game_id=game_id, user_id=self.user_id, channel=self.socket_id
                )
            online = await presence.online(game_id=game_id)
            try:
                snapshot = await _snapshot(
                    game_id=game_id, last_seq=message.last_seq, online_user_ids=online
                )
            except Game.DoesNotExist:
                self.games.setdefault(game_id, 0)
                await self._forget_game(game_id)
                await self._error(
                    "GAME_NOT_FOUND", _JOIN_REFUSALS["GAME_NOT_FOUND"], ref=message.ref
                )
                return
            top = message.board == "top"
            text = snapshot.text(message.ref, top=top)
            if message.ref is not None and not message.ref.isascii():
                # The ref is the one client value in the text: scan the
                # (large) text for lone surrogates only when it may hold one.
                text = wire_text(text)
            await self.send(text_data=text)
            for frame in snapshot.replay:
                await self.send(text_data=events.encode(top_payload(frame) if top else frame))
            if top:
                self.top_games |= {game_id}
            elif game_id in self.top_games:
                self.top_games -= {game_id}
            self.games[game_id] = max(self.games.get(game_id, 0), snapshot.seq)
        finally:
            held = self.joining.pop(game_id, [])
        for held_message in held:
            await self.game_message(held_message)
        if first_tab:
            presence_module.diffs.add(game_id, user_id=self.user_id, name=self.name)

    async def _leave(self, message: Inbound) -> None:
        game_id = message.game_id
        assert game_id is not None
        if game_id not in self.games:
            await self._not_joined(message)
            return
        await self._forget_game(game_id)
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

    async def _forget_game(self, game_id: int) -> None:
        """Stop following a game: group, presence (announcing a last tab leaving)."""
        if game_id in self.top_games:
            self.top_games -= {game_id}
        if self.games.pop(game_id, None) is None or self.user_id is None:
            return
        try:
            await self.hub.unfollow_game(game_id, self)
            presence = get_presence()
            last_tab = await presence.leave(
                game_id=game_id, user_id=self.user_id, channel=self.socket_id
            )
            if last_tab:
                presence_module.diffs.add(game_id, user_id=self.user_id, name=self.name)
        except Exception:
            logger.exception("leaving game %s failed", game_id)

    # --- messages from the hub ------------------------------------------------------------

    async def game_message(self, message: dict[str, Any]) -> None:
        """A game's message from the hub: `game.event` (with seq) or `game.broadcast`."""
        game_id = message["game_id"]
        if self.closed:
            return
        if game_id in self.joining:
            self.joining[game_id].append(message)
            return
        last_seq = self.games.get(game_id)
        if last_seq is None:
            return  # not following it
        if message["type"] != "game.event":
            await self._send_shared(message)
            return
        seq = message["seq"]
        if seq <= last_seq:
            return  # already covered by the snapshot, the replay or a catch-up
        if seq > last_seq + 1 and not message.get("resync"):
            # Something between was lost on the way: the hub replays it from
            # the event log, then this one, in order.
            self.hub.catch_up(game_id)
            return
        self.games[game_id] = seq
        if message.get("removed") == self.user_id:
            await self._forget_game(game_id)
            await self._send({"type": "game:removed", "gameId": game_id})
            return
        await self._send_shared(message, top=game_id in self.top_games)

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

    async def user_message(self, message: dict[str, Any]) -> None:
        """A per-user message for this socket's user: `user.signed_out`."""
        if not self.closed and message["type"] == "user.signed_out":
            await self._close_unauthenticated("AUTH_REQUIRED", "You signed out.")

    async def restart_notice(self) -> None:
        """The process is shutting down: tell the client to reconnect at once."""
        if not self.closed:
            await self._close(CLOSE_RESTARTING)

    # --- outbound helpers ----------------------------------------------------------------

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except Disconnected:
            # The client left; its websocket.disconnect is queued behind the
            # group message we were delivering. Nothing to report.
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


# --- process-wide jobs, one per hub rather than one per socket ------------------------


@on_new_hub
def _refresh_presence_of_local_sockets(hub: Hub) -> None:
    async def refresh() -> None:
        await get_presence().refresh(
            [
                SocketGames(list(follower.games), follower.user_id, follower.socket_id)
                for follower in hub.followers()
                if isinstance(follower, LeaderboardConsumer)
                and follower.games
                and follower.user_id is not None
            ]
        )

    hub.every(REFRESH_SECONDS, refresh)


@on_new_hub
def _close_with_1012_on_shutdown(hub: Hub) -> None:
    """Under daphne, close every local socket with 1012 before the reactor
    drops the connections, so clients reconnect at once and resume."""
    import sys

    if "twisted.internet.reactor" not in sys.modules:
        return  # not running under daphne (tests, other servers)
    from twisted.internet import defer, reactor

    def notify() -> defer.Deferred:
        async def close_all() -> None:
            sockets = [f for f in hub.followers() if isinstance(f, LeaderboardConsumer)]
            await asyncio.gather(*(s.restart_notice() for s in sockets), return_exceptions=True)
            await asyncio.sleep(0.2)  # let the close frames reach the wire

        return defer.Deferred.fromFuture(asyncio.ensure_future(close_all()))

    reactor.addSystemEventTrigger("before", "shutdown", notify)
