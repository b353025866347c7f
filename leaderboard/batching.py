"""Requests of many sockets answered by one call: the connect's user check,
the join's participant check and snapshot read, presence joins.

In a burst of connects every socket asks the same questions at about the
same time, and a trip to a database thread (or to Redis) per socket queued
thousands of trips behind a handful of threads. A `Batcher` gathers what is
asked in the same turn of the event loop, and while its batches are in
flight, and answers all of it with one call of `run`. A batch starts on a
turn after every request in it was made, so it sees whatever each caller
did before asking (as `presence.SharedRead` does for one key).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Request = TypeVar("Request")
Result = TypeVar("Result")

# A batch answers each request with its result or the exception to raise in
# that request's caller (a game that vanished refuses one join, not all).
Answers = Sequence[Result | BaseException]


@dataclass(slots=True)
class _LoopState(Generic[Request, Result]):
    waiting: list[tuple[Request, asyncio.Future[Result]]] = field(default_factory=list)
    scheduled: bool = False
    last_start: float = float("-inf")  # loop time the last batch started
    # The batches in flight: the loop holds tasks only weakly.
    tasks: set[asyncio.Task[Answers]] = field(default_factory=set)

    @property
    def running(self) -> int:
        return len(self.tasks)


class Batcher(Generic[Request, Result]):
    """`await batcher.ask(request)`: answered by `run(requests)`, which gets
    up to `max_size` requests at once and returns one answer per request, in
    order. At most `in_flight` batches run at a time, and one starts at
    least `min_interval` seconds after the one before; requests made
    meanwhile wait for the next one, so a burst makes few large batches, a
    lone request one batch of one on the next turn.

    Why the interval: without it a burst of joins settled into one of two
    states. Batches of a few dozen requests, or, in some runs, of a few:
    many times more trips to the database threads, whose work then held the
    GIL away from the event loop, which slowed the joins, which kept the
    batches small, and the burst took twice as long (bench/README.md,
    "Joins and the reveal's path, 2026-12-03 evening").
    """

    def __init__(
        self,
        run: Callable[[list[Request]], Awaitable[Answers]],
        *,
        in_flight: int = 2,
        max_size: int = 500,
        min_interval: float = 0.02,
    ) -> None:
        self._run = run
        self.in_flight = in_flight
        self.max_size = max_size
        self.min_interval = min_interval
        # Futures belong to the loop that made them (tests run one loop each).
        self._states: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _LoopState[Request, Result]
        ] = weakref.WeakKeyDictionary()

    async def ask(self, request: Request) -> Result:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState()
        answer: asyncio.Future[Result] = loop.create_future()
        # A caller cancelled meanwhile must not leave "exception never retrieved".
        answer.add_done_callback(_retrieve)
        state.waiting.append((request, answer))
        self._schedule(loop, state)
        # A cancelled caller cancels only its own answer, which the batch
        # then skips: the batch and the others' answers go on. (No shield:
        # one per request showed in the loop's profile of a burst of joins.)
        return await answer

    def _schedule(
        self, loop: asyncio.AbstractEventLoop, state: _LoopState[Request, Result]
    ) -> None:
        if state.waiting and not state.scheduled and state.running < self.in_flight:
            state.scheduled = True
            wait = state.last_start + self.min_interval - loop.time()
            if wait > 0:
                loop.call_later(wait, self._start, loop, state)
            else:
                loop.call_soon(self._start, loop, state)

    def _start(self, loop: asyncio.AbstractEventLoop, state: _LoopState[Request, Result]) -> None:
        state.scheduled = False
        batch, state.waiting = state.waiting[: self.max_size], state.waiting[self.max_size :]
        if not batch:
            return
        state.last_start = loop.time()
        task = loop.create_task(self._run([request for request, _ in batch]))
        state.tasks.add(task)

        def done(task: asyncio.Task[Answers]) -> None:
            state.tasks.discard(task)
            if task.cancelled():
                error: BaseException | None = asyncio.CancelledError()
            else:
                error = task.exception()
            if error is None:
                answers = task.result()
                assert len(answers) == len(batch), "a batch answers every request"
            for index, (_, answer) in enumerate(batch):
                if answer.done():
                    continue
                result = error if error is not None else answers[index]
                if isinstance(result, BaseException):
                    answer.set_exception(result)
                else:
                    answer.set_result(result)
            self._schedule(loop, state)

        task.add_done_callback(done)
        self._schedule(loop, state)  # more than max_size waiting


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()
