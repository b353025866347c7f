"""Let daphne send the close codes the contract needs (1009, 1012).

daphne passes an application's `websocket.close` code to autobahn's public
`sendClose`, which accepts only 1000 and 3000-4999 and raises for the RFC 6455
codes a server legitimately sends: 1009 (message too big) and 1012 (service
restart). The exception ends the application and the client sees 1011. For
those codes we send the close frame through autobahn's `sendCloseFrame`,
which runs the same closing handshake without the check.
"""

from __future__ import annotations

# Codes RFC 6455 §7.4.1 / IANA let a server send, beyond autobahn's range.
SERVER_CLOSE_CODES = frozenset({1001, 1008, 1009, 1011, 1012, 1013})


def install() -> None:
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # pragma: no cover - daphne is a dependency
        return
    if getattr(WebSocketProtocol, "envelope_close_codes", False):
        return
    original = WebSocketProtocol.serverClose

    def server_close(self: WebSocketProtocol, code: int | None = None) -> None:
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original(self, code=code)

    WebSocketProtocol.serverClose = server_close
    WebSocketProtocol.envelope_close_codes = True
