"""A server process's Redis connections: bounded, shared, and given back.

- The channel layer and presence share ONE asyncio pool per event loop (a
  server process has one loop): `async_pool(url)`, and `RedisChannelLayer`
  below, a channels-redis layer whose pools are that shared pool.
- The Django cache (rate limits, WebSocket tickets), used from request
  threads, shares ONE thread-safe pool per process: `CachePool`, given to
  Django's RedisCache as its `pool_class`.

Both pools:

- are bounded (settings.REDIS_POOL_SIZE, REDIS_CACHE_POOL_SIZE) and *block*
  up to REDIS_POOL_TIMEOUT seconds for a free connection when the bound is
  reached, instead of failing with MaxConnectionsError; a burst of sockets
  queues for a connection rather than opening one each;
- close a connection once it has been idle REDIS_POOL_IDLE_SECONDS, so the
  connections (and file descriptors) a burst opened are given back and the
  process returns to its baseline. Idle connections are reused last-in
  first-out, so under a steady load the busy ones stay warm and only the
  surplus grows idle;
- retry a command after a connection error on a new connection, and ping a
  connection that sat unused for a while before using it again: a
  connection left stale by a Redis restart is replaced instead of failing
  its caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer as _ChannelsRedisLayer
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

# Retries of a command after a connection error, each on a fresh connection:
# one is what a stale connection needs; a second covers a Redis that is
# still accepting its first connections after a restart. More would only
# make every call during an outage slower to fail.
RETRIES = 2
# A blocking pop (channels-redis waits 5 s in BZPOPMIN) must not time out.
SOCKET_TIMEOUT = 15
# Connecting to a host that does not answer (rather than refusing) fails
# after this, not after the kernel's minutes of SYN retries.
CONNECT_TIMEOUT = 5
# A connection unused for this long is pinged before its next command.
HEALTH_CHECK_SECONDS = 30

# When a connection was last handed back to its pool (time.monotonic()).
_IDLE_SINCE = "_envelope_idle_since"


def _connection_options(*, sync: bool) -> dict[str, Any]:
    retry_class = Retry if sync else AsyncRetry
    return {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "health_check_interval": HEALTH_CHECK_SECONDS,
        # Only connection errors: a timeout may mean the command ran, and a
        # slow Redis is not made faster by sending it twice.
        "retry": retry_class(
            ExponentialWithJitterBackoff(base=0.05, cap=0.5),
            RETRIES,
            supported_errors=(RedisConnectionError,),
        ),
    }


def idle_seconds() -> float:
    return float(settings.REDIS_POOL_IDLE_SECONDS)


# --- asyncio: the channel layer and presence --------------------------------------


class TrimmedBlockingPool(aioredis.BlockingConnectionPool):
    """redis-py's asyncio BlockingConnectionPool that closes connections idle
    for `idle_seconds`. A timer runs only while the pool holds idle
    connections; an idle process at its baseline has none."""

    def __init__(self, *, idle_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.idle_seconds = idle_seconds
        self._trim_timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[Any]] = set()

    async def release(self, connection: Any) -> None:
        setattr(connection, _IDLE_SINCE, time.monotonic())
        await super().release(connection)
        if self._trim_timer is None:
            self._trim_timer = asyncio.get_running_loop().call_later(self.idle_seconds, self._trim)

    def _trim(self) -> None:
        self._trim_timer = None
        now = time.monotonic()
        # No await between reading and replacing the list: no task can take
        # one of these connections meanwhile.
        keep, stale = [], []
        for connection in self._available_connections:
            idle_for = now - getattr(connection, _IDLE_SINCE, now)
            (stale if idle_for >= self.idle_seconds else keep).append(connection)
        self._available_connections[:] = keep
        if stale:
            task = asyncio.get_running_loop().create_task(_disconnect_all(stale))
            self._closing.add(task)  # a reference, or the task may be collected
            task.add_done_callback(self._closing.discard)
        if keep:
            oldest = min(getattr(c, _IDLE_SINCE, now) for c in keep)
            self._trim_timer = asyncio.get_running_loop().call_later(
                max(oldest + self.idle_seconds - now, 0.05), self._trim
            )

    async def disconnect(self, inuse_connections: bool = True) -> None:
        if self._trim_timer is not None:
            self._trim_timer.cancel()
            self._trim_timer = None
        await super().disconnect(inuse_connections)


async def _disconnect_all(connections: list[Any]) -> None:
    # A connection that fails to close cleanly (Redis already gone) is closed
    # all the same: nothing to report.
    await asyncio.gather(*(c.disconnect() for c in connections), return_exceptions=True)


# event loop → Redis URL → its pool. redis.asyncio connections belong to the
# loop that made them; tests run a loop each.
_async_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, TrimmedBlockingPool]]
_async_pools = weakref.WeakKeyDictionary()


def async_pool(url: str) -> TrimmedBlockingPool:
    """The running loop's pool for `url`, shared by everything on that loop."""
    loop = asyncio.get_running_loop()
    pools = _async_pools.setdefault(loop, {})
    pool = pools.get(url)
    if pool is None:
        pool = pools[url] = TrimmedBlockingPool.from_url(
            url,
            max_connections=settings.REDIS_POOL_SIZE,
            timeout=settings.REDIS_POOL_TIMEOUT,
            idle_seconds=idle_seconds(),
            **_connection_options(sync=False),
        )
    return pool


