"""Issue 10, item 3: the server secret is sealed under the KEK, not stored in clear beside the
client secret hashes and handles it keys; a clear one from before is sealed without changing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from sealring.cli import app
from sealring.db import alembic_config, make_engine, upgrade
from sealring.keys import KEKError, KEKRing, KeyConfigError
from sealring.server.clients import SecretHasher
from sealring.server.stores.server_secret import load_server_secret, reseal_server_secret
from sealring.server.tokens.handles import HandleHasher, HandleKind, new_handle


def _row(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM oauth_server_secret")).mappings().one()
    return dict(row)


def _ring(*keys: str) -> KEKRing:
    return KEKRing.from_string(",".join(keys))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def test_a_new_server_secret_is_sealed_under_the_kek(engine: Engine) -> None:
    upgrade(engine)
    kek = _ring(KEKRing.generate_text())
    value = load_server_secret(engine, None, kek=kek)
    row = _row(engine)
    assert row["secret"] is None
    assert row["kek_id"] == kek.primary_id
    assert isinstance(row["secret_enc"], bytes)
    assert value not in row["secret_enc"]
    assert load_server_secret(engine, None, kek=kek) == value  # the same one, every start
    with pytest.raises(KEKError, match=f"sealed under KEK id {kek.primary_id}"):
        load_server_secret(engine, None, kek=None)
    stranger = _ring(KEKRing.generate_text())
    with pytest.raises(KEKError, match="cannot open the server secret"):
        load_server_secret(engine, None, kek=stranger)
    assert _row(engine) == row  # a failed start changed nothing


def test_without_a_kek_no_clear_secret_is_made(engine: Engine) -> None:
    upgrade(engine)
    with pytest.raises(KeyConfigError, match="SEALRING_SERVER_SECRET"):
        load_server_secret(engine, None, kek=None)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM oauth_server_secret")).scalar_one() == 0
    assert load_server_secret(engine, b"c" * 32, kek=None) == b"c" * 32  # configured: as is


def test_a_clear_secret_from_before_is_sealed_and_still_verifies(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A database made before migration 0007 keeps its secret's value: client secret hashes
    and handles made under it verify after the first start with a KEK has sealed it."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006_login_throttle")
    old = secrets.token_bytes(32)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO oauth_server_secret (id, secret, created_at) VALUES (1, :s, 0)"),
            {"s": old},
        )
    client_hash = SecretHasher(old).hash("the client's secret")
    handle = new_handle()
    handle_hash = HandleHasher(old).hash(HandleKind.REFRESH_TOKEN, handle)
    upgrade(engine)
    # Without a KEK the clear secret keeps working, with a warning at every start.
    assert load_server_secret(engine, None, kek=None) == old
    assert "stored in clear" in caplog.text
    kek = _ring(KEKRing.generate_text())
    value = load_server_secret(engine, None, kek=kek)
    assert value == old
    row = _row(engine)
    assert row["secret"] is None
    assert row["kek_id"] == kek.primary_id
    assert SecretHasher(load_server_secret(engine, None, kek=kek)).matches(
        "the client's secret", client_hash
    )
    assert HandleHasher(value).matches(HandleKind.REFRESH_TOKEN, handle, handle_hash)


def test_kek_rotation_reseals_the_server_secret(engine: Engine, database_url: str) -> None:
    upgrade(engine)
    old_text, new_text = KEKRing.generate_text(), KEKRing.generate_text()
    value = load_server_secret(engine, None, kek=_ring(old_text))
    assert not reseal_server_secret(engine, _ring(old_text))  # already under it
    both = _ring(new_text, old_text)
    assert load_server_secret(engine, None, kek=both) == value  # a start with NEW,OLD...
    assert _row(engine)["kek_id"] == both.primary_id  # ...seals it under NEW
    assert load_server_secret(engine, None, kek=_ring(new_text)) == value  # OLD can go
    # `sealring keys rewrap` does it too, for a secret still under OLD.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM oauth_server_secret"))
    value = load_server_secret(engine, None, kek=_ring(old_text))
    env = {"SEALRING_DATABASE_URL": database_url, "SEALRING_KEK": f"{new_text},{old_text}"}
    result = CliRunner().invoke(app, ["keys", "rewrap"], env=env)
    assert result.exit_code == 0, result.output
    assert "sealed the server secret under the first KEK" in result.output
    assert load_server_secret(engine, None, kek=_ring(new_text)) == value
