"""Bounded, outage-aware calls to the server's dependencies (issue 12, docs/reliability.md).

A request never waits on the database longer than ``database_timeout``: the blocking call runs in
a worker thread and the request stops waiting at the deadline (the thread is abandoned and ends
when the database answers or its own connect/statement timeout fires; a user grant's transaction
that reaches its commit after the deadline rolls back, so a request answered 503 has consumed
no code or refresh token).  Every failure becomes
:class:`~sealring.server.errors.TemporarilyUnavailable` (503, ``Retry-After``), never a 500.
At most as many calls run at once as the connection pool holds, so a burst queues here instead
of opening and closing overflow connections.

The user grants' short write transactions on SQLite (:meth:`Database.write`) run on the event
loop instead: a thread hop costs more than the transaction, and SQLite has one writer anyway.
They queue in :class:`~sealring.server.sqlite_writer.SqliteWriter`, whose one task per process
takes the write lock without waiting (retrying after short asynchronous sleeps) and commits the
waiting calls in groups; a call still waiting at the same deadline is a 503.

An :class:`Outage` turns a stream of failures into one warning when the dependency goes away and
one when it is back, with a counter and an up/down gauge, instead of one error line per request.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import exc as sa_exc

from sealring.server.errors import TemporarilyUnavailable
from sealring.server.logging import logger
from sealring.server.metrics import Metrics
from sealring.server.sqlite_writer import SqliteWriter
from sealring.server.stores._statements import give_up_at

__all__ = ["Database", "Outage"]

T = TypeVar("T")

# What a database that is down, hung or restarting raises (connection refused or reset, connect
# or statement timeout, pool checkout timeout). Anything else is a bug and stays a 500.
_DATABASE_DOWN = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
)


class Outage:
    """Whether a dependency is down, logged once per outage (warning) and counted."""

    def __init__(
        self,
        name: str,
        metrics: Metrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._metrics = metrics
        self._clock = clock
        self.down_since: float | None = None
        if metrics is not None:
            metrics.dependency_up.labels(name).set(1)

    @property
    def up(self) -> bool:
        return self.down_since is None

    def failed(self, exc: BaseException) -> None:
        if self.down_since is not None:
            return
        self.down_since = self._clock()
        logger.warning(
            f"{self.name} unavailable",
            extra={"dependency": self.name, "error_type": type(exc).__name__},
        )
        if self._metrics is not None:
            self._metrics.dependency_outages.labels(self.name).inc()
            self._metrics.dependency_up.labels(self.name).set(0)

    def recovered(self) -> None:
        since = self.down_since
        if since is None:
            return
        self.down_since = None
        logger.warning(
            f"{self.name} available again",
            extra={"dependency": self.name, "outage_s": round(self._clock() - since, 3)},
        )
        if self._metrics is not None:
            self._metrics.dependency_up.labels(self.name).set(1)


class Database:
    """Runs blocking database work off the event loop, bounded by ``timeout`` seconds.

    ``threads`` caps the calls in worker threads at once (the pool's size); with ``writer``
    (SQLite), :meth:`write` runs on the event loop through it.
    """

    def __init__(
        self,
        timeout: float,
        outage: Outage,
        *,
        threads: int | None = None,
        writer: SqliteWriter | None = None,
    ) -> None:
        self.timeout = timeout
        self.outage = outage
        self.writer = writer
        self._limiter = anyio.CapacityLimiter(threads) if threads else None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread; 503 if the database is down or slower than timeout."""
        return await self._bounded(self._in_thread(fn, *args))

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        with anyio.fail_after(self.timeout), give_up_at(time.monotonic() + self.timeout):
            return await anyio.to_thread.run_sync(
                functools.partial(fn, *args), abandon_on_cancel=True, limiter=self._limiter
            )

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``: short write transactions (the user grants).

        With a ``writer`` (SQLite), on the event loop, queued behind this process's other
        writes and possibly committed with them (:class:`~sealring.server.sqlite_writer.
        SqliteWriter`): ``fn`` must write only through
        :func:`~sealring.server.stores._statements.write`.  Otherwise the same as :meth:`call`.
        """
        if self.writer is None:
            return await self.call(fn, *args)
        return await self._bounded(self.writer.run(fn, *args, patience=self.timeout))

    async def _bounded(self, work: Awaitable[T]) -> T:
        """``work``'s result; a timeout (including :class:`~sealring.server.sqlite_writer.
        WriteLockTimeout`) or a database that is down becomes a 503 and marks the outage."""
        try:
            result = await work
        except TimeoutError as exc:
            self.outage.failed(exc)
            raise TemporarilyUnavailable("the database is not answering") from exc
        except _DATABASE_DOWN as exc:
            self.outage.failed(exc)
            raise TemporarilyUnavailable("the database is unavailable") from exc
        self.outage.recovered()
        return result

    async def aclose(self) -> None:
        """At shutdown: the writer's queue is refused and its connection returned."""
        if self.writer is not None:
            await self.writer.aclose()
