"""LOG_FORMAT=json: one JSON object per line, with the lifecycle fields
(config.logs, docs/operations.md, "Logs"). A real daphne process, so what is
parsed is what production writes."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator

import pytest

from config.logs import logging_config, socket_event
from tests.conftest import require_live_stack_services
from tests.e2e.conftest import http, joined, make_party, open_socket, recv_until, ticket
from tests.liveserver import LiveStack

# daphne's access log is its own stream (`--access-log`), not Python logging.
ACCESS_LINE = re.compile(r'^\S+:\d+ - - \[.*\] "')


def test_an_unknown_format_is_a_start_up_error():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logging_config("xml", "INFO")


def test_text_lines_carry_the_same_fields_as_key_value_pairs(caplog):
    with caplog.at_level(logging.INFO, logger="envelope.sockets"):
        socket_event("close", socket_id="s#1", user_id=None, code=1000, duration_s=1.5)
    (record,) = caplog.records
    assert record.getMessage() == "socket close event=close socket_id=s#1 code=1000 duration_s=1.5"
    assert (record.event, record.code, record.duration_s) == ("close", 1000, 1.5)


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    require_live_stack_services()
    with LiveStack(processes=1, extra_env={"LOG_FORMAT": "json"}) as live:
        yield live


@pytest.mark.e2e
async def test_json_lines_with_the_lifecycle_fields(stack):
    server = stack.servers[0]
    party = make_party(stack, "logs", 2, [1, 1])
    socket, _ = await joined(server, party.players[0], party.game_id)
    await socket.send(json.dumps({"type": "join", "gameId": 999999}))
    await recv_until(socket, "leaderboard:error")
    category_id, _, nominations = party.categories[0]
    status, body = http(
        server,
        "POST",
        f"/api/categories/{category_id}/winner",
        token=party.staff_token,
        body={"nominationId": nominations[0]},
    )
    assert status == 200, body
    await recv_until(socket, "leaderboard:update")
    await socket.send(json.dumps({"type": "leave", "gameId": party.game_id}))
    await recv_until(socket, "left")
    await socket.close()
    # A refused connect: a ticket presented twice.
    used = ticket(server, party.players[1])
    first = await open_socket(server, str(used))
    await first.close()
    second = await open_socket(server, str(used))
    await recv_until(second, "leaderboard:error")
    await second.wait_closed()
    await asyncio.to_thread(server.stop)  # SIGTERM: the drain's lines too

    records = []
    for line in server.log().splitlines():
        if not line.strip() or ACCESS_LINE.match(line):
            continue
        try:
            record = json.loads(line)  # every other line is one JSON object
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert {"time", "level", "logger", "message"} <= set(record), record
        records.append(record)

    def events(name: str) -> list[dict]:
        return [r for r in records if r.get("event") == name]

    (connect, *_) = events("connect")
    assert connect["logger"] == "envelope.sockets"
    assert connect["user_id"] == party.players[0].id and connect["socket_id"]
    (join,) = events("join")
    assert (join["game_id"], join["socket_id"]) == (party.game_id, connect["socket_id"])
    (refused_join,) = events("join_refused")
    assert (refused_join["game_id"], refused_join["code"]) == (999999, "GAME_NOT_FOUND")
    (leave,) = events("leave")
    assert leave["game_id"] == party.game_id
    closes = {r["socket_id"]: r for r in events("close")}
    close = closes[connect["socket_id"]]
    assert close["code"] == 1000 and close["duration_s"] > 0
    assert [r["code"] for r in events("refuse")] == [4401]
    (reveal,) = events("reveal")
    assert reveal["logger"] == "envelope.reveals"
    assert reveal["game_id"] == party.game_id and reveal["seq"] > 0
    # The game's LIVE status and its board, to one socket.
    assert reveal["frames"] == 2 and reveal["commit_to_last_write_ms"] >= 0
    assert any(r["message"].startswith("drain done in") for r in records)
    # Never one line per frame: presence diffs, pongs and updates left none.
    assert len(records) < 30, [r["message"] for r in records]
