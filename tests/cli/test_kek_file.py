"""Item 5 of issue 14: a lost or wrong development KEK file.

Never a new KEK while the database holds keys; one message naming the file and the way out;
exit status 2 from ``keys`` and ``serve`` alike; ``sealring keys reset`` as the recovery for a
development database.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sealring.cli import app
from sealring.keys import KEKRing
from tests.helpers.cli import SEALRING, clean_env, free_port

runner = CliRunner()


def _keys(db: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["keys", *args, "--database", f"sqlite:///{db}"],
        env={"SEALRING_KEK": None, "SEALRING_KEK_FILE": None, "SEALRING_HSM_MODULE": None},
    )  # fmt: skip
    return result.exit_code, result.output


def _same_message(serve_line: str, keys_line: str, folder: Path) -> bool:
    """``serve`` runs in the folder and names ./sealring.db; the keys tests give a full path."""
    return serve_line == keys_line.replace("sealring keys:", "sealring serve:").replace(
        f"{folder}/", ""
    )


def _serve(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEALRING, "serve", "--port", str(free_port())],
        cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def dev_db(tmp_path: Path) -> Path:
    db = tmp_path / "sealring.db"
    code, out = _keys(db, "init")
    assert code == 0, out
    assert (tmp_path / "sealring.db.kek").exists()
    return db


def test_a_missing_kek_file_is_never_replaced(dev_db: Path) -> None:
    kek_file = dev_db.with_name("sealring.db.kek")
    kek_file.unlink()
    expected = (
        f"sealring keys: the development KEK file {kek_file} is missing, but the database "
        f"{dev_db} holds signing keys encrypted under it: restore the file, or start the "
        "development database's keys over with `sealring keys reset --yes`"
    )
    for command in (["list"], ["rotate"], ["export-public"], ["init"]):
        code, out = _keys(dev_db, *command)
        assert code == 2, out
        assert out.strip().splitlines()[-1] == expected
        assert not kek_file.exists()
    served = _serve(dev_db.parent)
    assert served.returncode == 2
    assert _same_message(served.stderr.strip().splitlines()[-1], expected, dev_db.parent)
    assert "SEALRING_KEK" not in served.stderr  # a newcomer never set it: do not send them there
    assert not kek_file.exists()


def test_a_wrong_kek_file_names_the_file(dev_db: Path) -> None:
    kek_file = dev_db.with_name("sealring.db.kek")
    kek_file.write_text(KEKRing.generate_text() + "\n")
    code, out = _keys(dev_db, "list")
    assert code == 2
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"sealring keys: the development KEK file {kek_file} cannot decrypt")
    assert "sealring keys reset --yes" in last
    served = _serve(dev_db.parent)
    assert served.returncode == 2
    assert _same_message(served.stderr.strip().splitlines()[-1], last, dev_db.parent)


def test_keys_reset_recovers_a_development_database(dev_db: Path) -> None:
    kek_file = dev_db.with_name("sealring.db.kek")
    _, listed = _keys(dev_db, "list", "--json")
    old_kids = {k["kid"] for k in json.loads(listed[listed.index("[") :])}
    kek_file.unlink()
    code, out = _keys(dev_db, "reset")
    assert code == 2
    assert "add --yes" in out
    code, out = _keys(dev_db, "reset", "--yes")
    assert code == 0, out
    assert "deleted 2 signing key(s)" in out
    code, out = _keys(dev_db, "init")
    assert code == 0, out
    code, out = _keys(dev_db, "list", "--json")
    assert code == 0, out
    new_kids = {k["kid"] for k in json.loads(out[out.index("[") :])}
    assert len(new_kids) == 2
    assert not new_kids & old_kids
    assert kek_file.exists()


def test_keys_reset_refuses_a_database_that_is_not_sqlite(postgres_database: str) -> None:
    result = runner.invoke(app, ["keys", "reset", "--yes", "--database", postgres_database])
    assert result.exit_code == 2
    assert "development SQLite database only" in result.output


@pytest.mark.slow
def test_the_development_warning_is_shown_once_per_start(tmp_path: Path) -> None:
    """Item 9: the start-up check warns; its two workers, which load the KEK again, do not."""
    from tests.helpers.cli import stop, wait_until_ready

    port = free_port()
    proc = subprocess.Popen(
        [*SEALRING, "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", proc)
    finally:
        _, err = stop(proc)
    assert err.count("DEVELOPMENT SETUP") == 1, err
    assert "authorization server ready" in err  # a worker did load the keys
