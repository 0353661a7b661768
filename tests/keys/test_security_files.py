"""Development KEK and SQLite files are private to the service user (issue 10, item 3).

A local user who can write the data directory could plant a KEK beside the database and then
read the signing keys it wraps; a world-readable database shows every key and client record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from sealring.cli import app
from sealring.db import make_engine, upgrade
from sealring.keys import KeyManager
from sealring.keys.errors import KEKError
from sealring.keys.kek import DEV_KEK_WARNED_ENV, KEKRing, existing_kek, load_kek


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_planted_or_readable_development_kek_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sealring.db'}"
    kek_file = tmp_path / "sealring.db.kek"
    load_kek(url, {})  # creates it, 0600
    assert _mode(kek_file) == 0o600
    for mode in (0o644, 0o640, 0o604, 0o620, 0o602):
        kek_file.chmod(mode)
        with pytest.raises(KEKError, match="chmod 600"):
            load_kek(url, {})
    kek_file.chmod(0o600)
    load_kek(url, {})
    os.chown(kek_file, os.geteuid() + 1, -1)  # the tests run as root: planted by another user
    with pytest.raises(KEKError, match="owned by this user"):
        load_kek(url, {})


def test_a_planted_kek_written_before_first_start_is_refused(tmp_path: Path) -> None:
    kek_file = tmp_path / "sealring.db.kek"
    kek_file.write_text(KEKRing.generate_text() + "\n")
    kek_file.chmod(0o666)
    with pytest.raises(KEKError):
        load_kek(f"sqlite:///{tmp_path / 'sealring.db'}", {})


def test_an_explicit_kek_file_gets_the_same_owner_and_mode_check(tmp_path: Path) -> None:
    """SEALRING_KEK_FILE is refused on the same terms as the development file, naming the
    variable and the fix; `sealring keys` and `sealring serve` exit 2 on it."""
    kek_file = tmp_path / "mounted.kek"
    kek_file.write_text(KEKRing.generate_text() + "\n")
    env = {"SEALRING_KEK_FILE": str(kek_file)}
    url = "postgresql+psycopg://h/db"
    for mode in (0o644, 0o640, 0o604, 0o620, 0o602, 0o660):
        kek_file.chmod(mode)
        with pytest.raises(KEKError, match=r"\(SEALRING_KEK_FILE\).*chmod 600"):
            load_kek(url, env)
    kek_file.chmod(0o400)
    assert load_kek(url, env).primary_id == KEKRing.from_file(kek_file).primary_id
    kek_file.chmod(0o600)
    os.chown(kek_file, os.geteuid() + 1, -1)  # planted by another local user
    with pytest.raises(KEKError, match=r"owned by this user.*chown"):
        load_kek(url, env)
    with pytest.raises(KEKError, match="owned by this user"):
        existing_kek(url, env)  # the read-only commands' KEK, too
    os.chown(kek_file, os.geteuid(), -1)
    kek_file.chmod(0o644)
    db = f"sqlite:///{tmp_path / 'sealring.db'}"
    for command in (["keys", "init"], ["serve", "--port", "1"]):
        result = CliRunner().invoke(app, [*command, "--database", db], env=env)
        assert result.exit_code == 2, result.output
        assert "(SEALRING_KEK_FILE) must be owned by this user" in result.output
        assert "Traceback" not in result.output


def test_a_new_sqlite_database_and_its_wal_files_are_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "sealring.db"
        engine = make_engine(f"sqlite:///{path}")
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (x INTEGER)"))
                conn.execute(text("INSERT INTO t VALUES (1)"))
            files = [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))]
            present = [f for f in files if f.exists()]
            assert path in present
            assert len(present) == 3  # WAL mode: the test would be empty without them
            assert {f.name: _mode(f) for f in present} == {f.name: 0o600 for f in present}
        finally:
            engine.dispose()
    finally:
        os.umask(old)


def test_a_lost_development_kek_is_not_replaced_while_the_database_holds_keys(
    tmp_path: Path, managers: Callable[..., KeyManager]
) -> None:
    url = f"sqlite:///{tmp_path / 'sealring.db'}"
    kek_file = tmp_path / "sealring.db.kek"
    managers(url, kek=load_kek(url, {})).ensure_ready()  # keys stored under the new file
    kek_file.unlink()
    missing = rf"development KEK file {re.escape(str(kek_file))} is missing, but the database"
    with pytest.raises(KEKError, match=missing):
        load_kek(url, {})
    with pytest.raises(KEKError, match=missing):
        existing_kek(url, {})  # the read-only commands refuse on the same terms
    assert not kek_file.exists()  # a new KEK could never open them


def _migrated(db: Path) -> None:
    engine = make_engine(f"sqlite:///{db}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _no_keys_table(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("CREATE TABLE other (x INTEGER)")


@pytest.mark.parametrize(
    "database",
    [
        pytest.param(None, id="no database yet"),
        pytest.param(lambda db: db.write_bytes(b"not a database at all"), id="not a database"),
        pytest.param(_no_keys_table, id="no signing_keys table"),
        pytest.param(_migrated, id="migrated, no keys"),
    ],
)
def test_a_development_database_without_wrapped_keys_gets_a_new_kek(
    tmp_path: Path, database: Callable[[Path], object] | None
) -> None:
    db = tmp_path / "sealring.db"
    if database is not None:
        database(db)
    ring = load_kek(f"sqlite:///{db}", {})
    assert ring.primary_id == KEKRing.from_file(tmp_path / "sealring.db.kek").primary_id


def test_the_development_kek_is_made_in_a_data_directory_that_does_not_exist_yet(
    tmp_path: Path,
) -> None:
    db = tmp_path / "a" / "b" / "sealring.db"
    load_kek(f"sqlite:///{db}", {})
    assert _mode(db.with_name("sealring.db.kek")) == 0o600


def test_a_development_kek_another_process_linked_first_is_kept(tmp_path: Path) -> None:
    # Two processes starting at once both find no file; the second one's link fails and it
    # reads the first one's KEK, without an error and without leaving its temporary file.
    from sealring.keys.kek import _create_dev_kek

    kek_file = tmp_path / "sealring.db.kek"
    _create_dev_kek(kek_file)
    first = kek_file.read_text()
    _create_dev_kek(kek_file)
    assert kek_file.read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sealring.db.kek"]


def test_the_development_kek_warning_names_the_file_and_the_production_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'sealring.db'}"
    with caplog.at_level(logging.WARNING, logger="sealring.keys"):
        load_kek(url, {})
    [record] = [r for r in caplog.records if r.name == "sealring.keys"]
    message = record.getMessage()
    assert str(tmp_path / "sealring.db.kek") in message
    assert "set SEALRING_KEK or SEALRING_KEK_FILE in production" in message
    assert "docs/keys.md" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sealring.keys"):
        load_kek(url, {DEV_KEK_WARNED_ENV: "1"})  # a worker of a server that has warned
    assert not [r for r in caplog.records if r.name == "sealring.keys"]


def test_read_only_commands_use_the_development_kek_a_start_made_and_never_make_one(
    tmp_path: Path,
) -> None:
    """`sealring keys list` and `export-public` check the stored keys with the KEK a start would
    use (existing_kek): the development file beside the database once it exists, and none (not
    a new file) before."""
    url = f"sqlite:///{tmp_path / 'sealring.db'}"
    kek_file = tmp_path / "sealring.db.kek"
    assert existing_kek(url, {}) is None
    assert not kek_file.exists()
    made = load_kek(url, {})
    found = existing_kek(url, {})
    assert found is not None
    assert found.ids == made.ids
    assert found.source == f"the development KEK file {kek_file}"
    kek_file.chmod(0o644)
    with pytest.raises(KEKError, match="chmod 600"):
        existing_kek(url, {})


def test_read_only_commands_prefer_a_configured_kek_to_the_development_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'sealring.db'}"
    load_kek(url, {})  # a development file exists as well
    value = KEKRing.generate_text()
    configured = existing_kek(url, {"SEALRING_KEK": value})
    assert configured is not None
    assert configured.source == "SEALRING_KEK"
    assert configured.ids == KEKRing.from_string(value).ids
    monkeypatch.delenv("SEALRING_KEK_FILE", raising=False)
    monkeypatch.setenv("SEALRING_KEK", value)
    from_process = existing_kek(url)  # no mapping given: the process environment
    assert from_process is not None
    assert from_process.source == "SEALRING_KEK"
    monkeypatch.delenv("SEALRING_KEK")
    # A server database with no KEK configured: nothing to check the keys with, no error.
    assert existing_kek("postgresql+psycopg://h/db", {}) is None


def test_a_kek_file_refusal_names_the_file_and_the_setting_only_when_one_named_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'sealring.db'}"
    kek_file = tmp_path / "sealring.db.kek"
    load_kek(url, {})
    kek_file.chmod(0o640)
    with pytest.raises(KEKError, match=rf"^KEK file {re.escape(str(kek_file))} must be owned"):
        load_kek(url, {})
    env = {"SEALRING_KEK_FILE": str(kek_file)}
    with pytest.raises(
        KEKError, match=rf"^KEK file {re.escape(str(kek_file))} \(SEALRING_KEK_FILE\) must be"
    ):
        load_kek("postgresql+psycopg://h/db", env)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("missing.kek", "No such file or directory"), ("file/kek", "Not a directory")],
)
def test_a_kek_file_that_cannot_be_read_is_refused_with_the_systems_reason(
    tmp_path: Path, name: str, reason: str
) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    path = tmp_path / name
    env = {"SEALRING_KEK_FILE": str(path)}
    expected = rf"cannot read KEK file {re.escape(str(path))} \(SEALRING_KEK_FILE\): {reason}$"
    with pytest.raises(KEKError, match=expected):
        load_kek("postgresql+psycopg://h/db", env)
