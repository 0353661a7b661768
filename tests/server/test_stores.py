"""The server's tables: single-use jtis, revocation records, pruning, and the migration."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from sealring.db import alembic_config, make_engine, upgrade
from sealring.server.stores.assertion_jtis import JtiStore
from sealring.server.stores.revocations import RevocationStore

TABLES = {"oauth_clients", "oauth_assertion_jtis", "oauth_revoked_tokens", "oauth_server_secret"}


def test_jti_single_use_and_pruning(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        jtis = JtiStore(engine)
        assert jtis.use("client", "j1", 100.0)
        assert not jtis.use("client", "j1", 100.0)
        assert jtis.use("other-client", "j1", 100.0)  # jti is unique per client
        assert jtis.use("client", "j2", 300.0)
        assert jtis.prune(200.0) == 2
        assert jtis.use("client", "j1", 400.0)  # expired rows are gone, so is the guarantee's need

        revoked = RevocationStore(engine)
        revoked.revoke("t1", "client", 100.0, now=50.0)
        revoked.revoke("t1", "client", 100.0, now=60.0)  # idempotent
        revoked.revoke("t2", "client", 500.0, now=60.0)
        assert revoked.is_revoked("t1")
        assert not revoked.is_revoked("t3")
        assert revoked.prune(200.0) == 1
        assert not revoked.is_revoked("t1")
        assert revoked.is_revoked("t2")
    finally:
        engine.dispose()


def test_migration_down_and_up(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0001_keys")
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()
