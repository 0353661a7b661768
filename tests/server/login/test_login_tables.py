"""The login tables (migration 0003_login), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealring.db import Base, alembic_config, upgrade
from sealring.server.stores.login_tables import (
    AccountRow,
    AuthorizationCodeRow,
    BrowserSessionRow,
    ConsentRow,
    GrantRow,
    InteractionRow,
    RefreshTokenRow,
)
from sealring.server.stores.tables import ClientRow
from sealring.server.tokens.handles import HandleHasher, HandleKind, new_handle

LOGIN_TABLES = {
    "oauth_accounts",
    "oauth_browser_sessions",
    "oauth_interactions",
    "oauth_grants",
    "oauth_authorization_codes",
    "oauth_refresh_tokens",
    "oauth_consents",
    "oauth_login_throttle",
}
NOW = 1_800_000_000.0
HASHER = HandleHasher(b"s" * 32)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def refused(engine: Engine) -> Iterator[Session]:
    """A transaction the database must refuse at commit (a constraint)."""
    with pytest.raises(IntegrityError), transaction(engine) as session:
        yield session


def seed(session: Session) -> None:
    session.add(
        ClientRow(
            client_id="client-1",
            name="App",
            auth_method="none",
            grant_types="authorization_code",
            scope="openid",
            audiences="",
            redirect_uris="https://app.example.com/cb",
            public=True,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    session.add(AccountRow(subject="sub-1", username="alice", created_at=NOW, updated_at=NOW))
    session.flush()


def code_row(**kw: object) -> AuthorizationCodeRow:
    values: dict[str, object] = {
        "code_hash": HASHER.hash(HandleKind.AUTHORIZATION_CODE, new_handle()),
        "client_id": "client-1",
        "subject": "sub-1",
        "redirect_uri": "https://app.example.com/cb",
        "redirect_uri_in_request": True,
        "scope": "openid",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "auth_time": NOW,
        "created_at": NOW,
        "expires_at": NOW + 60,
    }
    values.update(kw)
    return AuthorizationCodeRow(**values)


def grant_row(grant_id: str = "g-1") -> GrantRow:
    return GrantRow(
        grant_id=grant_id,
        client_id="client-1",
        subject="sub-1",
        scope="openid offline_access",
        auth_time=NOW,
        created_at=NOW,
        expires_at=NOW + 86400,
    )


def refresh_row(parent: bytes | None, generation: int) -> RefreshTokenRow:
    return RefreshTokenRow(
        token_hash=HASHER.hash(HandleKind.REFRESH_TOKEN, new_handle()),
        grant_id="g-1",
        parent_hash=parent,
        generation=generation,
        scope="openid",
        created_at=NOW,
        expires_at=NOW + 3600,
    )


def test_migration_matches_the_table_models(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= LOGIN_TABLES
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        if table.name in LOGIN_TABLES or table.name == "oauth_clients":
            table.to_metadata(metadata)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    # Only differences in the login tables count; the clients table is there for the keys.
    ours = [d for d in diffs if LOGIN_TABLES & set(str(d).split("'"))]
    assert ours == []


def test_downgrade_removes_only_the_login_tables(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002_clients")
    names = set(inspect(engine).get_table_names())
    assert not LOGIN_TABLES & names
    assert "oauth_clients" in names
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= LOGIN_TABLES


def test_code_is_consumed_once_by_a_conditional_update(engine: Engine) -> None:
    with transaction(engine) as session:
        seed(session)
        row = code_row()
        session.add(row)
    consume = (
        update(AuthorizationCodeRow)
        .where(AuthorizationCodeRow.code_hash == row.code_hash)
        .where(AuthorizationCodeRow.consumed_at.is_(None))
        .values(consumed_at=NOW + 1)
    )
    with engine.begin() as conn:
        assert conn.execute(consume).rowcount == 1
    with engine.begin() as conn:
        assert conn.execute(consume).rowcount == 0


def test_code_living_longer_than_60_seconds_is_refused(engine: Engine) -> None:
    with transaction(engine) as session:
        seed(session)
    with refused(engine) as session:
        session.add(code_row(expires_at=NOW + 61))


def test_refresh_token_has_at_most_one_successor(engine: Engine) -> None:
    with transaction(engine) as session:
        seed(session)
        session.add(grant_row())
        parent = refresh_row(None, 0)
        session.add(parent)
        session.flush()
        session.add(refresh_row(parent.token_hash, 1))
    with refused(engine) as session:
        session.add(refresh_row(parent.token_hash, 2))


def test_a_generation_appears_once_per_grant(engine: Engine) -> None:
    with transaction(engine) as session:
        seed(session)
        session.add(grant_row())
        session.add(refresh_row(None, 0))
    with refused(engine) as session:
        session.add(refresh_row(None, 0))


def test_usernames_are_unique(engine: Engine) -> None:
    with transaction(engine) as session:
        seed(session)
    with refused(engine) as session:
        session.add(AccountRow(subject="sub-2", username="alice", created_at=NOW, updated_at=NOW))


def test_interaction_prompt_is_login_or_consent(engine: Engine) -> None:
    with transaction(engine) as session:
        seed(session)
    row = InteractionRow(
        uid_hash=HASHER.hash(HandleKind.INTERACTION, new_handle()),
        client_id="client-1",
        request="{}",
        prompt="dance",
        created_at=NOW,
        expires_at=NOW + 600,
    )
    with refused(engine) as session:
        session.add(row)


def test_deleting_a_client_removes_its_codes_grants_and_consents(engine: Engine) -> None:
    with transaction(engine) as session:
        seed(session)
        session.add(grant_row())
        session.add(code_row())
        session.add(refresh_row(None, 0))
        session.add(
            ConsentRow(
                subject="sub-1",
                client_id="client-1",
                scope="openid",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    with transaction(engine) as session:
        session.delete(session.get(ClientRow, "client-1"))
    with Session(engine) as session:
        for model in (GrantRow, AuthorizationCodeRow, RefreshTokenRow, ConsentRow):
            assert session.scalar(select(func.count()).select_from(model)) == 0
        assert session.get(AccountRow, "sub-1") is not None


def test_deleting_an_account_ends_its_sessions(engine: Engine) -> None:
    with transaction(engine) as session:
        seed(session)
        session.add(
            BrowserSessionRow(
                session_id="sid-1",
                cookie_hash=HASHER.hash(HandleKind.SESSION, new_handle()),
                subject="sub-1",
                auth_time=NOW,
                created_at=NOW,
                last_seen_at=NOW,
                expires_at=NOW + 3600,
            )
        )
    with transaction(engine) as session:
        session.delete(session.get(AccountRow, "sub-1"))
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(BrowserSessionRow)) == 0
