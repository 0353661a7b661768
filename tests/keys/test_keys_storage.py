"""Engines, migrations and the KEK ring."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, text

from sealring.db import DatabaseConfigError, make_engine, normalise_url, upgrade
from sealring.keys import KEKError, KEKRing, KeyConfigError, load_kek, load_key_config


def test_upgrade_is_idempotent(database_url: str, engines: Callable[[str], Engine]) -> None:
    engine = engines(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT generation FROM signing_key_generation")).scalar() == 0
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()


def test_concurrent_processes_migrate_once(database_url: str) -> None:
    script = "import sys; from sealring.db import make_engine, upgrade; e = make_engine(sys.argv[1]); upgrade(e); e.dispose()"
    procs = [
        subprocess.Popen([sys.executable, "-c", script, database_url], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_urls_are_normalised(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://h/db", "postgresql+psycopg2://h/db", "not a url"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(DatabaseConfigError):
        make_engine(url)


def test_kek_binds_kid_and_algorithm() -> None:
    ring = KEKRing.from_string(KEKRing.generate_text())
    kek_id, blob = ring.encrypt(b"secret", kid="a", alg="ES256")
    assert kek_id == ring.primary_id
    assert ring.decrypt(blob, kid="a", alg="ES256", kek_id=kek_id) == b"secret"
    for kid, alg in (("b", "ES256"), ("a", "RS256")):
        with pytest.raises(InvalidTag):
            ring.decrypt(blob, kid=kid, alg=alg, kek_id=kek_id)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(InvalidTag):
        ring.decrypt(tampered, kid="a", alg="ES256")


def test_kek_ring_first_encrypts_all_decrypt() -> None:
    old, new = KEKRing.generate_text(), KEKRing.generate_text()
    _, blob = KEKRing.from_string(old).encrypt(b"k", kid="a", alg="ES256")
    both = KEKRing.from_string(f"{new}, {old}")
    assert both.decrypt(blob, kid="a", alg="ES256") == b"k"
    assert both.encrypt(b"k", kid="a", alg="ES256")[0] == KEKRing.from_string(new).primary_id
    assert repr(both) == f"KEKRing(ids={list(both.ids)!r})"


@pytest.mark.parametrize("text_", ["", "not base64!", "AAAA"])
def test_malformed_keks_are_refused(text_: str) -> None:
    with pytest.raises(KEKError):
        KEKRing.from_string(text_)


def test_kek_from_env_and_file(tmp_path: Path) -> None:
    value = KEKRing.generate_text()
    assert load_kek("postgresql+psycopg://h/db", {"SEALRING_KEK": value}).ids
    path = tmp_path / "kek"
    path.write_text(value + "\n")
    path.chmod(0o600)
    ring = load_kek("postgresql+psycopg://h/db", {"SEALRING_KEK_FILE": str(path)})
    assert ring.primary_id == KEKRing.from_string(value).primary_id
    with pytest.raises(KEKError):
        load_kek("sqlite:///x.db", {"SEALRING_KEK_FILE": str(tmp_path / "missing")})


def test_postgres_without_a_kek_refuses_to_start() -> None:
    with pytest.raises(KeyConfigError, match="SEALRING_KEK"):
        load_key_config("postgresql+psycopg://h/db", {})


def test_development_kek_file_is_private_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'sealring.db'}"
    with caplog.at_level(logging.WARNING, logger="sealring.keys"):
        first = load_kek(url, {})
        second = load_kek(url, {})
    kek_file = tmp_path / "sealring.db.kek"
    assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
    assert first.primary_id == second.primary_id  # created once, then reused
    warnings = [r for r in caplog.records if "DEVELOPMENT SETUP" in r.getMessage()]
    assert len(warnings) == 2  # on every start
    assert kek_file.read_text().strip() not in caplog.text
