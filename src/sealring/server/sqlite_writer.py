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

WAL checkpoints: SQLite runs one inside the commit that finds the WAL past 1000 pages, and
once the WAL stays past it (another process committing meanwhile) inside nearly every commit;
with its ``fsync`` that put 5-17 ms commits on the event loop (the 90th percentile of a group's
commit under ``login_bench.py``).  The writer's connection therefore never checkpoints
(``wal_autocheckpoint = 0``); a :class:`Checkpointer` thread with a connection of its own runs
``PRAGMA wal_checkpoint(PASSIVE)`` every ``checkpoint_interval`` seconds after commits, which
never waits for readers or writers and releases the GIL while SQLite copies and syncs.  Past
``wal_limit`` frames the writer, holding the write lock, has the thread copy the last frames
and begins again, so that its group starts the WAL over: the WAL stays bounded.  Durability is
SQLite's as before (WAL, ``synchronous = NORMAL``: a commit survives a crash of the process;
a checkpoint syncs the WAL before it copies it).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from sealring.server.logging import logger
from sealring.server.stores._statements import WriteBatch

__all__ = ["Checkpointer", "SqliteWriter", "WriteLockTimeout"]

T = TypeVar("T")

# Retrying the write lock while another process holds it: the first pause and the longest
# (the doubling stops there).  A transaction of a group holds it for well under a millisecond.
FIRST_PAUSE = 0.0001
LONGEST_PAUSE = 0.001
MAX_BATCH = 32
CHECKPOINT_INTERVAL = 0.1
# WAL frames (pages) past which the checkpointer makes the next writer start the WAL over.
WAL_LIMIT = 4000


class WriteLockTimeout(TimeoutError):
    """The call waited for SQLite's write lock until its deadline; it did not run."""


@dataclass(eq=False)
class _Call(Generic[T]):
    fn: Callable[..., T]
    args: tuple[Any, ...]
    deadline: float
    future: asyncio.Future[T] = field(repr=False)


class Checkpointer:
    """``PRAGMA wal_checkpoint(PASSIVE)`` in a thread of its own, every ``interval`` seconds
    in which :meth:`committed` was called.

    A passive checkpoint copies what it can without waiting, but SQLite starts the WAL over
    only when a write transaction begins while every frame has been copied; under a steady
    stream of commits from several processes that moment never comes and the WAL grows
    without end (measured: 430 MB in 5 s of ``login_bench.py``; a ``RESTART`` checkpoint from
    this thread waited 0.3-0.9 s for the write lock through SQLite's busy handler, and the WAL
    still reached 100-190 MB).  So once the WAL holds more than ``wal_limit`` frames,
    :attr:`over_limit` asks the writer to call :meth:`checkpoint` while it holds the write
    lock (no frame can be added meanwhile, and the copy is short: the thread copied the rest
    before), then to begin its transaction again: that one starts the WAL from its beginning.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = CHECKPOINT_INTERVAL,
        wal_limit: int = WAL_LIMIT,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._wal_limit = wal_limit
        self._stop = threading.Event()
        self._dirty = False
        self._thread: threading.Thread | None = None
        self._connection: Any = None
        self._using = threading.Lock()  # the connection: this thread's or the writer's call
        self._failing = False
        #: The WAL's frames at the last checkpoint were past the limit.
        self.over_limit = False
        #: For tests: checkpoints run, and the last one's (busy, WAL frames, frames copied).
        self.checkpoints = 0
        self.last: tuple[int, int, int] | None = None

    def committed(self) -> None:
        """A commit added to the WAL: checkpoint at the end of this interval (starts the
        thread the first time)."""
        self._dirty = True
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._run, name="sealring-wal-checkpoint", daemon=True
            )
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if self._dirty:
                self._dirty = False
                if not self.checkpoint():
                    self._dirty = True  # try again next interval

    def checkpoint(self) -> bool:
        """One passive checkpoint (blocking: in a thread); False if the database failed."""
        with self._using:
            try:
                if self._connection is None:
                    self._connection = self._engine.raw_connection()
                cursor = self._connection.driver_connection.cursor()
                try:
                    row = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                finally:
                    cursor.close()
            except Exception as exc:  # the database went away: the next call tries again
                if not self._failing:
                    self._failing = True
                    logger.warning(
                        "WAL checkpoint failed", extra={"error_type": type(exc).__name__}
                    )
                self._discard(invalidate=True)
                return False
            self._failing = False
            self.checkpoints += 1
            self.last = (int(row[0]), int(row[1]), int(row[2]))
            self.over_limit = self.last[1] > self._wal_limit
            return True

    def _discard(self, *, invalidate: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                if invalidate:
                    connection.invalidate()
                connection.close()

    def stop(self) -> None:
        """Stop the thread (within one interval) and give its connection back."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join()
        with self._using:
            self._discard(invalidate=False)


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
        checkpoint_interval: float | None = CHECKPOINT_INTERVAL,
        wal_limit: int = WAL_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        # None: the writer's commits run SQLite's own automatic checkpoints.
        self.checkpointer = (
            Checkpointer(engine, interval=checkpoint_interval, wal_limit=wal_limit)
            if checkpoint_interval is not None
            else None
        )
        self._batch = WriteBatch(engine, autocheckpoint=self.checkpointer is None)
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
                checkpointer = self.checkpointer
                if checkpointer is not None and checkpointer.over_limit:
                    # Holding the write lock: copy the last frames, then begin again so that
                    # this group starts the WAL from its beginning (see Checkpointer).
                    try:
                        await asyncio.to_thread(checkpointer.checkpoint)
                    finally:
                        self._batch.end(commit=False)
                    # Until the thread's next checkpoint sees whether the WAL did start over.
                    checkpointer.over_limit = False
                    if not self._batch.try_begin():
                        continue
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
        if self.checkpointer is not None:
            self.checkpointer.committed()
        for call, raised, outcome in ran:
            if call.future.done():  # cancelled while the group ran: the result is lost
                continue
            if raised:
                call.future.set_exception(outcome)
            else:
                call.future.set_result(outcome)

    async def aclose(self) -> None:
        """Stop: calls still waiting get :class:`WriteLockTimeout`, the checkpoint thread
        ends, the connections go back."""
        self._closed = True
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._batch.close()
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
