"""Issue 10: commands that only read (`clients list/show`, `users list/show`) write nothing:
no database file, no migration, no development KEK file, no server secret, no row changed."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, MetaData
from typer.testing import CliRunner

from sealring.cli import app
from sealring.db import make_engine
from sealring.keys import KEKRing

runner = CliRunner()
READERS = (["clients", "list"], ["clients", "show", "nobody"], ["users", "list"],
           ["users", "show", "nobody"])  # fmt: skip


def _dump(engine: Engine) -> dict[str, list[str]]:
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted(repr(tuple(row)) for row in conn.execute(table.select()))
            for name, table in meta.tables.items()
        }


def test_readers_refuse_a_database_that_does_not_exist(tmp_path: Path) -> None:
    db = tmp_path / "wrong.db"
    env = {"SEALRING_KEK": None, "SEALRING_KEK_FILE": None, "SEALRING_SERVER_SECRET": None}
    for command in READERS:
        result = runner.invoke(app, [*command, "--database", f"sqlite:///{db}"], env=env)
        assert result.exit_code == 2, (command, result.output)
        assert f"there is no database {db}" in result.output
    assert list(tmp_path.iterdir()) == []  # no database, no KEK file


def test_readers_write_nothing(database_url: str) -> None:
    env = {"SEALRING_DATABASE_URL": database_url, "SEALRING_KEK": KEKRing.generate_text()}
    for command in READERS:
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == 2, (command, result.output)  # nothing there yet, nothing made
        assert "no Sealring schema" in result.output or "there is no database" in result.output
    made = runner.invoke(app, ["clients", "create", "--name", "a", "--json"], env=env)
    assert made.exit_code == 0, made.output
    client_id = json.loads(made.stdout)["client_id"]
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:  # as if the server secret had never been made
            conn.exec_driver_sql("DELETE FROM oauth_server_secret")
        before = _dump(engine)
        for command in ([*READERS[0], "--json"], ["clients", "show", client_id], READERS[2]):
            result = runner.invoke(app, command, env=env)
            assert result.exit_code == 0, (command, result.output)
        assert _dump(engine) == before
        # A write command does write, so the comparison can fail.
        assert runner.invoke(app, ["clients", "create", "--name", "b"], env=env).exit_code == 0
        assert _dump(engine) != before
    finally:
        engine.dispose()
