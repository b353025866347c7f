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
frames are larger. So our protocol checks inbound sizes itself:

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

`CloseCodes` is a mixin for daphne's WebSocket protocol class; our protocol
(server/daphne_server.py) puts it first, so it holds for every connection of
our `Server`, under `python -m server` and `manage.py runserver` alike.
"""

from __future__ import annotations

from typing import Any

# Codes RFC 6455 §7.4.1 / IANA let a server send, beyond autobahn's range.
SERVER_CLOSE_CODES = frozenset({1001, 1008, 1009, 1011, 1012, 1013})
CLOSE_TOO_BIG = 1009
# The largest inbound message, in bytes (UTF-8 for text), summed over its
# frames: the contract's leaderboard.protocol.MAX_FRAME_BYTES (the server does
# not import the application; tests/server/test_close_codes.py checks they agree).
INBOUND_MESSAGE_LIMIT = 4096
_TOO_BIG_REASON = b"message too big"


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


class CloseCodes:
    """Mixin for daphne's `WebSocketProtocol` (autobahn's server protocol)."""

    def serverClose(self, code: int | None = None) -> None:
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            super().serverClose(code=code)

    def onMessageFrameBegin(self, length: int) -> None:
        # Called once the frame's header is in, before its payload: the
        # message's frames so far plus this one's announced length.
        if self.message_data_total_length + length > INBOUND_MESSAGE_LIMIT:
            refuse_too_big(self)
        # autobahn's bookkeeping; its own (1 MiB) checks skip a failed connection.
        super().onMessageFrameBegin(length)

    def onMessageFrameData(self, payload: bytes) -> None:
        # Only a compressed message can grow here (autobahn adds what its
        # payload inflated to): the frame-begin check saw its compressed size.
        if self.message_data_total_length > INBOUND_MESSAGE_LIMIT:
            refuse_too_big(self)
        super().onMessageFrameData(payload)

    def _max_message_size_exceeded(self, msg_size: int, max_msg_size: int, reason: str) -> None:
        # autobahn's own limits (daphne's 1 MiB): the same close frame.
        refuse_too_big(self)
