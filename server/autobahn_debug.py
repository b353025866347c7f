"""autobahn's debug formatting, paid only when its debug log is on.

When a connection is made, autobahn pretty-prints the protocol's 29 options
(and, when a handshake starts, the transport's details) for a debug log line,
whether or not debug lines are logged: `pformat` runs before the logger sees
the call. In a burst of joins that was 7 % of the event loop's time, more than
the ticket check (bench/README.md, "The server seam's figures").

Its `hltype` and `hlval`, which colour a method's name and a value for the
same debug lines (through click), run on every connection, handshake and
incoming frame likewise (bench/README.md, "The server seam's figures").

`install()` replaces the `pformat`, `hltype` and `hlval` that autobahn's
WebSocket modules use with ones that format only when autobahn's logger
would write a debug line.
"""

from __future__ import annotations

from pprint import pformat
from typing import Any

from autobahn import util as autobahn_util
from autobahn.twisted import websocket as autobahn_twisted
from autobahn.twisted.websocket import WebSocketServerProtocol
from autobahn.websocket import protocol as autobahn_protocol

NOT_FORMATTED = "(not formatted: autobahn's debug log is off)"


def _debug_logged() -> bool:
    # daphne's protocol logs through this class's txaio logger, which stands
    # a no-op in for each level below its own.
    debug = WebSocketServerProtocol.log.debug
    return getattr(debug, "__name__", "") != "_no_op"


def pformat_if_logged(value: Any, *args: Any, **kwargs: Any) -> str:
    if _debug_logged():
        return pformat(value, *args, **kwargs)
    return NOT_FORMATTED


def hltype_if_logged(obj: Any) -> str:
    if _debug_logged():
        return autobahn_util.hltype(obj)
    return NOT_FORMATTED


def hlval_if_logged(value: Any, *args: Any, **kwargs: Any) -> str:
    if _debug_logged():
        return autobahn_util.hlval(value, *args, **kwargs)
    return NOT_FORMATTED


def install() -> None:
    autobahn_protocol.pformat = pformat_if_logged
    for module in (autobahn_protocol, autobahn_twisted):
        module.hltype = hltype_if_logged
        module.hlval = hlval_if_logged
