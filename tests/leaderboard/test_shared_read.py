"""SharedRead: reads asked for in one turn of the event loop share one read."""

from __future__ import annotations

import asyncio

import pytest

from leaderboard.presence import SharedRead


class Store:
    def __init__(self) -> None:
        self.members: dict[int, list[int]] = {}
        self.reads = 0
        self.started = asyncio.Event()

    async def read(self, key: int) -> list[int]:
        self.reads += 1
        self.started.set()
        members = list(self.members.get(key, []))  # what the read saw when it started
        await asyncio.sleep(0.01)
        return members


async def test_reads_asked_together_share_one_read_and_see_earlier_writes():
    store = Store()

    async def join_then_read(user_id: int) -> list[int]:
        store.members.setdefault(7, []).append(user_id)
        return await shared.read(7)

    shared = SharedRead(store.read)
    results = await asyncio.gather(*(join_then_read(user_id) for user_id in (1, 2, 3)))
    assert store.reads == 1
    assert results == [[1, 2, 3]] * 3
    results[0].append(99)  # each caller owns its list
    assert results[1] == [1, 2, 3]


async def test_a_read_asked_after_one_started_reads_again():
    store = Store()
    shared = SharedRead(store.read)
    first = asyncio.ensure_future(shared.read(7))
    await store.started.wait()
    store.members[7] = [5]
    second = await shared.read(7)
    assert (await first, second, store.reads) == ([], [5], 2)


async def test_keys_are_read_separately_and_errors_reach_every_caller():
    async def failing(key: int) -> list[int]:
        raise ConnectionError(f"redis down for {key}")

    shared = SharedRead(failing)
    outcomes = await asyncio.gather(shared.read(1), shared.read(1), return_exceptions=True)
    assert [str(error) for error in outcomes] == ["redis down for 1"] * 2
    store = Store()
    store.members = {1: [1], 2: [2]}
    shared = SharedRead(store.read)
    assert await asyncio.gather(shared.read(1), shared.read(2)) == [[1], [2]]
    assert store.reads == 2


async def test_a_cancelled_caller_does_not_cancel_the_others():
    store = Store()
    shared = SharedRead(store.read)
    store.members[7] = [1]
    leaving = asyncio.ensure_future(shared.read(7))
    staying = asyncio.ensure_future(shared.read(7))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await staying == [1]
    with pytest.raises(asyncio.CancelledError):
        await leaving
