"""The server secret: the HMAC key of client secrets (docs/server.md, "Client secrets").

Configured (``SEALRING_SERVER_SECRET`` / ``_FILE``) or generated once and kept in the
``oauth_server_secret`` table, where every replica finds the same one.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealring.server.stores.tables import ServerSecret

__all__ = ["load_server_secret"]


def load_server_secret(
    engine: Engine, configured: bytes | None, *, clock: Callable[[], float] = time.time
) -> bytes:
    """The configured server secret, else the one in the database, created on first use."""
    if configured is not None:
        return configured
    with Session(engine) as session:
        row = session.get(ServerSecret, 1)
        if row is not None:
            return row.secret
    try:
        with Session(engine) as session, session.begin():
            session.add(ServerSecret(id=1, secret=secrets.token_bytes(32), created_at=clock()))
    except IntegrityError:
        pass  # another replica created it first; use theirs
    with Session(engine) as session:
        row = session.get(ServerSecret, 1)
        assert row is not None
        return row.secret
