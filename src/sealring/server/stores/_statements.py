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

Inside a :class:`WriteBatch` (SQLite, on the event loop: see
:mod:`sealring.server.sqlite_writer`) the write lock is already held by the batch's own
connection, and :func:`write` is a ``SAVEPOINT`` in the batch's transaction instead: released
when the block returns, rolled back to when it raises; the batch commits them all at once.
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
    "WriteBatch",
    "consume_once",
    "give_up_at",
    "insert_row",
    "read",
    "write",
]

Row = tuple[Any, ...]
# SQLite's result codes for "another connection holds the lock".
_SQLITE_BUSY: Final = frozenset({5, 6})
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

    def try_begin_immediate(self) -> bool:
        """SQLite, on a connection whose busy timeout is 0: take the write lock if it is free;
        False (and no transaction) if another connection holds it."""
        try:
            self._cursor.execute("BEGIN IMMEDIATE")
        except self._dialect.loaded_dbapi.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) in _SQLITE_BUSY:
                return False
            raise self._translated(exc, "BEGIN IMMEDIATE") from exc
        return True

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
_batch: ContextVar[WriteBatch | None] = ContextVar("sealring_write_batch", default=None)


def _process_writer_lock(engine: Engine) -> threading.Lock:
    key = engine.url.render_as_string(hide_password=True)
    lock = _sqlite_writers.get(key)
    if lock is None:
        with _sqlite_writers_guard:
            lock = _sqlite_writers.setdefault(key, threading.Lock())
    return lock


class WriteBatch:
    """SQLite: one transaction holding the write lock, in which several callers' :func:`write`
    blocks run one after the other, each a ``SAVEPOINT`` (group commit).

    The batch has a connection of its own whose busy timeout is 0, so taking the lock
    (:meth:`try_begin`) never waits: the caller, an event loop, retries later.  Without
    ``autocheckpoint`` its commits never run a WAL checkpoint (someone else must).  Between
    :meth:`try_begin` and :meth:`end`, :meth:`running` makes :func:`write` on ``engine`` use
    the batch.  A database error inside any block spoils the batch (:attr:`spoiled`): its
    savepoint could not be trusted to have undone it, so the caller ends it with a rollback.
    """

    def __init__(self, engine: Engine, *, autocheckpoint: bool = True) -> None:
        if engine.dialect.name != "sqlite":
            raise ValueError("a write batch is for SQLite")
        self.engine = engine
        self._autocheckpoint = autocheckpoint
        self._lock = _process_writer_lock(engine)
        self._connection: Any = None
        self._tx: Transaction | None = None
        self.spoiled = False
        self.open = False

    def _transaction(self) -> Transaction:
        if self._tx is None:
            connection: Any = self.engine.raw_connection()
            try:
                cursor = connection.driver_connection.cursor()
                try:
                    cursor.execute("PRAGMA busy_timeout = 0")
                    if not self._autocheckpoint:
                        # Someone else checkpoints (sqlite_writer.Checkpointer), off the loop.
                        cursor.execute("PRAGMA wal_autocheckpoint = 0")
                finally:
                    cursor.close()
                self._tx = Transaction(connection, self.engine.dialect)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._tx

    def try_begin(self) -> bool:
        """Take this process's writer lock and SQLite's write lock without waiting; False if
        either is held (nothing to undo then)."""
        if self.open:
            raise RuntimeError("the batch is already open")
        if not self._lock.acquire(False):
            return False
        try:
            taken = self._transaction().try_begin_immediate()
        except BaseException:
            self._lock.release()
            self._discard()
            raise
        if not taken:
            self._lock.release()
            return False
        self.open, self.spoiled = True, False
        return True

    @contextmanager
    def running(self) -> Iterator[None]:
        """Inside, :func:`write` on the batch's engine is a savepoint of the open batch."""
        if not self.open:
            raise RuntimeError("the batch is not open")
        token = _batch.set(self)
        try:
            yield
        finally:
            _batch.reset(token)

    @contextmanager
    def savepoint(self) -> Iterator[Transaction]:
        tx = self._tx
        if not self.open or self.spoiled or tx is None:
            # An earlier block's database error ended the batch's usefulness; never write
            # outside the transaction that holds the lock.
            raise sa_exc.OperationalError(
                "SAVEPOINT", None, RuntimeError("the write batch was spoiled")
            )
        tx.run("SAVEPOINT sealring_write")
        try:
            yield tx
        except BaseException as exc:
            if isinstance(exc, sa_exc.DBAPIError):
                self.spoiled = True
            try:
                tx.run("ROLLBACK TO sealring_write")
                tx.run("RELEASE sealring_write")
            except sa_exc.DBAPIError:
                self.spoiled = True
            raise
        try:
            tx.run("RELEASE sealring_write")
        except sa_exc.DBAPIError:
            self.spoiled = True
            raise

    def end(self, *, commit: bool) -> None:
        """Commit (or roll back) the batch and release the locks.  A failed commit raises the
        database's error, with nothing committed."""
        if not self.open:
            raise RuntimeError("the batch is not open")
        tx, connection = self._tx, self._connection
        assert tx is not None
        assert connection is not None
        try:
            driver = connection.driver_connection
            try:
                if commit and not self.spoiled:
                    driver.commit()
                else:
                    driver.rollback()
            except self.engine.dialect.loaded_dbapi.Error as exc:
                with contextlib.suppress(self.engine.dialect.loaded_dbapi.Error):
                    driver.rollback()
                raise tx._translated(exc, "COMMIT" if commit else "ROLLBACK") from exc
        except BaseException:
            self._discard()
            raise
        finally:
            self.open = False
            self._lock.release()

    def _discard(self) -> None:
        """Give the connection back (the pool resets it); the next batch opens a fresh one."""
        tx, connection = self._tx, self._connection
        self._tx = self._connection = None
        if tx is not None:
            tx.close()
        if connection is not None:
            with contextlib.suppress(Exception):
                cursor = connection.driver_connection.cursor()
                cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
                cursor.execute("PRAGMA wal_autocheckpoint = 1000")  # SQLite's default
                cursor.close()
            connection.close()

    def close(self) -> None:
        """Return the batch's connection to the pool (at shutdown); a batch still open is
        rolled back."""
        if self.open:
            self.end(commit=False)
        self._discard()


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
    block returns, rolled back if it raises.

    Inside a :class:`WriteBatch` running on ``engine``: a savepoint of the batch's transaction,
    which the batch commits later.
    """
    batch = _batch.get()
    if batch is not None and batch.engine is engine:
        with batch.savepoint() as tx:
            yield tx
        return
    sqlite = engine.dialect.name == "sqlite"
    lock = _process_writer_lock(engine) if sqlite else None
    if lock is not None and not lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
        raise sa_exc.OperationalError("BEGIN IMMEDIATE", None, TimeoutError("database is locked"))
    try:
        connection = engine.raw_connection()
        try:
            tx = Transaction(connection, engine.dialect)
            if sqlite:
                tx.run("BEGIN IMMEDIATE")
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
