"""Three things daphne keeps per WebSocket connection that it does not need.

- **Protocol options.** When a connection is made, autobahn copies each of
  the protocol's 29 options (timeouts, limits, allowed origins, ...) from the
  factory onto the protocol instance, unless the protocol already has the
  option. With the copies a socket's attribute dict holds 109 entries in
  3.3 KB; without them, 80 in 1.6 KB. daphne configures its one factory once,
  at start, and never changes it: the factory's options are put on the
  protocol class as soon as they are set, and every connection reads them
  from there.
- **The upgrade request.** daphne hands an upgraded connection's transport to
  the WebSocket protocol, but the HTTP channel that parsed the upgrade stays
  registered as the transport's producer and keeps the request (headers,
  body buffer, addresses) for the life of the socket, in a reference cycle
  only a full garbage collection would free. Once the WebSocket protocol has
  the transport, the channel is unregistered and lets go of its requests.
- **The input queue.** Each connection's application reads its events from
  an `asyncio.Queue`, which also carries a size limit, a queue of waiting
  putters and a `join()` event: four deques, about 2.8 KB per connection.
  `InputQueue` does what daphne and Channels use, `put_nowait()` and `get()`,
  and holds no deque while it is empty.

bench/fanout.py --mode memory, 2,000 idle joined sockets: 38.8 KB per
connection with none of them, 36.8 KB with the first, 33.3 KB with the first
two, 29.7 KB with all three.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from inspect import isfunction
from typing import Any


def install() -> None:
    try:
        from daphne.http_protocol import WebRequest
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketFactory
    except ImportError:  # pragma: no cover - daphne is a dependency
        return
    if getattr(WebSocketFactory, "envelope_memory", False):
        return
    WebSocketFactory.setProtocolOptions = _options_on_the_class(WebSocketFactory.setProtocolOptions)
    WebRequest.process = _release_after_upgrade(WebRequest.process)
    Server.create_application = _create_application
    WebSocketFactory.envelope_memory = True


def _options_on_the_class(set_options: Any) -> Any:
    def setProtocolOptions(self: Any, *args: Any, **kwargs: Any) -> None:
        set_options(self, *args, **kwargs)
        for name in self.protocol.CONFIG_ATTRS:
            value = getattr(self, name)
            # A plain function (perMessageCompressionAccept) must not become
            # a method of the protocol: it is called without the protocol.
            setattr(self.protocol, name, staticmethod(value) if isfunction(value) else value)

    return setProtocolOptions


def _release_after_upgrade(process: Any) -> Any:
    def release_after_upgrade(request: Any) -> None:
        channel, transport = request.channel, request.transport
        process(request)
        # daphne sets the request's transport to None when it hands the
        # connection to the WebSocket protocol; any other outcome is HTTP.
        if transport is None or request.transport is not None or channel is None:
            return
        if getattr(transport, "producer", None) is channel:
            transport.unregisterProducer()
        channel.requests = []

    return release_after_upgrade


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


def _create_application(self: Any, protocol: Any, scope: dict[str, Any]) -> InputQueue | None:
    """daphne 4.2's Server.create_application, with an InputQueue."""
    assert "application_instance" not in self.connections[protocol]
    input_queue = InputQueue()
    scope.setdefault("asgi", {"version": "3.0"})
    application_instance = self.application(
        scope=scope,
        receive=input_queue.get,
        send=partial(self.handle_reply, protocol),
    )
    if protocol not in self.connections:
        return None
    self.connections[protocol]["application_instance"] = asyncio.ensure_future(
        application_instance, loop=asyncio.get_event_loop()
    )
    return input_queue
