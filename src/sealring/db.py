"""Database plumbing shared by every layer: the declarative base, engines, migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and SQLAlchemy, not the
``sqlite3`` driver, emits ``BEGIN`` so that a connection can ask for ``BEGIN IMMEDIATE`` (take
the write lock up front) with the ``sqlite_immediate`` execution option. PostgreSQL is reached
through psycopg 3 (``postgresql+psycopg://``).

:func:`upgrade` runs the Alembic migrations of ``sealring/migrations`` programmatically; several
replicas may call it at the same moment: on PostgreSQL the upgrade runs under a transaction-level
advisory lock, on SQLite inside ``BEGIN IMMEDIATE``, so exactly one process migrates and the
others find the schema at head.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase

from sealring.errors import SealringError

__all__ = [
    "MIGRATIONS_DIR",
    "Base",
    "DatabaseConfigError",
    "make_engine",
    "normalise_url",
    "schema_is_current",
    "sqlite_path",
    "upgrade",
    "write_transaction",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Arbitrary, fixed 63-bit numbers: the PostgreSQL advisory locks Sealring takes.
MIGRATION_LOCK_ID = 0x5EA1_0001
KEYS_LOCK_ID = 0x5EA1_0002


class DatabaseConfigError(SealringError):
    """The database URL is unusable (unsupported dialect, malformed)."""

    code = "database_config"
    usage = True


class Base(DeclarativeBase):
    """The declarative base of every table of every layer."""


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` as psycopg 3; refuse other drivers loudly."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseConfigError("malformed database URL") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise DatabaseConfigError(
                f"unsupported PostgreSQL driver {driver!r}: use postgresql+psycopg://"
            )
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise DatabaseConfigError(f"unsupported SQLite driver {driver!r}")
    else:
        raise DatabaseConfigError(
            f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://"
        )
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """The file of a file-backed SQLite URL, else None (PostgreSQL, in-memory SQLite)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(
    url: str,
    *,
    connect_timeout: float | None = None,
    statement_timeout: float | None = None,
    pool_timeout: float | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine for ``url``: SQLite with WAL and a busy timeout, or PostgreSQL over psycopg 3.

    The three timeouts (seconds) bound what PostgreSQL can make a caller wait: establishing a
    connection (libpq ``connect_timeout``, whole seconds, at least 2), one statement (the server's
    ``statement_timeout``) and waiting for a pooled connection (``pool_timeout``).
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        _create_private(sqlite_path(url))
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    pg_args: dict[str, Any] = {}
    if connect_timeout is not None:
        # libpq reads the value as whole seconds and treats anything under 2 as 2.
        pg_args["connect_timeout"] = max(2, math.ceil(connect_timeout))
    if statement_timeout is not None:
        pg_args["options"] = f"-c statement_timeout={max(1, round(statement_timeout * 1000))}"
    if pool_timeout is not None:
        kwargs["pool_timeout"] = pool_timeout
    return create_engine(url, connect_args=pg_args, **kwargs)


def _create_private(path: Path | None) -> None:
    """Create a new SQLite database file 0600 before SQLite does (with the umask, often 0644).

    SQLite gives the ``-wal`` and ``-shm`` files the database file's mode, so they follow.
    """
    if path is None or path.exists() or not path.parent.is_dir():
        return  # a missing directory stays SQLite's error to report
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy emit BEGIN itself (see _on_begin); the driver's implicit
        # transactions cannot be made IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine, lock_id: int) -> Iterator[Connection]:
    """A transaction serialised with every other writer that names ``lock_id``.

    PostgreSQL: a transaction-level advisory lock on ``lock_id`` (released at commit/rollback,
    including when the process dies). SQLite: ``BEGIN IMMEDIATE``, the database write lock.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})
            yield conn


def alembic_config() -> Config:
    """An Alembic configuration pointing at the package's migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def schema_is_current(engine: Engine) -> bool | None:
    """True when the database is at the newest migration, False when at an older one, None
    when it has none (not a Sealring database). Reads only."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    if not current:
        return None
    return set(current) == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def upgrade(engine: Engine) -> None:
    """``alembic upgrade head``: idempotent, and safe when several replicas start at once."""
    config = alembic_config()
    with write_transaction(engine, MIGRATION_LOCK_ID) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
