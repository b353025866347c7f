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
from autobahn.websocket.types import ConnectionDeny
from daphne import http_protocol, ws_protocol
from daphne import server as daphne_server
from twisted.internet import defer, tcp

from server import autobahn_debug
from server.close_codes import CloseCodes
from server.extension import EXTENSION, ClientGone, shutdown_hooks, start_draining
from server.memory import InputQueue, OptionsOnTheClass, ReleaseAfterUpgrade
from server.prepared_send import DirectWriteServer, PreparedSend
from server.versions import check_versions

logger = logging.getLogger(__name__)


class WebSocketProtocol(CloseCodes, ws_protocol.WebSocketProtocol):
    """daphne's WebSocket protocol, with the contract's close codes and inbound
    limit, refusing upgrades with HTTP 503 while the server drains."""

    refused_draining = False

    def onConnect(self, request: Any) -> Any:
        if self.factory.server_class.draining:
            # Before daphne registers the connection or makes an application:
            # no ticket is used up, and a proxy may try another server
            # (nginx `proxy_next_upstream http_503`). docs/operations.md.
            self.refused_draining = True
            logger.info("websocket upgrade refused with 503: the server is draining")
            raise ConnectionDeny(503, "Service Unavailable: the server is restarting")
        return super().onConnect(request)

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        if not self.refused_draining:  # daphne never saw a refused one
            super().onClose(wasClean, code, reason)


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


# daphne's interval between timeout checks, and the connections checked in
# one loop turn (about 5 ms of pings when every one of them is due).
TIMEOUT_CHECK_SECONDS = 2
TIMEOUT_CHECK_SLICE = 100


class Server(daphne_server.Server):
    """daphne's `Server` with the classes above; refuses to be made on daphne,
    Twisted or autobahn versions it was not tested with (server/versions.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_versions()
        autobahn_debug.install()
        super().__init__(*args, **kwargs)

    def timeout_checker(self) -> None:
        """daphne's check of every connection's timeouts, which also sends the
        WebSocket pings, a slice of connections per loop turn.

        daphne checks them all in one callback every 2 s, and pings every
        socket idle for `ping_interval`: the sockets of a burst of joins come
        due together, and one callback pinged a thousand of them while a
        reveal waited behind it (bench/README.md, "The server seam's
        figures"). Between slices the loop runs whatever is ready.
        """
        self._check_slice(list(self.connections), 0)

    def _check_slice(self, protocols: list[Any], start: int) -> None:
        end = start + TIMEOUT_CHECK_SLICE
        for protocol in protocols[start:end]:
            if protocol in self.connections:  # not closed since the slice was cut
                protocol.check_timeouts()
        if end < len(protocols):
            daphne_server.reactor.callLater(0, self._check_slice, protocols, end)
        else:
            daphne_server.reactor.callLater(TIMEOUT_CHECK_SECONDS, self.timeout_checker)

    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        """daphne's access log, without its three lines per WebSocket
        (handshaking, connect, disconnect): the application logs each
        socket's lifecycle with its user, games and close code (config/logs.py),
        and in a burst of joins those lines cost 4 % of the event loop."""
        if protocol != "websocket":
            super().log_action(protocol, action, details)

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

    def listen_success(self, port: Any) -> None:
        """daphne's, and the port's connections made `DirectWriteServer`s
        (server/prepared_send.py): on this port only, as the port makes
        each connection from its `transport` attribute."""
        if isinstance(port, tcp.Port) and port.transport is tcp.Server:
            port.transport = DirectWriteServer
        super().listen_success(port)

    def run(self) -> None:
        daphne_server.reactor.callWhenRunning(self._check_factories)
        daphne_server.reactor.addSystemEventTrigger("before", "shutdown", self._before_shutdown)
        super().run()

    _hooks_done: defer.Deferred[Any] | None = None
    # Told to stop: upgrades are refused (WebSocketProtocol.onConnect).
    draining = False

    def _before_shutdown(self) -> Any:
        """Start draining (here, and for the application: server/extension.py),
        then the application's shutdown hooks, awaited before the reactor
        drops the connections."""
        self.draining = True
        start_draining()
        hooks = shutdown_hooks()
        if not hooks:
            return None

        async def run_hooks() -> None:
            await asyncio.gather(*(hook() for hook in hooks), return_exceptions=True)

        self._hooks_done = defer.Deferred.fromFuture(asyncio.ensure_future(run_hooks()))
        return self._hooks_done

    def kill_all_applications(self) -> Any:
        """daphne's cancel of every application, once the shutdown hooks are
        done: both are "before shutdown" triggers, and daphne's would
        otherwise cancel requests in flight while the hooks drain."""
        hooks_done = self._hooks_done
        if hooks_done is None or hooks_done.called:
            return super().kill_all_applications()
        killed: defer.Deferred[Any] = defer.Deferred()

        def kill(_: Any) -> None:
            super(Server, self).kill_all_applications().chainDeferred(killed)

        hooks_done.addBoth(kill)
        return killed

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
