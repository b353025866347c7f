"""Three things daphne keeps per WebSocket connection that it does not need.

- **Protocol options.** When a connection is made, autobahn copies each of
  the protocol's options (timeouts, limits, allowed origins, ...) from the
  factory onto the protocol instance, unless the protocol already has the
  option, which nearly doubles the size of every socket's attribute dict.
  daphne configures its one factory once, at start, and never changes it:
  `OptionsOnTheClass` puts the factory's options on its protocol class as soon
  as they are set, and every connection reads them from there. Each factory
  gets a protocol class of its own, so two factories in one process (tests)
  do not share options.
- **The upgrade request.** daphne hands an upgraded connection's transport to
  the WebSocket protocol, but the HTTP channel that parsed the upgrade stays
  registered as the transport's producer and keeps the request (headers,
  body buffer, addresses) for the life of the socket, in a reference cycle
  only a full garbage collection would free. `ReleaseAfterUpgrade`: once the
  WebSocket protocol has the transport, the channel is unregistered and lets
  go of its requests.
- **The input queue.** Each connection's application reads its events from
  an `asyncio.Queue`, which also carries a size limit, a queue of waiting
  putters and a `join()` event: four deques per connection. `InputQueue` does
  what daphne and Channels use, `put_nowait()` and `get()`, and holds no deque
  while it is empty (our `Server.create_application` makes one per
  connection).

What each saves per connection (bench/fanout.py --mode memory): bench/README.md,
"The server seam's figures".
"""

from __future__ import annotations

import asyncio
from collections import deque
from inspect import isfunction
from typing import Any


class OptionsOnTheClass:
    """Mixin for daphne's `WebSocketFactory` (autobahn's server factory)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A subclass per factory: the options set below stay this factory's.
        self.protocol = type(self.protocol.__name__, (self.protocol,), {})
        super().__init__(*args, **kwargs)

    def setProtocolOptions(self, *args: Any, **kwargs: Any) -> None:
        super().setProtocolOptions(*args, **kwargs)
        for name in self.protocol.CONFIG_ATTRS:
            value = getattr(self, name)
            # A plain function (perMessageCompressionAccept) must not become
            # a method of the protocol: it is called without the protocol.
            setattr(self.protocol, name, staticmethod(value) if isfunction(value) else value)


class ReleaseAfterUpgrade:
    """Mixin for daphne's `WebRequest` (a Twisted `http.Request`)."""

    def process(self) -> Any:
        channel, transport = self.channel, self.transport
        result = super().process()
        # daphne sets the request's transport to None when it hands the
        # connection to the WebSocket protocol (before process() returns: the
        # upgrade branch does not wait); any other outcome is HTTP.
        if transport is None or self.transport is not None or channel is None:
            return result
        if getattr(transport, "producer", None) is channel:
            transport.unregisterProducer()
        channel.requests = []
        return result


class InputQueue:
    """A connection's events on their way to its application: `put_nowait()`
    from daphne's protocol, `get()` by the application (one reader at a time,
    as every ASGI application reads its `receive`)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        # The item stays queued until it is taken: a reader cancelled after
        # the wake-up leaves it for the next get().
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item
