"""Presence (who is watching) and reactions (docs/protocol.md)."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from games.models import Category
from games.services import category_reveal
from leaderboard import presence, reactions
from leaderboard.fanout import get_hub
from leaderboard.presence import TTL_SECONDS, MemoryPresence, SocketGames
from tests.factories import ParticipantFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def test_two_tabs_of_one_user_count_once(hello, party):
    tab1, tab2 = await hello(party.player), await hello(party.player)
    joined1 = await tab1.join(party.game.pk)
    assert joined1["online"] == [{"userId": party.player.pk, "name": "Player"}]
    diff = await tab1.recv()
    assert diff == {
        "type": "presence:diff",
        "gameId": party.game.pk,
        "joins": [{"userId": party.player.pk, "name": "Player"}],
        "leaves": [],
        "onlineCount": 1,
    }
    joined2 = await tab2.join(party.game.pk)
    assert joined2["online"] == [{"userId": party.player.pk, "name": "Player"}]
    assert await tab1.nothing() and await tab2.nothing()  # second tab: no diff

    host = await hello(party.host)
    joined_host = await host.join(party.game.pk)
    assert {entry["userId"] for entry in joined_host["online"]} == {
        party.host.pk,
        party.player.pk,
    }
    for socket in (tab1, tab2, host):
        diff = await socket.recv()
        assert (diff["joins"], diff["leaves"], diff["onlineCount"]) == (
            [{"userId": party.host.pk, "name": "Hostess"}],
            [],
            2,
        )

    await tab2.send({"type": "leave", "gameId": party.game.pk})
    assert (await tab2.recv())["type"] == "left"
    assert await host.nothing()  # the player still watches in tab1
    await tab1.comm.disconnect()
    diff = await host.recv()
    assert (diff["joins"], diff["leaves"], diff["onlineCount"]) == (
        [],
        [{"userId": party.player.pk, "name": "Player"}],
        1,
    )


async def test_memory_presence_expires_ghosts():
    now = [0.0]
    store = MemoryPresence(clock=lambda: now[0])
    assert await store.join(game_id=1, user_id=7, channel="a") is True
    assert await store.join(game_id=1, user_id=7, channel="b") is False
    now[0] = TTL_SECONDS - 1
    await store.refresh([SocketGames([1], 7, "b")])
    now[0] = TTL_SECONDS + 1  # "a" died without leaving; "b" refreshed
    assert await store.online(game_id=1) == [7]
    assert await store.leave(game_id=1, user_id=7, channel="b") is True
    assert await store.online(game_id=1) == []
    assert await store.leave(game_id=1, user_id=7, channel="b") is False


async def test_redis_presence_expires_ghosts(redis_url):
    from leaderboard.presence import RedisPresence

    now = [1_000_000.0]
    store = RedisPresence(redis_url, clock=lambda: now[0])
    game_id = 987654321
    assert await store.join(game_id=game_id, user_id=7, channel="a") is True
    assert await store.join(game_id=game_id, user_id=7, channel="b") is False
    assert await store.join(game_id=game_id, user_id=8, channel="c") is True
    now[0] += TTL_SECONDS + 1  # every socket's process died
    assert await store.online(game_id=game_id) == []
    assert await store.join(game_id=game_id, user_id=7, channel="d") is True
    assert await store.online(game_id=game_id) == [7]
    assert await store.leave(game_id=game_id, user_id=7, channel="d") is True
    assert await store.leave(game_id=game_id, user_id=7, channel="d") is False


async def test_redis_presence_joins_of_a_burst_share_one_pipeline(redis_url, monkeypatch):
    from leaderboard.presence import RedisPresence

    store = RedisPresence(redis_url)
    game_id = 987654322
    client = store._client()
    pipelines = []
    make_pipeline = client.pipeline

    def counted(*args, **kwargs):
        pipelines.append(1)
        return make_pipeline(*args, **kwargs)

    monkeypatch.setattr(client, "pipeline", counted)
    joins = [(7, "a"), (7, "b"), (8, "c"), (9, "d")]
    answers = await asyncio.gather(
        *(store.join_online(game_id=game_id, user_id=u, channel=c) for u, c in joins)
    )
    assert len(pipelines) == 1
    assert [first for first, _ in answers] == [True, False, True, True]
    assert all(online == [7, 8, 9] for _, online in answers)  # each sees itself
    answers[0][1].append(99)  # each caller owns its list
    assert answers[1][1] == [7, 8, 9]


async def test_redis_presence_refreshes_a_process_sockets_in_batches(redis_url, monkeypatch):
    from leaderboard.presence import RedisPresence

    monkeypatch.setattr(presence, "REFRESH_BATCH", 2)  # 5 sockets: 3 pipelines
    now = [2_000_000.0]
    store = RedisPresence(redis_url, clock=lambda: now[0])
    games = (987654001, 987654002)
    sockets = [SocketGames(list(games), user_id, f"s{user_id}") for user_id in range(1, 6)]
    for socket in sockets:
        for game_id in games:
            await store.join(game_id=game_id, user_id=socket.user_id, channel=socket.channel)
    await store.join(game_id=games[0], user_id=9, channel="not-refreshed")
    client = store._client()
    pipeline = client.pipeline
    executed: list[int] = []  # commands per pipeline sent

    def counted_pipeline(*args, **kwargs):
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        async def counted_execute(*exec_args, **exec_kwargs):
            executed.append(len(pipe))
            return await execute(*exec_args, **exec_kwargs)

        pipe.execute = counted_execute
        return pipe

    monkeypatch.setattr(client, "pipeline", counted_pipeline)
    now[0] += TTL_SECONDS - 1
    await store.refresh(sockets)
    # 4 commands per (socket, game): batches of 2, 2 and 1 socket(s) of 2 games.
    assert executed == [16, 16, 8]
    executed.clear()
    await store.refresh([])  # nothing to refresh: no round trip at all
    assert executed == []
    now[0] += 2  # the joins' expiry passed; the refreshed entries live on
    for game_id in games:
        assert await store.online(game_id=game_id) == [1, 2, 3, 4, 5]


async def test_the_hub_refreshes_every_following_socket_in_one_call(hello, party, monkeypatch):
    host, player = await hello(party.host), await hello(party.player)
    await hello(party.outsider)  # connected, following no game
    for socket in (host, player):
        assert (await socket.join(party.game.pk))["type"] == "joined"
    calls: list[list[SocketGames]] = []

    class Recorder:
        async def refresh(self, sockets):
            calls.append(list(sockets))

    monkeypatch.setattr(presence, "_store", Recorder())
    (job,) = [job for interval, job in get_hub()._periodic if interval == presence.REFRESH_SECONDS]
    await job()
    assert len(calls) == 1  # one call for the process; the idle socket follows nothing
    entries = sorted((entry.user_id, entry.game_ids) for entry in calls[0])
    assert entries == [(party.host.pk, [party.game.pk]), (party.player.pk, [party.game.pk])]
    assert len({entry.channel for entry in calls[0]}) == 2


async def test_reaction_broadcast_reaches_everyone_with_rank(hello, party):
    category = await database_sync_to_async(
        lambda: Category.objects.filter(ceremony_id=party.game.ceremony_id).order_by("order")[0]
    )()
    first_nominee = await database_sync_to_async(
        lambda: category.nominations.order_by("order")[0]
    )()
    await database_sync_to_async(category_reveal)(
        category_id=category.pk, nomination_id=first_nominee.pk
    )
    host, player = await hello(party.host), await hello(party.player)
    await host.join(party.game.pk)
    await player.join(party.game.pk)
    # Diffs within one window are batched: wait until the host has seen both.
    seen: set[int] = set()
    while seen != {party.host.pk, party.player.pk}:
        diff = (await host.recv_until("presence:diff"))[-1]
        seen |= {join["userId"] for join in diff["joins"]}
    await player.recv_until("presence:diff")
    await player.send({"type": "reaction:send", "gameId": party.game.pk, "emoji": "🔥"})
    await host.send({"type": "reaction:send", "gameId": party.game.pk, "emoji": "🍿"})
    for socket in (host, player):  # sender included; both in one batch
        frame = await socket.recv()
        assert frame["type"] == "reaction:broadcast"
        assert frame["gameId"] == party.game.pk
        assert set(frame) == {"type", "gameId", "reactions"}
        by_user = {r["userId"]: r for r in frame["reactions"]}
        assert by_user[party.player.pk]["emoji"] == "🔥"
        assert by_user[party.player.pk]["name"] == "Player"
        assert by_user[party.player.pk]["rank"] == 2
        assert by_user[party.host.pk]["rank"] == 1
        for reaction in frame["reactions"]:
            assert set(reaction) == {"id", "emoji", "userId", "name", "rank", "timestamp"}
            assert isinstance(reaction["timestamp"], int)
        assert len({r["id"] for r in frame["reactions"]}) == 2
        assert await socket.nothing()


async def test_reaction_rank_is_null_off_the_board(hello, party):
    from games.models import Pick
    from games.services import participant_scores_recompute

    await database_sync_to_async(Pick.objects.filter(user=party.player).delete)()
    await database_sync_to_async(participant_scores_recompute)(game_id=party.game.pk)
    player = await hello(party.player)
    await player.join(party.game.pk)
    await player.recv_until("presence:diff")
    await player.send({"type": "reaction:send", "gameId": party.game.pk, "emoji": "💀"})
    frame = await player.recv()
    assert frame["reactions"][0]["rank"] is None


async def test_presence_diffs_of_a_burst_are_batched_into_one_frame(hello, party, monkeypatch):
    """N sockets joining at once must not become N diffs to N sockets."""
    monkeypatch.setattr(presence, "diffs", presence.DiffBatcher(window=0.3))
    host = await hello(party.host)
    await host.join(party.game.pk)
    assert (await host.recv_until("presence:diff"))[-1]["joins"] == [
        {"userId": party.host.pk, "name": party.host.display_name}
    ]
    player_tabs = [await hello(party.player) for _ in range(3)]
    for tab in player_tabs:
        await tab.join(party.game.pk)
    diff = (await host.recv_until("presence:diff"))[-1]
    assert diff["joins"] == [{"userId": party.player.pk, "name": party.player.display_name}]
    assert diff["leaves"] == [] and diff["onlineCount"] == 2
    assert await host.nothing(0.5)


async def test_a_user_who_leaves_and_returns_within_a_window_is_still_announced(
    hello, party, monkeypatch
):
    """A page navigation (leave, then join again) inside one window must still
    reach a socket that joined in between and never saw that user."""
    monkeypatch.setattr(presence, "diffs", presence.DiffBatcher(window=1.0))
    old_tab = await hello(party.player)
    await old_tab.join(party.game.pk)
    await old_tab.recv_until("presence:diff")  # that window is over
    await old_tab.send({"type": "leave", "gameId": party.game.pk})
    assert (await old_tab.recv())["type"] == "left"  # the window of the leave opens
    host = await hello(party.host)
    joined = await host.join(party.game.pk)
    assert [user["userId"] for user in joined["online"]] == [party.host.pk]  # player gone
    new_tab = await hello(party.player)
    await new_tab.join(party.game.pk)
    # One diff for the window: the player left and came back, and is announced
    # (a net of the window's changes would leave them out).
    diff = (await host.recv_until("presence:diff", wait=3))[-1]
    assert sorted(user["userId"] for user in diff["joins"]) == sorted(
        [party.host.pk, party.player.pk]
    )
    assert diff["leaves"] == [] and diff["onlineCount"] == 2
    assert await host.nothing(0.5)


def test_reaction_ids_are_short_and_unique():
    ids = [reactions.reaction_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert max(len(reaction_id) for reaction_id in ids) <= 16  # 8-hex tag, "-", hex counter


async def test_a_windows_diffs_of_many_games_leave_as_one_message_per_ceremony(
    hello, party, monkeypatch
):
    """When a show ends every party's sockets leave at once: one message for
    all the ceremony's diffs of a window, not one per game (a send per game
    ran the Redis pool out of connections), and each socket gets its own
    game's diff only."""
    from unittest import mock

    from channels.layers import get_channel_layer

    from tests.factories import GameFactory

    # Long enough that both joins fall in one window on a slow machine.
    monkeypatch.setattr(presence, "diffs", presence.DiffBatcher(window=1.0))
    other_game = await database_sync_to_async(GameFactory)(
        ceremony=party.game.ceremony, host=party.player
    )
    layer = get_channel_layer()
    with mock.patch.object(layer, "group_send", wraps=layer.group_send) as group_send:
        first = await hello(party.host)
        second = await hello(party.player)
        await first.join(party.game.pk)
        await second.join(other_game.pk)
        diffs = [(await s.recv_until("presence:diff"))[-1] for s in (first, second)]
    assert [(d["gameId"], d["joins"][0]["userId"]) for d in diffs] == [
        (party.game.pk, party.host.pk),
        (other_game.pk, party.player.pk),
    ]
    (message,) = [
        call.args[1]
        for call in group_send.call_args_list
        if call.args[1]["type"] == "game.broadcasts"
    ]
    assert sorted(game_id for game_id, _ in message["frames"]) == sorted(
        [party.game.pk, other_game.pk]
    )
    assert await first.nothing() and await second.nothing()


