"""The user grants' SQL: Core statements compiled once per dialect, run on the driver's cursor.

A code exchange or a refresh runs a handful of short statements.  Through SQLAlchemy's execution
layer each one costs tens of microseconds of Python (cache key, parameter and result
processing), several times what SQLite needs to run it; through the ORM, more.  Here each
statement is an ordinary Core construct with bound parameters, written once at module level;
:class:`Statement` compiles it once per dialect to the driver's SQL and parameter order, and
:class:`Transaction` executes it with the DB-API cursor of a pooled connection.

What SQLAlchemy's execution layer would otherwise provide is kept: a driver error becomes the
matching :mod:`sqlalchemy.exc` exception (so a locked or unreachable database is still a 503 in
:class:`~sealring.server.availability.Database`, never a 500), and a connection the dialect
reports as broken is invalidated in the pool.  Parameters are values the driver adapts itself
(``str``, ``bytes``, ``float``, ``int``, ``bool``, ``None``); SQLite returns booleans as 0/1,
so readers convert them.

A write transaction takes the write lock up front: ``BEGIN IMMEDIATE`` on SQLite (see
``_transactions``), and the rows it decides on are read ``FOR UPDATE`` on PostgreSQL.  On SQLite
the writers of one process also queue on a lock of their own first: a thread waiting there is
woken the moment the previous transaction ends, whereas SQLite's busy handler polls with sleeps
of 1 ms and more, so without it every thread but one of a busy worker would sleep and retry.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final

from sqlalchemy import Engine, bindparam, insert, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ClauseElement, KeyedColumnElement

from sealring.db import SQLITE_BUSY_TIMEOUT_MS
from sealring.server.tokens.handles import HandleHasher, HandleKind

__all__ = [
    "Statement",
    "Transaction",
    "WriteLockBusy",
    "consume_once",
    "give_up_at",
    "insert_row",
    "read",
    "without_waiting",
    "write",
]

Row = tuple[Any, ...]
# SQLite's result codes for "another connection holds the lock".
_SQLITE_BUSY: Final = frozenset({5, 6})
_waits: ContextVar[bool] = ContextVar("sealring_write_waits", default=True)
_deadline: ContextVar[float | None] = ContextVar("sealring_write_deadline", default=None)


@contextmanager
def give_up_at(deadline: float) -> Iterator[None]:
    """Inside (and in the worker threads started inside): a :func:`write` still running at
    ``deadline`` (:func:`time.monotonic`) rolls back instead of committing.

    The request that waited for it has answered 503 by then; committing afterwards would
    consume a code or a refresh token whose client never got the tokens, and its retry would
    then look like a replay.
    """
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


class WriteLockBusy(Exception):
    """SQLite's write lock is held elsewhere and this write was told not to wait for it
    (:func:`without_waiting`); raised before anything is read or written, so the caller may
    simply try again later."""


@contextmanager
def without_waiting() -> Iterator[None]:
    """Inside: a SQLite :func:`write` that finds the write lock taken raises
    :class:`WriteLockBusy` at once instead of waiting (up to the busy timeout) for it.

    For writes run on the event loop, which must never block: the caller retries after an
    asynchronous sleep.  No effect on PostgreSQL.
    """
    token = _waits.set(False)
    try:
        yield
    finally:
        _waits.reset(token)


class Statement:
    """A Core statement and, per dialect, its SQL text and positional parameter order."""

    __slots__ = ("_by_dialect", "clause")

    def __init__(self, clause: ClauseElement) -> None:
        self.clause = clause
        self._by_dialect: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...] | None]:
        """``(sql, names)``: ``names`` orders a positional driver's parameters, else None."""
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = self.clause.compile(dialect=dialect)
            positions: list[str] | None = getattr(compiled, "positiontup", None)
            names = tuple(positions) if dialect.positional and positions is not None else None
            found = self._by_dialect[dialect.name] = (str(compiled), names)
        return found


def insert_row(table: type[Any], *columns: KeyedColumnElement[Any]) -> Statement:
    """``INSERT`` of one row of ``table`` (a mapped class), each of ``columns`` bound by its
    name."""
    return Statement(insert(table).values({c: bindparam(c.key) for c in columns}))


def consume_once(table: type[Any], key: KeyedColumnElement[Any], **values: Any) -> Statement:
    """The single-use guard on ``table`` (a mapped class with ``consumed_at`` and
    ``expires_at``): ``UPDATE ... SET consumed_at = :now, <values> WHERE <key> = :hash AND
    consumed_at IS NULL AND expires_at > :now``; one row updated means this caller won."""
    return Statement(
        update(table)
        .where(
            key == bindparam("hash"),
            table.consumed_at.is_(None),
            table.expires_at > bindparam("now"),
        )
        .values(consumed_at=bindparam("now"), **values)
    )


