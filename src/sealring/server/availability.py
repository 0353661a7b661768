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
They never wait for the write lock there (:func:`~sealring.server.stores._statements.
without_waiting`); a busy lock is retried after a short asynchronous sleep, until the same
deadline.

An :class:`Outage` turns a stream of failures into one warning when the dependency goes away and
one when it is back, with a counter and an up/down gauge, instead of one error line per request.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import exc as sa_exc

from sealring.server.errors import TemporarilyUnavailable
from sealring.server.logging import logger
from sealring.server.metrics import Metrics
from sealring.server.stores._statements import WriteLockBusy, give_up_at, without_waiting

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
# Retrying a write that found SQLite's write lock taken: the first pause, and the longest.
_FIRST_RETRY = 0.0002
_LONGEST_RETRY = 0.005


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

    ``threads`` caps the calls in worker threads at once (the pool's size); ``inline_writes``
    (SQLite) runs :meth:`write` on the event loop.
    """

    def __init__(
        self,
        timeout: float,
        outage: Outage,
        *,
        threads: int | None = None,
        inline_writes: bool = False,
    ) -> None:
        self.timeout = timeout
        self.outage = outage
        self.inline_writes = inline_writes
        self._limiter = anyio.CapacityLimiter(threads) if threads else None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread; 503 if the database is down or slower than timeout."""
        try:
            with anyio.fail_after(self.timeout), give_up_at(time.monotonic() + self.timeout):
                result = await anyio.to_thread.run_sync(
                    functools.partial(fn, *args), abandon_on_cancel=True, limiter=self._limiter
                )
        except TimeoutError as exc:
            self.outage.failed(exc)
            raise TemporarilyUnavailable("the database is not answering") from exc
        except _DATABASE_DOWN as exc:
            self.outage.failed(exc)
            raise TemporarilyUnavailable("the database is unavailable") from exc
        self.outage.recovered()
        return result

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``: short write transactions (the user grants).

        With ``inline_writes``, on the event loop: ``fn`` must write only through
        :func:`~sealring.server.stores._statements.write` (which then never waits for SQLite's
        lock) and must be safe to run again after :class:`WriteLockBusy`, which it raises
        before anything is written.  Otherwise the same as :meth:`call`.
        """
        if not self.inline_writes:
            return await self.call(fn, *args)
        deadline = anyio.current_time() + self.timeout
        pause = _FIRST_RETRY
        while True:
            try:
                with without_waiting():
                    result = fn(*args)
            except WriteLockBusy as exc:
                if anyio.current_time() + pause > deadline:
                    self.outage.failed(exc)
                    raise TemporarilyUnavailable("the database is not answering") from None
                await anyio.sleep(pause)
                pause = min(pause * 2, _LONGEST_RETRY)
                continue
            except _DATABASE_DOWN as exc:
                self.outage.failed(exc)
                raise TemporarilyUnavailable("the database is unavailable") from exc
            self.outage.recovered()
            return result
