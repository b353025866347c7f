"""Delivery that does not depend on the channel layer (docs/protocol.md, "Delivery
guarantee"): lost, reordered and never-sent messages are made good from the
event log, in seq order, exactly once per socket, with no client action."""

from __future__ import annotations

import asyncio
import json
import time
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.models import User
from accounts.tickets import ticket_issue
from games.services import category_reveal, participant_remove
from leaderboard import events, joining
from leaderboard.fanout import get_hub
from tests.ws.conftest import group_members
from tests.ws.test_delivery import categories, drain_presence, joined_socket

pytestmark = pytest.mark.django_db(transaction=True)

reveal = database_sync_to_async(category_reveal)
# Short enough for a quick test, long enough that a frame arriving within
# half of it cannot have come from the periodic check.
CHECK_SECONDS = 1.0


@pytest.fixture
def fast_check(settings):
    settings.ENVELOPE_RECOVERY_SECONDS = CHECK_SECONDS


@pytest.fixture
def no_periodic_check(settings):
    """The periodic check out of the way, to show another path delivers."""
    settings.ENVELOPE_RECOVERY_SECONDS = 60.0


@pytest.fixture
def fast_path_lost():
    """Every game-event message the services send after commit vanishes, as
    if the process died after its commit or Redis dropped it."""
    with mock.patch.object(events, "publish_game_events") as publish:
        yield publish


async def test_an_event_never_sent_arrives_from_the_log(hello, party, fast_check, fast_path_lost):
    host, _ = await joined_socket(hello, party.host, party.game)
    player, _ = await joined_socket(hello, party.player, party.game)
    await drain_presence(host, player)
    (first, nominees), *_ = await categories(party.game)
    await reveal(category_id=first, nomination_id=nominees[0])
    assert fast_path_lost.called
    started = time.monotonic()
    for socket in (host, player):
        frames = [await socket.recv(wait=3 * CHECK_SECONDS) for _ in range(2)]
        assert [(f["type"], f["seq"]) for f in frames] == [
            ("game:status", 1),
            ("leaderboard:update", 2),
        ]
        assert frames[1]["lastRevealed"]["categoryId"] == first
        assert await socket.nothing()
    # Within one check interval (and a margin for a loaded machine).
    assert time.monotonic() - started < 2.5 * CHECK_SECONDS


async def test_a_gap_is_filled_from_the_log_before_the_later_event(hello, party, no_periodic_check):
    """The later event's message arrives first (two senders racing): the socket
    gets the missing one from the log, then the later one, never out of order."""
    socket, _ = await joined_socket(hello, party.player, party.game)
    await drain_presence(socket)
    with mock.patch.object(events, "publish_game_events") as publish:
        (first, nominees), *_ = await categories(party.game)
        await reveal(category_id=first, nomination_id=nominees[0])
    (recorded,) = publish.call_args.args
    wire = [
        events.wire_event(game_id=e.game_id, seq=e.seq, type_=e.type, payload=e.payload)
        for e in recorded
    ]
    layer = get_channel_layer()
    group = events.ceremony_group(party.game.ceremony_id)
    # Only seq 2 is sent; seq 1 is in the log alone.
    await layer.group_send(group, {"type": "game.events", "events": [wire[1]]})
    frames = [await socket.recv(), await socket.recv()]
    assert [(f["type"], f["seq"]) for f in frames] == [
        ("game:status", 1),
        ("leaderboard:update", 2),
    ]
    # A late copy of either is not sent again.
    await layer.group_send(group, {"type": "game.events", "events": wire})
    assert await socket.nothing()


