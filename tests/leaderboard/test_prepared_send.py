"""config.daphne_prepared_send: one framed text written to many daphne sockets."""

from __future__ import annotations

from autobahn.websocket.protocol import WebSocketProtocol

from config.daphne_prepared_send import PreparedSend


class FakeProtocol:
    """The two things PreparedSend uses of daphne's autobahn protocol."""

    STATE_OPEN = WebSocketProtocol.STATE_OPEN

    def __init__(self, state: int) -> None:
        self.state = state
        self.sent: list[bytes] = []

    def sendPreparedMessage(self, prepared) -> None:
        self.sent.append(prepared.payloadHybi)


def test_a_text_is_framed_once_as_an_unmasked_rfc6455_text_frame():
    short = PreparedSend.prepare("héllo").payloadHybi
    assert short == b"\x81\x06" + "héllo".encode()
    text = "x" * 7500
    long = PreparedSend.prepare(text).payloadHybi
    assert long[:4] == b"\x81\x7e" + (7500).to_bytes(2, "big") and long[4:] == text.encode()


def test_the_same_bytes_go_to_every_open_socket_and_none_to_a_closing_one():
    prepared = PreparedSend.prepare('{"type":"leaderboard:update"}')
    open_a, open_b = (
        FakeProtocol(WebSocketProtocol.STATE_OPEN),
        FakeProtocol(WebSocketProtocol.STATE_OPEN),
    )
    closing = FakeProtocol(WebSocketProtocol.STATE_CLOSING)
    results = [PreparedSend(p).send(prepared) for p in (open_a, open_b, closing)]
    assert results == [True, True, False]
    assert open_a.sent == open_b.sent == [prepared.payloadHybi] and closing.sent == []
