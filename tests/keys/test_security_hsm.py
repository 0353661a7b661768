"""Issue 10, item 2: installations sharing one PKCS#11 token never destroy each other's keys.

Every object's label carries the installation id of the database that made it; writes destroy
only objects their own rows record as removed or revoked; orphans go through ``keys gc-hsm``
(a dry run unless ``--delete``); commands that read never write to the database or the token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, select, text
from typer.testing import CliRunner

from sealring.cli import app
from sealring.db import make_engine
from sealring.jose.jwks import KeySet
from sealring.jose.jws import sign_compact, verify_compact
from sealring.keys import HSMConfig, KeyManager, RotationPolicy
from sealring.keys.hsm import HSM
from sealring.keys.models import InstallationRow
from tests.helpers.clock import FakeClock
from tests.helpers.keys import POLICY

pytestmark = pytest.mark.hsm

runner = CliRunner()


def _hsm_env(config: HSMConfig, url: str) -> dict[str, str]:
    return {
        "SEALRING_DATABASE_URL": url,
        "SEALRING_HSM_MODULE": config.module,
        "SEALRING_HSM_TOKEN": config.token_label,
        "SEALRING_HSM_PIN": config.pin,
        "SEALRING_HSM_LABEL_PREFIX": config.label_prefix,
    }


def _keys(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["keys", *args], env=env)
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def _signs(manager: KeyManager) -> None:
    """The manager's active key still signs on the token, and its JWKS verifies it."""
    manager.refresh()
    token = sign_compact(b"still here", manager.signer("ES256"))
    assert verify_compact(token, KeySet.from_json(manager.jwks().body)).payload == b"still here"


def _installation(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(InstallationRow.installation_id)).scalar_one())


def test_two_installations_on_one_token_keep_each_others_keys(
    database_url: str,
    tmp_path: Path,
    managers: Callable[..., KeyManager],
    hsm_config: HSMConfig,
    clock: FakeClock,
) -> None:
    """Same token, same label prefix, two databases: rotations, removals, revocations, starts
    and gc-hsm of one leave every object of the other in place."""
    a = managers(database_url, kek=None, hsm=hsm_config)
    a.ensure_ready()
    b_url = f"sqlite:///{tmp_path / 'b.db'}"
    b = managers(b_url, kek=None, hsm=hsm_config)
    b.ensure_ready()
    assert _installation(a.engine) != _installation(b.engine)
    inspector = HSM(hsm_config)
    try:
        b_objects = {
            ref: label
            for ref, label in inspector.objects().items()
            if _installation(b.engine) in label
        }
        assert len(b_objects) == 1
        # B's own orphan (a rotation B lost) is B's to collect, not A's.
        b_orphan, _ = inspector.generate("ES256", _installation(b.engine))
        # An object from before installation ids, that A's rows do not record.
        legacy, _ = inspector.generate("ES256", "x")
        legacy_label = inspector.label("x", legacy)
        # A rotates, retires, removes, revokes and starts again: every write path.
        clock.advance(POLICY.rotation_interval)
        a.run_due()
        clock.advance(POLICY.prepublication_time)
        a.run_due()
        clock.advance(POLICY.retention)
        a.run_due()
        a.revoke(a.signer("ES256").kid, "test")
        again = managers(database_url, kek=None, hsm=hsm_config)
        again.ensure_ready()
        cleanup = a.gc_hsm(delete=True)
        assert cleanup.orphans == []
        assert cleanup.others == 3  # B's key and orphan, the legacy object
        left = inspector.objects()
        for ref, label in b_objects.items():
            assert left[ref] == label
        assert b_orphan in left
        assert left[legacy] == legacy_label
        _signs(b)
        _signs(again)
        # And B collects its own orphan only.
        found = b.gc_hsm(delete=True)
        assert [o.ref for o in found.orphans] == [b_orphan]
        assert b_orphan not in inspector.objects()
        assert legacy in inspector.objects()
        _signs(again)
        _signs(b)
    finally:
        inspector.close()


