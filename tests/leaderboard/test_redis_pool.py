"""The process's Redis pools (leaderboard/redis_pool.py) and presence on them:
bounded and blocking, idle connections closed, stale ones replaced, an
outage logged once. The end-to-end view (real daphne processes, a burst of
1,000 sockets) is tests/e2e/test_bounded_resources.py."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from leaderboard import redis_pool
from leaderboard.presence import RedisPresence
from leaderboard.redis_pool import CachePool, TrimmedBlockingPool
from tests.faults import PrivateRedis, require_redis_server


async def test_a_full_pool_makes_callers_wait_then_closes_what_stays_idle(redis_url):
    pool = TrimmedBlockingPool.from_url(redis_url, max_connections=3, timeout=0.2, idle_seconds=0.3)
    try:
        taken = [await pool.get_connection() for _ in range(3)]
        # The bound reached: a fourth caller waits for a connection, then gives
        # up with the pool's own error, not MaxConnectionsError.
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await pool.get_connection()
        waiting = asyncio.create_task(pool.get_connection())
        await asyncio.sleep(0.05)
        await pool.release(taken.pop())
        taken.append(await waiting)  # handed the released one
        for connection in taken:
            await pool.release(connection)
        assert len(pool._available_connections) == 3
        assert all(connection.is_connected for connection in taken)

        await asyncio.sleep(0.6)
        assert pool._available_connections == []
        assert not any(connection.is_connected for connection in taken)
        # And the pool serves again, with a new connection.
        connection = await pool.get_connection()
        await pool.release(connection)
    finally:
        await pool.aclose()


async def test_connections_in_use_are_kept_and_busy_ones_stay_warm(redis_url):
    pool = TrimmedBlockingPool.from_url(redis_url, max_connections=5, timeout=1, idle_seconds=0.3)
    try:
        held = await pool.get_connection()
        spare = await pool.get_connection()
        await pool.release(spare)
        for _ in range(6):  # used every 0.1 s: never idle for 0.3 s
            await asyncio.sleep(0.1)
            again = await pool.get_connection()
            assert again is spare  # last in, first out
            await pool.release(again)
        assert spare.is_connected
        await asyncio.sleep(0.6)
        assert pool._available_connections == []
        assert held.is_connected  # in use (a blocking pop): never closed under it
        await pool.release(held)
    finally:
        await pool.aclose()


def test_the_cache_pool_is_one_per_process_and_closes_idle_connections(redis_url, settings):
    settings.REDIS_POOL_IDLE_SECONDS = 0.3
    url = f"{redis_url}?client_name=cache-pool-test"  # a URL of its own: a pool of its own
    pool = CachePool.from_url(url, max_connections=4, timeout=1)
    try:
        assert CachePool.from_url(url, max_connections=4, timeout=1) is pool
        client = redis.Redis(connection_pool=pool)
        barrier = threading.Barrier(4)

        def use() -> None:
            connection = pool.get_connection()
            barrier.wait(5)  # all four connections in use at once
            pool.release(connection)
            client.ping()

        threads = [threading.Thread(target=use) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert len(pool._connections) == 4
        deadline = time.monotonic() + 5
        while pool._connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool._connections == []
        assert client.ping()  # served again, with a new connection
    finally:
        CachePool._shared.pop(url, None)
        pool.disconnect()


@pytest.fixture
def private_redis():
    with PrivateRedis(require_redis_server()) as private:
        yield private


async def test_presence_survives_a_redis_restart_and_logs_an_outage_once(
    private_redis, settings, caplog
):
    settings.REDIS_POOL_IDLE_SECONDS = 60  # nothing trimmed: every pooled connection goes stale
    store = RedisPresence(private_redis.url)
    users = range(1, 21)
    await asyncio.gather(*(store.join(game_id=1, user_id=u, channel=f"a{u}") for u in users))
    # Joins share one pipeline per batch; leaves go one by one and fill the pool.
    await asyncio.gather(*(store.leave(game_id=1, user_id=u, channel="none") for u in users))
    pool = redis_pool.async_pool(private_redis.url)
    assert len(pool._available_connections) > 1

    await asyncio.to_thread(private_redis.restart)
    # The first calls after the restart, each on a connection the restart
    # left stale: retried on a new one, none fails.
    await asyncio.gather(*(store.leave(game_id=1, user_id=u, channel="none") for u in users))
    firsts = await asyncio.gather(
        *(store.join(game_id=1, user_id=u, channel=f"b{u}") for u in users)
    )
    assert all(firsts)  # the restart emptied Redis: each is its user's first tab again
    assert sorted(await store.online(game_id=1)) == list(users)

    caplog.set_level(logging.WARNING, logger="leaderboard.presence")
    await asyncio.to_thread(private_redis.stop)
    # Redis away: leaves are given up, each without a word of its own.
    lefts = await asyncio.gather(
        *(store.leave(game_id=1, user_id=u, channel=f"b{u}") for u in users)
    )
    assert not any(lefts)
    with pytest.raises(RedisConnectionError):
        await store.join(game_id=1, user_id=99, channel="c")
    await asyncio.to_thread(private_redis.start)
    assert await store.join(game_id=1, user_id=99, channel="c")

    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "unreachable" in messages[0] and "answers again after 21" in messages[1], messages
    assert not any(record.exc_info for record in caplog.records)


def test_hosts_with_options_are_refused():
    # Options in a hosts entry would silently split the shared pool in two.
    layer = redis_pool.RedisChannelLayer(
        hosts=[{"address": "redis://127.0.0.1:1/0", "max_connections": 5}]
    )
    with pytest.raises(ValueError, match="REDIS_POOL"):
        layer.create_pool(0)
