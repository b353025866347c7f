"""Our daphne `Server`: daphne's own, with the classes of this package.

daphne builds everything from its `Server`: `run()` makes an `HTTPFactory`,
whose requests (`WebRequest`) upgrade to WebSocket connections made by the
server's `ws_factory` (a `WebSocketFactory`, whose protocol is daphne's
`WebSocketProtocol`), and `create_application` starts an application per
connection. Our subclasses of each change what server/close_codes.py,
server/memory.py and server/prepared_send.py describe; daphne's classes
themselves are not modified, so nothing changes for anything else in the
process that uses them.

Importing this module imports daphne.server, which installs Twisted's asyncio
reactor: import it before anything imports twisted.internet.reactor (the
entry points do).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from autobahn.exception import Disconnected
from daphne import http_protocol, ws_protocol
from daphne import server as daphne_server
from twisted.internet import defer

from server.close_codes import CloseCodes
from server.extension import EXTENSION, ClientGone, shutdown_hooks
from server.memory import InputQueue, OptionsOnTheClass, ReleaseAfterUpgrade
from server.prepared_send import PreparedSend
from server.versions import check_versions

logger = logging.getLogger(__name__)


class WebSocketProtocol(CloseCodes, ws_protocol.WebSocketProtocol):
    """daphne's WebSocket protocol, with the contract's close codes and inbound limit."""


class WebSocketFactory(OptionsOnTheClass, ws_protocol.WebSocketFactory):
    """daphne's WebSocket factory: our protocol, its options on the class."""

    protocol = WebSocketProtocol


class WebRequest(ReleaseAfterUpgrade, http_protocol.WebRequest):
    """daphne's HTTP request: lets go of the HTTP channel after an upgrade."""


class HTTPFactory(http_protocol.HTTPFactory):
    """daphne's HTTP factory, making our requests."""

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            protocol.requestFactory = WebRequest
        return protocol


class Server(daphne_server.Server):
    """daphne's `Server` with the classes above; refuses to be made on daphne,
    Twisted or autobahn versions it was not tested with (server/versions.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_versions()
        super().__init__(*args, **kwargs)

    # daphne's run() makes its two factories by assigning these attributes,
    # then configures them and listens with them: what it assigns is
    # replaced by ours, made with the same arguments. (A copy of run() would
    # do the same with 60 more lines of daphne to keep in step.) run() checks
    # that they were assigned, in case daphne ever names them otherwise.
    @property
    def http_factory(self) -> HTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: Any) -> None:
        self._http_factory = factory if isinstance(factory, HTTPFactory) else HTTPFactory(self)

    @property
    def ws_factory(self) -> WebSocketFactory:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: Any) -> None:
        if not isinstance(factory, WebSocketFactory):
            factory = WebSocketFactory(self, server=self.server_name)
        self._ws_factory = factory

    def run(self) -> None:
        daphne_server.reactor.callWhenRunning(self._check_factories)
        daphne_server.reactor.addSystemEventTrigger("before", "shutdown", self._before_shutdown)
        super().run()

    def _before_shutdown(self) -> Any:
        """The application's shutdown hooks (server/extension.py), awaited
        before the reactor drops the connections."""
        hooks = shutdown_hooks()
        if not hooks:
            return None

        async def run_hooks() -> None:
            await asyncio.gather(*(hook() for hook in hooks), return_exceptions=True)

        return defer.Deferred.fromFuture(asyncio.ensure_future(run_hooks()))

    def _check_factories(self) -> None:
        made = (getattr(self, "_http_factory", None), getattr(self, "_ws_factory", None))
        if not (isinstance(made[0], HTTPFactory) and isinstance(made[1], WebSocketFactory)):
            logger.critical(
                "daphne's Server.run() did not make its factories through "
                "http_factory/ws_factory: server/daphne_server.py no longer fits "
                "this daphne; stopping"
            )
            self.abort_start = True
            self.stop()

    async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
        """daphne's, with a send on a connection the client closed raising
        the OSError ASGI asks for (server/extension.py), not autobahn's
        exception: the application need not know autobahn."""
        try:
            await super().handle_reply(protocol, message)
        except Disconnected as gone:
            raise ClientGone(str(gone)) from gone

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> InputQueue | None:
        """daphne 4.2's Server.create_application, with an InputQueue
        (server/memory.py) and the prepared-send extension on WebSocket scopes
        (server/prepared_send.py)."""
        if scope.get("type") == "websocket":
            extensions = dict(scope.get("extensions") or {})
            extensions[EXTENSION] = PreparedSend(protocol)
            scope["extensions"] = extensions
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
