"""Development KEK and SQLite files are private to the service user (issue 10, item 3).

A local user who can write the data directory could plant a KEK beside the database and then
read the signing keys it wraps; a world-readable database shows every key and client record.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from sealring.cli import app
from sealring.db import make_engine
from sealring.keys.errors import KEKError
from sealring.keys.kek import KEKRing, existing_kek, load_kek


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