def test_a_wrong_database_destroys_nothing(
    sqlite_url: str,
    tmp_path: Path,
    managers: Callable[..., KeyManager],
    hsm_config: HSMConfig,
) -> None:
    """The CLI pointed at another database (new, or another installation's) with production's
    token: every command runs, and production's objects are all still there."""
    production = managers(sqlite_url, kek=None, hsm=hsm_config)
    production.ensure_ready()
    inspector = HSM(hsm_config)
    try:
        before = inspector.objects()
        wrong = _hsm_env(hsm_config, f"sqlite:///{tmp_path / 'wrong.db'}")
        _keys(wrong, "list", code=2)  # reads only: no database is made
        assert not (tmp_path / "wrong.db").exists()
        _keys(wrong, "gc-hsm", "--delete", code=2)
        _keys(wrong, "init")
        _keys(wrong, "rotate", "--immediately")
        _keys(wrong, "gc-hsm", "--delete")
        kid = next(
            line.split()[0] for line in _keys(wrong, "list").splitlines() if "active" in line
        )
        _keys(wrong, "revoke", "--reason", "wrong database", "--", kid)
        after = inspector.objects()
        for ref, label in before.items():
            assert after.get(ref) == label
        _signs(production)
    finally:
        inspector.close()


def test_gc_hsm_lists_then_deletes_only_its_own_orphans(
    sqlite_url: str,
    tmp_path: Path,
    managers: Callable[..., KeyManager],
    hsm_config: HSMConfig,
) -> None:
    mine = managers(sqlite_url, kek=None, hsm=hsm_config)
    mine.ensure_ready()
    other = managers(f"sqlite:///{tmp_path / 'other.db'}", kek=None, hsm=hsm_config)
    other.ensure_ready()
    env = _hsm_env(hsm_config, sqlite_url)
    inspector = HSM(hsm_config)
    try:
        orphan, _ = inspector.generate("ES256", _installation(mine.engine))
        foreign, _ = inspector.generate("ES256", _installation(other.engine))
        before = inspector.objects()
        for args in ((), ("--dry-run",)):
            out = _keys(env, "gc-hsm", *args)
            assert f"installation {_installation(mine.engine)}: 1 orphaned token object(s)" in out
            assert orphan in out
            assert foreign not in out
            assert "2 object(s) with the label prefix belong to other installations" in out
            assert "dry run: nothing destroyed" in out
            assert inspector.objects() == before
        out = _keys(env, "gc-hsm", "--delete")
        assert orphan in out  # listed as it goes
        assert "destroyed 1 token object(s)" in out
        after = inspector.objects()
        assert orphan not in after
        assert set(before) - set(after) == {orphan}
        assert foreign in after
        out = _keys(env, "gc-hsm", "--yes", "--json")
        assert '"orphans": []' in out
        _signs(mine)
        _signs(other)
        no_hsm = {"SEALRING_DATABASE_URL": sqlite_url}
        assert "no HSM is configured" in _keys(no_hsm, "gc-hsm", code=2)
    finally:
        inspector.close()


def _dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to compare before and after."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(table.select())), key=repr)
            for name, table in meta.tables.items()
        }


def test_read_only_commands_write_nothing(
    database_url: str, managers: Callable[..., KeyManager], hsm_config: HSMConfig
) -> None:
    """`keys list`, `show`, `export-public` and the gc-hsm dry run change no row and no
    token object, even when a rotation is overdue (a command that ran the schedule would
    rotate, and one that migrated or collected orphans would write)."""
    weeks_ago = FakeClock(time.time() - 40 * 86400)
    policy = RotationPolicy(algorithms=("ES256", "RS256"))  # the CLI's default schedule
    production = managers(database_url, kek=None, hsm=hsm_config, policy=policy, clock=weeks_ago)
    production.ensure_ready()
    engine = make_engine(database_url)
    inspector = HSM(hsm_config)
    try:
        orphan, _ = inspector.generate("ES256", _installation(engine))
        with engine.begin() as conn:
            conn.execute(text("UPDATE signing_keys SET published_at = NULL"))
        rows, objects = _dump(engine), inspector.objects()
        assert orphan in objects
        env = _hsm_env(hsm_config, database_url)
        listed = _keys(env, "list")
        assert "active" in listed
        kid = next(line.split()[0] for line in listed.splitlines() if "active" in line)
        shown = _keys(env, "show", "--", kid)
        assert f"kid: {kid}" in shown
        assert "-> active" not in shown  # a table, not transitions
        assert "pending" in shown  # its audit trail: new -> pending -> active
        assert '"events"' in _keys(env, "show", "--json", "--", kid)
        assert "no key with kid nope" in _keys(env, "show", "nope", code=2)
        _keys(env, "list", "--json")
        assert '"keys"' in _keys(env, "export-public")
        assert orphan in _keys(env, "gc-hsm")
        assert _dump(engine) == rows
        assert inspector.objects() == objects
        _keys(env, "rotate")  # the same set-up does write when asked to: the check can fail
        assert _dump(engine) != rows
    finally:
        inspector.close()
        engine.dispose()