class Transaction:
    """Statements on one pooled connection, inside the transaction :func:`write` opened (or
    none, for :func:`read`)."""

    __slots__ = ("_connection", "_cursor", "_dialect")

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection = connection  # the pool's proxy of the DB-API connection
        self._dialect = dialect
        self._cursor = connection.driver_connection.cursor()

    def execute(self, statement: Statement, params: Mapping[str, Any]) -> Any:
        """Run ``statement``; returns the DB-API cursor (rows, ``rowcount``)."""
        sql, names = statement.compiled(self._dialect)
        values = tuple(params[name] for name in names) if names is not None else params
        try:
            self._cursor.execute(sql, values)
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._translated(exc, sql) from exc
        return self._cursor

    def first(self, statement: Statement, params: Mapping[str, Any]) -> Row | None:
        row: Row | None = self.execute(statement, params).fetchone()
        return row

    def rowcount(self, statement: Statement, params: Mapping[str, Any]) -> int:
        return int(self.execute(statement, params).rowcount)

    def find_handle(
        self, statement: Statement, hasher: HandleHasher, kind: HandleKind, presented: str
    ) -> Row | None:
        """The row ``statement`` finds by ``presented``'s hash (its first column), or None for
        a value that is no handle or was never stored."""
        key = hasher.lookup_key(kind, presented)
        if key is None:
            return None
        row = self.first(statement, {"hash": key})
        if row is None or not hasher.matches(kind, presented, row[0]):
            return None
        return row

    def run(self, sql: str) -> None:
        """A statement without parameters."""
        try:
            self._cursor.execute(sql)
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._translated(exc, sql) from exc

    def begin_immediate(self, *, wait: bool) -> None:
        """SQLite: take the write lock; without ``wait``, raise :class:`WriteLockBusy` rather
        than let the busy handler wait for it."""
        if wait:
            self.run("BEGIN IMMEDIATE")
            return
        self.run("PRAGMA busy_timeout = 0")
        try:
            self._cursor.execute("BEGIN IMMEDIATE")
        except self._dialect.loaded_dbapi.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) in _SQLITE_BUSY:
                raise WriteLockBusy from None
            raise self._translated(exc, "BEGIN IMMEDIATE") from exc
        finally:
            self.run(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")

    def _end(self, commit: bool) -> None:
        driver = self._connection.driver_connection
        try:
            self._cursor.close()
            if commit:
                driver.commit()
            else:
                driver.rollback()
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._translated(exc, "COMMIT" if commit else "ROLLBACK") from exc

    def close(self) -> None:
        self._cursor.close()

    def _translated(self, exc: Any, sql: str) -> sa_exc.StatementError:
        """The :mod:`sqlalchemy.exc` error SQLAlchemy itself would raise for ``exc``."""
        dbapi = self._dialect.loaded_dbapi
        broken = self._dialect.is_disconnect(exc, self._connection.driver_connection, None)
        if broken:
            self._connection.invalidate(exc)
        translated: sa_exc.StatementError = sa_exc.DBAPIError.instance(
            sql,
            None,
            exc,
            dbapi.Error,
            hide_parameters=True,
            connection_invalidated=broken,
            dialect=self._dialect,
        )
        return translated


_sqlite_writers: dict[str, threading.Lock] = {}
_sqlite_writers_guard = threading.Lock()


def _process_writer_lock(engine: Engine) -> threading.Lock:
    key = engine.url.render_as_string(hide_password=True)
    lock = _sqlite_writers.get(key)
    if lock is None:
        with _sqlite_writers_guard:
            lock = _sqlite_writers.setdefault(key, threading.Lock())
    return lock


@contextmanager
def read(engine: Engine) -> Iterator[Transaction]:
    """A pooled connection for reads (no explicit transaction; the pool resets it after)."""
    connection = engine.raw_connection()
    try:
        tx = Transaction(connection, engine.dialect)
        try:
            yield tx
        finally:
            tx.close()
    finally:
        connection.close()


@contextmanager
def write(engine: Engine) -> Iterator[Transaction]:
    """One write transaction holding the write lock from its first statement; committed if the
    block returns, rolled back if it raises."""
    sqlite = engine.dialect.name == "sqlite"
    wait = _waits.get()
    lock = _process_writer_lock(engine) if sqlite else None
    if lock is not None and not (
        lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000) if wait else lock.acquire(False)
    ):
        if not wait:
            raise WriteLockBusy
        raise sa_exc.OperationalError("BEGIN IMMEDIATE", None, TimeoutError("database is locked"))
    try:
        connection = engine.raw_connection()
        try:
            tx = Transaction(connection, engine.dialect)
            if sqlite:
                tx.begin_immediate(wait=wait)
            try:
                yield tx
                deadline = _deadline.get()
                if deadline is not None and time.monotonic() > deadline:
                    raise sa_exc.OperationalError(
                        "COMMIT", None, TimeoutError("the caller stopped waiting")
                    )
            except BaseException:
                # The block's own error is the one to report; a failed rollback (the server went
                # away) has invalidated the connection, and nothing was committed either way.
                with contextlib.suppress(sa_exc.DBAPIError):
                    tx._end(commit=False)
                raise
            tx._end(commit=True)
        finally:
            connection.close()
    finally:
        if lock is not None:
            lock.release()