async def test_the_online_lists_are_capped_and_online_count_is_the_whole_count(
    hello, party, settings, monkeypatch
):
    # A burst of N joins must not cost O(N²) bytes: each frame names at most
    # ENVELOPE_ONLINE_LIST_LIMIT users (the lowest ids in `joined`).
    settings.ENVELOPE_ONLINE_LIST_LIMIT = 2
    guests = await database_sync_to_async(
        lambda: [ParticipantFactory(game=party.game).user for _ in range(3)]
    )()
    watcher = await hello(party.host)
    joined = await watcher.join(party.game.pk)
    assert (joined["onlineCount"], len(joined["online"])) == (1, 1)
    await watcher.recv_until("presence:diff")

    sockets = [await hello(user) for user in (party.player, *guests)]
    # One window long enough for the four joins to share a diff.
    monkeypatch.setattr(presence, "diffs", presence.DiffBatcher(window=0.5))
    await asyncio.gather(*(socket.join(party.game.pk) for socket in sockets))
    diff = (await watcher.recv_until("presence:diff", wait=3))[-1]
    assert (len(diff["joins"]), diff["onlineCount"]) == (2, 5), diff

    late = await hello(party.outsider)
    await database_sync_to_async(ParticipantFactory)(game=party.game, user=party.outsider)
    joined = await late.join(party.game.pk)
    lowest = sorted([party.host.pk, party.player.pk, *(user.pk for user in guests)])[:2]
    assert [entry["userId"] for entry in joined["online"]] == lowest
    assert joined["onlineCount"] == 6