async def test_removal_reaches_the_removed_user_from_the_log(
    hello, party, fast_check, fast_path_lost
):
    host, _ = await joined_socket(hello, party.host, party.game)
    player, _ = await joined_socket(hello, party.player, party.game)
    await drain_presence(host, player)
    await database_sync_to_async(participant_remove)(
        game_id=party.game.pk, actor=party.host, user_id=party.player.pk
    )
    assert await player.recv(wait=3 * CHECK_SECONDS) == {
        "type": "game:removed",
        "gameId": party.game.pk,
    }
    host_frames = [await host.recv(wait=3 * CHECK_SECONDS) for _ in range(2)]
    assert [(f["type"], f["seq"]) for f in host_frames] == [
        ("participant:left", 1),
        ("leaderboard:update", 2),
    ]
    assert [p["userId"] for p in host_frames[1]["players"]] == [party.host.pk]
    # The removed socket no longer follows the game.
    await host.recv_until("presence:diff", wait=3)
    assert await player.nothing()


async def test_a_sign_out_whose_message_was_lost_still_closes_4401(hello, party, fast_check):
    first, _ = await joined_socket(hello, party.player, party.game)
    second = await hello(party.player)
    other = await hello(party.host)
    user = await database_sync_to_async(User.objects.get)(pk=party.player.pk)
    with mock.patch.object(events, "close_user_sockets") as fast_path:
        await database_sync_to_async(user_logged_out.send)(sender=User, request=None, user=user)
    assert fast_path.called
    for socket in (first, second):
        frames = await socket.recv_until("leaderboard:error", wait=3 * CHECK_SECONDS)
        assert frames[-1]["code"] == "AUTH_REQUIRED"
        assert await socket.closed_with() == 4401
    assert await other.nothing(wait=2 * CHECK_SECONDS)


async def test_a_ticket_issued_before_a_sign_out_is_refused(connect, party):
    ticket = ticket_issue(user_id=party.player.pk)
    await asyncio.sleep(0.01)  # the sign-out comes strictly after the ticket
    user = await database_sync_to_async(User.objects.get)(pk=party.player.pk)
    await database_sync_to_async(user_logged_out.send)(sender=User, request=None, user=user)
    accepted, _, socket = await connect(ticket=ticket)
    assert accepted
    frame = await socket.recv()
    assert (frame["type"], frame["code"]) == ("leaderboard:error", "AUTH_REQUIRED")
    assert await socket.closed_with() == 4401
    # A ticket issued after the sign-out works.
    accepted, _, socket = await connect(ticket=ticket_issue(user_id=party.player.pk))
    assert (await socket.recv())["type"] == "hello"


async def test_pong_reports_each_followed_games_newest_seq(
    hello, party, fast_path_lost, no_periodic_check
):
    """Even when this socket has not been sent the game's latest event yet, a
    ping tells the client how far the game is (from the hub's check)."""
    socket, joined = await joined_socket(hello, party.player, party.game)
    await drain_presence(socket)
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong", "seqs": {str(party.game.pk): joined["seq"]}}
    (first, nominees), *_ = await categories(party.game)
    await reveal(category_id=first, nomination_id=nominees[0])
    from leaderboard.fanout import get_hub

    hub = get_hub()
    await hub.check()
    frames = [await socket.recv(), await socket.recv()]
    assert [f["seq"] for f in frames] == [1, 2]
    await socket.send({"type": "ping", "t": 7})
    assert await socket.recv() == {"type": "pong", "t": 7, "seqs": {str(party.game.pk): 2}}


async def test_a_failing_channel_layer_is_rejoined_and_caught_up(
    hello, party, fast_path_lost, no_periodic_check
):
    """A receive error (Redis restarting) makes the hub re-add its groups and
    replay from the log at once, without waiting for the periodic check."""
    socket, _ = await joined_socket(hello, party.player, party.game)
    await drain_presence(socket)
    from leaderboard.fanout import get_hub

    hub = get_hub()
    layer = hub.layer
    real_receive = layer.receive
    failures = [ConnectionError("Redis restarting")]

    async def receive_failing_once(channel):
        if failures:
            raise failures.pop()
        return await real_receive(channel)

    (first, nominees), *_ = await categories(party.game)
    await reveal(category_id=first, nomination_id=nominees[0])
    rejoined = mock.AsyncMock(wraps=layer.group_add)
    with (
        mock.patch.object(layer, "receive", receive_failing_once),
        mock.patch.object(layer, "group_add", rejoined),
    ):
        # Wake the hub's blocked receive so it calls the failing one.
        await layer.send(hub.channel, {"type": "game.broadcast", "game_id": 0, "text": "{}"})
        frames = [await socket.recv(wait=1.5), await socket.recv(wait=1.5)]
    assert [f["seq"] for f in frames] == [1, 2]
    groups = {call.args[0] for call in rejoined.call_args_list}
    assert groups == {events.USERS_GROUP, events.ceremony_group(party.game.ceremony_id)}


