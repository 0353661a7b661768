"""The user grants' write transactions on SQLite: one queue per process, committed in groups.

A code exchange or a refresh is one short transaction that must hold SQLite's write lock, which
one connection of all the server's processes holds at a time.  They run on the event loop (a
thread hop costs more than the transaction); the loop must never block on the lock, so it is
taken with a busy timeout of 0 and retried after a short asynchronous sleep.

Letting every request retry on its own wastes the CPU that is short under load: measured with
``bench/login_bench.py`` (2 workers, 64 connections), each grant failed 1.5 attempts on average,
each costing a pooled connection's checkout and reset, the grant's preamble, an exception and a
timer.  Here instead the calls of one process wait in a FIFO queue, and one task per process
takes the lock for them:

- only that task contends for SQLite's lock, with a cheap probe (``BEGIN IMMEDIATE`` on a
  connection of its own) every ``pause`` .. ``longest_pause`` seconds;
- once it holds the lock it runs the calls waiting at that moment, in order, up to
  ``max_batch``, each in its own ``SAVEPOINT``
  (:class:`~sealring.server.stores._statements.WriteBatch`), and commits them in one
  transaction: one lock acquisition and one WAL commit for the group;
- after a group it yields to the event loop before taking the lock again, so the other
  processes' probes find it free between groups.

Each call keeps the semantics of a transaction of its own: a block that raises is rolled back
to its savepoint (what it released before raising, such as a revocation after a detected reuse,
stays and is committed with the group); the calls of a group see each other's writes in queue
order, as consecutive transactions would; nothing is answered before the commit that makes it
durable, and if that commit fails every call of the group gets the error (nothing of them was
committed).  A database error inside one call rolls the whole group back: that call gets its
error, and the calls that ran before it in the group go back to the head of the queue to run
again (nothing of them was committed, and a grant's call writes nothing outside the database).
A call still waiting at its deadline is answered with :class:`WriteLockTimeout` and never runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from sealring.server.stores._statements import WriteBatch

__all__ = ["SqliteWriter", "WriteLockTimeout"]

T = TypeVar("T")

# Retrying the write lock while another process holds it: the first pause and the longest
# (the doubling stops there).  A transaction of a group holds it for well under a millisecond.
FIRST_PAUSE = 0.0001
LONGEST_PAUSE = 0.001
MAX_BATCH = 32


class WriteLockTimeout(TimeoutError):
    """The call waited for SQLite's write lock until its deadline; it did not run."""


@dataclass(eq=False)
class _Call(Generic[T]):
    fn: Callable[..., T]
    args: tuple[Any, ...]
    deadline: float
    future: asyncio.Future[T] = field(repr=False)


class SqliteWriter:
    """Runs synchronous write calls on SQLite from the event loop, in FIFO order, grouped.

    ``fn`` passed to :meth:`run` must write only through
    :func:`~sealring.server.stores._statements.write` on ``engine`` (any other connection
    would wait for the lock the group holds) and never wait on anything else.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = MAX_BATCH,
        pause: float = FIRST_PAUSE,
        longest_pause: float = LONGEST_PAUSE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._batch = WriteBatch(engine)
        self._max_batch = max_batch
        self._pause = pause
        self._longest_pause = longest_pause
        self._clock = clock
        self._queue: deque[_Call[Any]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Counters for tests and profiles: groups committed, calls run, lock probes refused.
        self.groups = 0
        self.calls = 0
        self.busy = 0

    async def run(self, fn: Callable[..., T], *args: Any, patience: float) -> T:
        """``fn(*args)`` in a transaction that holds the write lock, after waiting at most
        ``patience`` seconds for it; raises what ``fn`` raises, the database's error, or
        :class:`WriteLockTimeout`."""
        if self._closed:
            raise RuntimeError("the writer is closed")
        loop = asyncio.get_running_loop()
        call: _Call[T] = _Call(fn, args, self._clock() + patience, loop.create_future())
        self._queue.append(call)
        if self._task is None:
            self._task = loop.create_task(self._drain())
        # A request cancelled meanwhile cancels its future: the drainer skips it.
        return await call.future

    async def _drain(self) -> None:
        try:
            pause = self._pause
            while self._queue:
                self._expire()
                if not self._queue:
                    break
                if not self._batch.try_begin():
                    self.busy += 1
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, self._longest_pause)
                    continue
                pause = self._pause
                self._run_group()
                # Let the loop read more requests, and the other processes take the lock.
                await asyncio.sleep(0)
        except BaseException as exc:  # the probe's own database error, or cancellation
            for call in self._queue:
                if not call.future.done():
                    call.future.set_exception(
                        exc if isinstance(exc, Exception) else WriteLockTimeout()
                    )
            self._queue.clear()
            if not isinstance(exc, Exception):
                raise
        finally:
            self._task = None

    def _expire(self) -> None:
        now = self._clock()
        while self._queue:
            head = self._queue[0]
            if head.future.done():
                self._queue.popleft()
            elif head.deadline <= now:
                self._queue.popleft()
                head.future.set_exception(WriteLockTimeout())
            else:
                return
        # (Calls behind a live head are expired when they reach it; their deadlines are later.)

    def _run_group(self) -> None:
        """With the lock held: run the calls waiting now, then commit them together."""
        batch = self._batch
        ran: list[tuple[_Call[Any], bool, Any]] = []  # (call, raised, result or exception)
        try:
            with batch.running():
                while self._queue and len(ran) < self._max_batch:
                    call = self._queue.popleft()
                    if call.future.done():
                        continue
                    raised, outcome = False, None
                    try:
                        outcome = call.fn(*call.args)
                    except Exception as exc:
                        raised, outcome = True, exc
                    if batch.spoiled:
                        # A database error inside this call: roll the whole group back.  This
                        # call gets the error; those before it run again in the next group.
                        call.future.set_exception(
                            outcome
                            if raised
                            else sa_exc.OperationalError(
                                "SAVEPOINT", None, RuntimeError("the write batch was spoiled")
                            )
                        )
                        self._queue.extendleft(c for c, _, _ in reversed(ran))
                        ran.clear()
                        batch.end(commit=False)
                        return
                    ran.append((call, raised, outcome))
            batch.end(commit=True)
        except BaseException as exc:
            if batch.open:
                batch.end(commit=False)
            for call, _, _ in ran:
                if not call.future.done():
                    call.future.set_exception(
                        exc if isinstance(exc, Exception) else WriteLockTimeout()
                    )
            if not isinstance(exc, sa_exc.DBAPIError):
                raise
            return
        self.groups += 1
        self.calls += len(ran)
        for call, raised, outcome in ran:
            if call.future.done():  # cancelled while the group ran: the result is lost
                continue
            if raised:
                call.future.set_exception(outcome)
            else:
                call.future.set_result(outcome)

    async def aclose(self) -> None:
        """Stop: calls still waiting get :class:`WriteLockTimeout`; the connection goes back."""
        self._closed = True
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._batch.close()