class RedisChannelLayer(_ChannelsRedisLayer):
    """channels-redis' layer on the loop's shared pool. channels-redis builds
    a plain ConnectionPool from each `hosts` entry (its class cannot be
    configured), so this layer takes the entry's `address` only; the pool's
    size and options are REDIS_POOL_* for the whole process. Its receive
    loop holds one of the pool's connections in BZPOPMIN at any time."""

    def create_pool(self, index: int) -> TrimmedBlockingPool:
        host = self.hosts[index]
        if set(host) != {"address"}:
            raise ValueError(
                "hosts entries take only an address: the pool is configured by REDIS_POOL_*"
            )
        return async_pool(host["address"])


# --- threads: the Django cache ----------------------------------------------------


class CachePool(redis.BlockingConnectionPool):
    """The Django cache's pool: one per process and URL, however many cache
    objects Django makes (its cache handler makes one per thread or request
    context, each of which would otherwise open a pool of its own).
    Thread-safe; closes connections idle `idle_seconds`, from a timer thread
    that runs only while the pool holds idle connections."""

    _shared: dict[str, CachePool] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> CachePool:  # type: ignore[override]
        with cls._shared_lock:
            pool = cls._shared.get(url)
            if pool is None:
                kwargs = {
                    **_connection_options(sync=True),
                    "max_connections": settings.REDIS_CACHE_POOL_SIZE,
                    "timeout": settings.REDIS_POOL_TIMEOUT,
                    **kwargs,
                }
                pool = cls._shared[url] = super().from_url(url, **kwargs)
            return pool

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.idle_seconds = idle_seconds()
        self._trim_lock = threading.Lock()
        self._trim_timer: threading.Timer | None = None

    def release(self, connection: Any) -> None:
        setattr(connection, _IDLE_SINCE, time.monotonic())
        super().release(connection)
        self._arm(self.idle_seconds)

    def _arm(self, delay: float) -> None:
        with self._trim_lock:
            if self._trim_timer is None:
                self._trim_timer = threading.Timer(delay, self._trim)
                self._trim_timer.daemon = True
                self._trim_timer.start()

    def _trim(self) -> None:
        with self._trim_lock:
            self._trim_timer = None
        now = time.monotonic()
        stale, oldest = [], None
        # The queue's own mutex: no thread takes a connection while we swap
        # the stale ones for the empty slots the pool refills on demand.
        with self.pool.mutex:
            slots = self.pool.queue
            for index, connection in enumerate(slots):
                if connection is None:
                    continue
                since = getattr(connection, _IDLE_SINCE, now)
                if now - since >= self.idle_seconds:
                    slots[index] = None
                    stale.append(connection)
                elif oldest is None or since < oldest:
                    oldest = since
        for connection in stale:
            with contextlib.suppress(ValueError):  # the pool was reset meanwhile
                self._connections.remove(connection)
            connection.disconnect()
        if oldest is not None:
            self._arm(max(oldest + self.idle_seconds - now, 0.05))
