"""Alembic environment: online migrations only, on the connection sealring.db.upgrade hands in.

Run from the command line (``alembic -c src/sealring/migrations/alembic.ini ...``) it connects to
``SEALRING_DATABASE_URL`` instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from sealring.db import Base, make_engine
from sealring.keys.config import database_url_from_env

config = context.config
connection = config.attributes.get("connection")


def _run(conn: Connection) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    url = database_url_from_env()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()