def test_wire_event_names_the_removed_user_only_on_participant_left():
    left = {"type": "participant:left", "gameId": 1, "seq": 3, "userId": 9}
    joined = {"type": "participant:joined", "gameId": 1, "seq": 4, "userId": 9}
    assert events.wire_event(game_id=1, seq=3, type_="participant:left", payload=left)[3] == 9
    wire = events.wire_event(game_id=1, seq=4, type_="participant:joined", payload=joined)
    assert wire[3] is None
    assert json.loads(wire[2]) == joined


@pytest.mark.parametrize(
    "failure",
    [OperationalError("the database is restarting"), RedisConnectionError("Redis is away")],
)
async def test_a_join_while_a_service_is_away_is_refused_and_the_socket_stays_open(
    hello, party, failure
):
    socket = await hello(party.player)
    with mock.patch.object(joining, "_snapshot", side_effect=failure):
        reply = await socket.join(party.game.pk, ref="j")
    assert (reply["type"], reply["code"], reply["ref"], reply["gameId"]) == (
        "leaderboard:error",
        "SERVICE_UNAVAILABLE",
        "j",
        party.game.pk,
    )
    assert await group_members(events.ceremony_group(party.game.ceremony_id)) == set()
    # Once the service is back, the same socket joins.
    assert (await socket.join(party.game.pk))["type"] == "joined"


async def test_a_reveal_reaches_this_process_sockets_while_the_channel_layer_is_stuck(
    hello, party, no_periodic_check
):
    """The staff's request does not wait on the channel layer (the server's
    outbox sends after it returned). This process's own sockets get the
    events from the outbox at once, in seq order, without the layer; the
    layer still gets them in commit order, for the other processes, and its
    copy coming back is not handed out here again."""
    socket, _ = await joined_socket(hello, party.player, party.game)
    await drain_presence(socket)
    hub = get_hub()
    layer = get_channel_layer()
    real_group_send = layer.group_send
    release = asyncio.Event()
    sent: list[list[int]] = []

    async def stuck_group_send(group, message):
        if message["type"] == "game.events":
            await release.wait()
            sent.append([seq for _, seq, _, _ in message["events"]])
        await real_group_send(group, message)

    handed_out: list[int] = []
    real_deliver_event = hub._deliver_event

    async def counted_deliver_event(game_id, seq, *args, **kwargs):
        handed_out.append(seq)
        return await real_deliver_event(game_id, seq, *args, **kwargs)

    cats = await categories(party.game)
    with (
        mock.patch.object(layer, "group_send", stuck_group_send),
        mock.patch.object(hub, "_deliver_event", counted_deliver_event),
    ):
        # Each returns though its message cannot be sent yet.
        await asyncio.wait_for(reveal(category_id=cats[0][0], nomination_id=cats[0][1][0]), 5)
        await asyncio.wait_for(reveal(category_id=cats[1][0], nomination_id=cats[1][1][0]), 5)
        frames = [await socket.recv() for _ in range(3)]
        assert [f["seq"] for f in frames] == [1, 2, 3]
        assert sent == []
        release.set()
        for _ in range(50):
            if len(sent) == 2:
                break
            await asyncio.sleep(0.05)
        assert sent == [[1, 2], [3]]
        # The layer's copies came back to this process: not handed out again.
        assert await socket.nothing()
    assert handed_out == [1, 2, 3]
