"""Real ``sealring serve`` replicas and ``sealring`` CLI runs sharing one PostgreSQL database
(or, with ``sqlite_deployment``, one SQLite file).

Every process a test starts is killed and reaped at teardown, whatever the test did. Output
goes to files (a full pipe would stall a server), shown when a replica fails to start.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.deployment import ISSUER, JWKS_MAX_AGE, TOKEN_LIFETIME, Deployment


@pytest.fixture
def deployment(fresh_postgres_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """A fresh database and the environment every replica and CLI run shares."""
    yield from _deployment(fresh_postgres_url, tmp_path)


@pytest.fixture
def sqlite_deployment(tmp_path: Path) -> Iterator[Deployment]:
    """The same on a fresh SQLite file: the replicas are processes of one host."""
    yield from _deployment(f"sqlite:///{tmp_path / 'sealring.db'}", tmp_path)


def _deployment(database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALRING_")}
    env.update(
        SEALRING_DATABASE_URL=database_url,
        SEALRING_KEK=base64.b64encode(secrets.token_bytes(32)).decode(),
        SEALRING_ISSUER=ISSUER,
        SEALRING_JWKS_MAX_AGE=str(JWKS_MAX_AGE),
        # A pre-publication of 2 x max-age is refused unless unsafe_key_schedule says the
        # resource servers are the test's own (2 s cooldown): docs/keys.md.
        SEALRING_KEY_PREPUBLICATION=str(2 * JWKS_MAX_AGE),
        SEALRING_UNSAFE_KEY_SCHEDULE="true",
        SEALRING_TOKEN_LIFETIME=str(TOKEN_LIFETIME),
        SEALRING_LOG_LEVEL="warning",
    )
    found = Deployment(env, tmp_path)
    try:
        yield found
    finally:
        for replica in found.replicas:
            replica.stop()
