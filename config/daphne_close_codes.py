"""daphne and the contract's close codes: let it send 1009/1012/1013, and
close every inbound message over 4 KiB with 1009, whatever its size.

**Sending the codes.** daphne passes an application's `websocket.close` code
to autobahn's public `sendClose`, which accepts only 1000 and 3000-4999 and
raises for the RFC 6455 codes a server legitimately sends: 1009 (message too
big), 1012 (service restart), 1013 (try again later). The exception ends the
application and the client sees 1011. For those codes we send the close frame
through autobahn's `sendCloseFrame`, which runs the same closing handshake
without the check.

**The inbound size limit.** The contract closes a socket with 1009 for a
frame over 4 KiB (leaderboard.protocol.MAX_FRAME_BYTES). Left to the
application, that check needs the whole message first: daphne lets autobahn
buffer up to 1 MiB, and autobahn fails anything larger by dropping the TCP
connection without a close frame (its `failByDrop`), so the client saw 1006.
autobahn's own limits cannot be lowered to 4 KiB either: its
`maxMessagePayloadSize` also refuses *outgoing* messages, and leaderboard
frames are larger. So daphne's protocol checks inbound sizes itself:

- at the beginning of each data frame, from its header's length and before
  any of its payload is buffered: a single 2 MiB frame is refused as soon as
  its header arrives;
- across the fragments of a message (the running total of its frames), and
  again after decompression, should permessage-deflate ever be negotiated;
- and when autobahn's own limits trip, it closes the same way.

A refusal sends a close frame 1009 (the closing handshake, not a TCP drop),
and autobahn delivers nothing more of that message; the rest of its payload
is read and discarded until the client answers the close (autobahn drops the
connection if it does not, after its close handshake timeout). Outgoing
messages are not limited. The consumer keeps its own size check as a
backstop (other servers, tests).

Everything is patched on daphne's protocol class, so it holds for every
connection whenever `install()` runs (before or after daphne's server and its
factory were made: `daphne` and `manage.py runserver` alike), and it does not
depend on the order of the other daphne patches (config/daphne_memory.py).
"""

from __future__ import annotations

from typing import Any

from leaderboard.protocol import MAX_FRAME_BYTES

# Codes RFC 6455 §7.4.1 / IANA let a server send, beyond autobahn's range.
SERVER_CLOSE_CODES = frozenset({1001, 1008, 1009, 1011, 1012, 1013})
CLOSE_TOO_BIG = 1009
# The largest inbound message, in bytes (UTF-8 for text), summed over its frames.
INBOUND_MESSAGE_LIMIT = MAX_FRAME_BYTES
_TOO_BIG_REASON = b"message too big"


def install() -> None:
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # pragma: no cover - daphne is a dependency
        return
    if getattr(WebSocketProtocol, "envelope_close_codes", False):
        return
    _allow_server_close_codes(WebSocketProtocol)
    _limit_inbound_messages(WebSocketProtocol)
    WebSocketProtocol.envelope_close_codes = True


def _allow_server_close_codes(protocol_class: Any) -> None:
    original = protocol_class.serverClose

    def serverClose(self: Any, code: int | None = None) -> None:
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original(self, code=code)

    protocol_class.serverClose = serverClose


def refuse_too_big(protocol: Any) -> None:
    """Fail the connection with a close frame 1009. autobahn's own failure
    (`_fail_connection`) would drop the TCP connection instead (daphne keeps
    `failByDrop` on), and the client would see 1006."""
    if protocol.failedByMe:
        return  # already refused: one close frame is enough
    # Nothing more of this message reaches the application: autobahn stops
    # buffering and delivering once the connection is failed by us.
    protocol.failedByMe = True
    protocol.wasMaxMessagePayloadSizeExceeded = True
    if protocol.state == protocol.STATE_OPEN:
        protocol.sendCloseFrame(code=CLOSE_TOO_BIG, reasonUtf8=_TOO_BIG_REASON, isReply=False)


def _limit_inbound_messages(protocol_class: Any) -> None:
    frame_begin = protocol_class.onMessageFrameBegin
    frame_data = protocol_class.onMessageFrameData

    def onMessageFrameBegin(self: Any, length: int) -> None:
        # Called once the frame's header is in, before its payload: the
        # message's frames so far plus this one's announced length.
        if self.message_data_total_length + length > INBOUND_MESSAGE_LIMIT:
            refuse_too_big(self)
        # autobahn's bookkeeping; its own (1 MiB) checks skip a failed connection.
        frame_begin(self, length)

    def onMessageFrameData(self: Any, payload: bytes) -> None:
        # Only a compressed message can grow here (autobahn adds what its
        # payload inflated to): the frame-begin check saw its compressed size.
        if self.message_data_total_length > INBOUND_MESSAGE_LIMIT:
            refuse_too_big(self)
        frame_data(self, payload)

    def _max_message_size_exceeded(
        self: Any, msg_size: int, max_msg_size: int, reason: str
    ) -> None:
        # autobahn's own limits (daphne's 1 MiB): the same close frame.
        refuse_too_big(self)

    protocol_class.onMessageFrameBegin = onMessageFrameBegin
    protocol_class.onMessageFrameData = onMessageFrameData
    protocol_class._max_message_size_exceeded = _max_message_size_exceeded
