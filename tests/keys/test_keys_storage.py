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


def test_a_kek_id_is_stable_across_releases() -> None:
    # Stored in every wrapped key's row (kek_id) and shown in KEKMismatch: it must not drift.
    assert KEKRing([bytes(32)]).primary_id == "47879296b68e3ee9"
    assert KEKRing([bytes(range(32))]).primary_id == "9dd3a22d1009b746"


def test_a_blob_in_the_documented_layout_decrypts() -> None:
    # 0x01 || 12-byte nonce || AES-256-GCM(ciphertext || tag), AAD binding the kid and alg: the
    # rows already stored were written this way, so the layout and AAD cannot change silently.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kek, nonce = bytes(range(32)), bytes(12)
    aad = b"sealring signing key v1\x00" + b"kid-1" + b"\x00" + b"ES256"
    blob = b"\x01" + nonce + AESGCM(kek).encrypt(nonce, b"private key", aad)
    ring = KEKRing([kek])
    assert ring.decrypt(blob, kid="kid-1", alg="ES256", kek_id=ring.primary_id) == b"private key"
    _, mine = ring.encrypt(b"private key", kid="kid-1", alg="ES256")
    assert mine[:1] == b"\x01"
    assert AESGCM(kek).decrypt(mine[1:13], mine[13:], aad) == b"private key"


def test_a_kek_file_lists_one_key_per_line() -> None:
    first, second = KEKRing.generate_text(), KEKRing.generate_text()
    ring = KEKRing.from_string(f"{first}\n{second}\n")
    assert ring.ids == (
        KEKRing.from_string(first).primary_id,
        KEKRing.from_string(second).primary_id,
    )


def test_a_kek_with_a_character_outside_base64_is_refused() -> None:
    text_ = KEKRing.generate_text()
    assert len(KEKRing.from_string(text_).ids) == 1
    for spoiled in (text_[:10] + "!" + text_[10:], text_[:10] + "." + text_[10:]):
        with pytest.raises(KEKError, match="#1 is not valid base64"):
            KEKRing.from_string(spoiled)


def test_a_kek_ring_names_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name goes into KEKMismatch: which KEK setting cannot open the stored keys.
    value = KEKRing.generate_text()
    assert KEKRing([bytes(32)]).source == "the configured KEK"
    assert KEKRing.from_string(value).source == "the configured KEK"
    assert KEKRing.from_string(value, source="X").source == "X"
    assert load_kek("postgresql+psycopg://h/db", {"SEALRING_KEK": value}).source == "SEALRING_KEK"
    path = tmp_path / "kek"
    path.write_text(value + "\n")
    path.chmod(0o600)
    assert KEKRing.from_file(path).source == f"the KEK file {path}"
    assert KEKRing.from_file(path, source="Y").source == "Y"
    from_env = load_kek("postgresql+psycopg://h/db", {"SEALRING_KEK_FILE": str(path)})
    assert from_env.source == f"the KEK file {path}"
    url = f"sqlite:///{tmp_path / 'sealring.db'}"
    dev = load_kek(url, {})
    assert dev.source == f"the development KEK file {tmp_path / 'sealring.db.kek'}"
    monkeypatch.setenv("SEALRING_KEK", value)
    assert load_kek(url).source == "SEALRING_KEK"  # no mapping given: the process environment
    assert load_kek(url).primary_id == KEKRing.from_string(value).primary_id
