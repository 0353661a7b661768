"""A write transaction that takes the write lock up front on SQLite.

A guarded ``UPDATE ... WHERE consumed_at IS NULL`` is atomic on both databases, but a transaction
that first reads and then writes needs SQLite's ``BEGIN IMMEDIATE``: under WAL a deferred
transaction whose snapshot went stale fails at its first write instead of waiting.  PostgreSQL
(READ COMMITTED) re-checks the ``WHERE`` of a blocked ``UPDATE`` once the other writer commits,
so there the guard alone decides who wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

__all__ = ["write_transaction"]


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction, committed on success and rolled back on error."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn
