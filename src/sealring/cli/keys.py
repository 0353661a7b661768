"""``sealring keys``: list, rotate, revoke, rewrap and export the signing keys.

Every command runs the schedule first (a rotation that is due happens here too), and none ever
prints private material: the key manager hands out public JWKs and signers only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sealring.cli._common import (
    Command,
    ConfigOpt,
    DatabaseOpt,
    JsonOpt,
    describe_database_error,
    fail,
    load_settings,
    open_database,
    print_table,
)
from sealring.errors import SealringError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from sealring.keys import JWKSDocument, KeyInfo, KeyManager
    from sealring.keys.schedule import Transition
    from sealring.server.settings import Settings

__all__ = ["register"]

keys_app = typer.Typer(
    name="keys",
    help="Signing keys: lifecycle, rotation, revocation, KEK rewrap, public JWKS.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.add_typer(keys_app, name="keys")


def _fail(message: str, code: int) -> NoReturn:
    fail("keys", message, code)


@contextmanager
def _exits() -> Iterator[None]:
    """Usage and configuration problems (SealringError.usage) and an unusable database exit 2;
    the rest exits 1; each with its one line."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SealringError as exc:
        _fail(exc.message, 2 if exc.usage else 1)
    except SQLAlchemyError as exc:
        _fail(f"{describe_database_error(exc)} (check --database)", 2)


@contextmanager
def _manager(database: str | None, config: Path | None) -> Iterator[KeyManager]:
    """The key manager under the server's own settings, so both apply one rotation policy."""
    from sealring.db import make_engine, upgrade
    from sealring.keys import KeyManager, load_key_config

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    engine = None
    manager = None
    try:
        with _exits():
            settings = load_settings("keys", database, config)
            url = settings.database_url
            engine = make_engine(url)
            upgrade(engine)
            kek, hsm = load_key_config(url)
            manager = KeyManager(engine, kek=kek, policy=settings.rotation_policy(), hsm=hsm)
            manager.ensure_ready()
            yield manager
    finally:
        if manager is not None:
            manager.close()
        if engine is not None:
            engine.dispose()


@contextmanager
def _reader(database: str | None, config: Path | None) -> Iterator[tuple[Engine, Settings]]:
    """An engine on an existing database at the current schema, for commands that only read:
    nothing is migrated, created or scheduled (issue 10)."""
    settings = load_settings("keys", database, config)
    with open_database("keys", settings.database_url, read_only=True) as engine, _exits():
        yield engine, settings


def _stored(
    database: str | None, config: Path | None, events_of: str | None = None
) -> tuple[list[KeyInfo], JWKSDocument, list[Transition]]:
    """The stored keys, their JWK Set and (for ``events_of``) a key's audit trail, read only; a
    configured KEK is checked against them (a wrong one exits 2, as a start would), the
    development KEK file is never created."""
    from sealring.keys.kek import existing_kek
    from sealring.keys.manager import key_events, stored_keys

    with _reader(database, config) as (engine, settings), _exits():
        kek = existing_kek(settings.database_url)
        infos, jwks = stored_keys(engine, settings.rotation_policy(), kek=kek)
        events = key_events(engine, events_of) if events_of is not None else []
        return infos, jwks, events


def _when(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command("list", cls=Command)
def list_keys(
    database: DatabaseOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False
) -> None:
    """List every key: kid, algorithm, state and its lifecycle times (UTC). Reads only."""
    infos, _, _ = _stored(database, config)
    if as_json:
        typer.echo(json.dumps([info.to_dict() for info in infos], indent=2))
        return
    print_table(
        ("kid", "alg", "state", "created", "activates", "retires", "removed"),
        [
            (
                info.kid,
                info.alg,
                info.state + (f" ({info.revoke_reason})" if info.revoke_reason else ""),
                _when(info.created_at),
                _when(info.activated_at or info.activates_at),
                _when(info.retired_at or info.retires_at),
                _when(info.removed_at or info.revoked_at or info.removes_at),
            )
            for info in infos
        ],
        no_wrap=("kid", "alg"),
    )


def _print_transitions(transitions: list[Transition], as_json: bool) -> None:
    if as_json:
        rows = [
            {"kid": t.kid, "alg": t.alg, "from": t.from_state, "to": t.to_state}
            for t in transitions
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for t in transitions:
        typer.echo(f"{t.kid} {t.alg}: {t.from_state or 'new'} -> {t.to_state}")


@keys_app.command("rotate", cls=Command)
def rotate(
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    alg: Annotated[
        str | None,
        typer.Option("--alg", metavar="ALG", help="Rotate only this algorithm's key."),
    ] = None,
    immediately: Annotated[
        bool,
        typer.Option(
            "--immediately", help="Sign with the new key at once, skipping pre-publication."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a rotation: a new key is published now and signs after pre-publication."""
    if immediately:
        typer.echo(
            "sealring keys: warning: --immediately skips pre-publication; resource servers "
            "with a cached JWKS may reject new tokens until they refetch it",
            err=True,
        )
    with _manager(database, config) as manager:
        transitions = manager.rotate(alg, immediate=immediately)
    _print_transitions(transitions, as_json)
    if not transitions:
        typer.echo("nothing to do: a rotation is already pending", err=True)


@keys_app.command("revoke", cls=Command)
def revoke(
    kid: Annotated[
        str | None,
        typer.Argument(
            metavar="KID", help="The key id to revoke (one starting with '-': use --kid or '--')."
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", metavar="TEXT", help="Why (kept in the audit trail)."),
    ] = None,
    kid_option: Annotated[
        str | None,
        typer.Option("--kid", metavar="KID", help="The key id, as an option.", show_default=False),
    ] = None,
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Emergency: unpublish a key at once and destroy its private part."""
    # A base64url kid may start with '-', which the parser would take for an option; --kid
    # (or '--' before the kid) is the unambiguous spelling.
    if (kid is None) == (kid_option is None):
        _fail("give the key id once: sealring keys revoke KID --reason TEXT (or --kid KID)", 2)
    if not reason or not reason.strip():
        _fail("--reason TEXT is required: say why the key is revoked", 2)
    with _manager(database, config) as manager:
        transitions = manager.revoke(kid or kid_option or "", reason)
    _print_transitions(transitions, as_json)


@keys_app.command("rewrap", cls=Command)
def rewrap(database: DatabaseOpt = None, config: ConfigOpt = None) -> None:
    """Re-encrypt every stored private key, and the server secret, under the first KEK."""
    from sealring.server.stores.server_secret import reseal_server_secret

    with _manager(database, config) as manager:
        count = manager.rewrap()
        assert manager.kek is not None  # rewrap() refuses to run without one
        try:
            resealed = reseal_server_secret(manager.engine, manager.kek)
        except SealringError as exc:
            _fail(exc.message, 2)
    typer.echo(f"rewrapped {count} key(s)")
    if resealed:
        typer.echo("sealed the server secret under the first KEK")


@keys_app.command("reset", cls=Command)
def reset(
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: every signing key is deleted.")
    ] = False,
) -> None:
    """Development only: delete every signing key of a SQLite database, for a lost KEK file.

    New keys are made at the next start (under the KEK file, created anew if it is missing).
    Tokens signed by the deleted keys stop verifying. Refused on PostgreSQL and with an HSM.
    """

    from sqlalchemy import delete, select, update
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from sealring.db import make_engine, sqlite_path, upgrade
    from sealring.keys.models import KeyEventRow, KeyGenerationRow, SigningKeyRow

    url = load_settings("keys", database, config).database_url
    if sqlite_path(url) is None:
        _fail("reset is for a development SQLite database only; this one is not", 2)
    if os.environ.get("SEALRING_HSM_MODULE"):
        _fail("reset does not delete keys held in an HSM; unset SEALRING_HSM_MODULE", 2)
    if not yes:
        _fail(
            "this deletes every signing key of the database, and tokens they signed stop "
            "verifying; add --yes to go ahead",
            2,
        )
    engine = make_engine(url)
    try:
        upgrade(engine)
        now = time.time()
        with Session(engine) as session, session.begin():
            rows = session.execute(
                select(SigningKeyRow.kid, SigningKeyRow.alg, SigningKeyRow.state)
            )
            deleted = list(rows)
            for kid, alg, state in deleted:
                session.add(
                    KeyEventRow(
                        kid=kid, alg=alg, from_state=state, to_state="removed", at=now,
                        actor="sealring keys reset", reason="development reset",
                    )
                )  # fmt: skip
            session.execute(delete(SigningKeyRow))
            # Bump the generation so running servers reload their keys.
            session.execute(
                update(KeyGenerationRow).values(generation=KeyGenerationRow.generation + 1)
            )
    except SQLAlchemyError as exc:
        _fail(f"{describe_database_error(exc)} (check --database)", 2)
    finally:
        engine.dispose()
    typer.echo(f"deleted {len(deleted)} signing key(s); new ones are made at the next start")


@keys_app.command("export-public", cls=Command)
def export_public(database: DatabaseOpt = None, config: ConfigOpt = None) -> None:
    """Print the published JWK Set (public keys only). Reads only."""
    _, jwks, _ = _stored(database, config)
    sys.stdout.write(json.dumps(json.loads(jwks.body), indent=2) + "\n")


@keys_app.command("show", cls=Command)
def show(
    kid: Annotated[
        str, typer.Argument(metavar="KID", help="The key id (one starting with '-': after '--').")
    ],
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One key's lifecycle times (UTC) and its audit trail. Reads only."""
    infos, _, events = _stored(database, config, events_of=kid)
    info = next((i for i in infos if i.kid == kid), None)
    if info is None:
        _fail(f"no key with kid {kid}", 2)
    if as_json:
        trail = [
            {"from": e.from_state, "to": e.to_state, "at": e.at, "reason": e.reason} for e in events
        ]
        typer.echo(json.dumps({**info.to_dict(), "events": trail}, indent=2))
        return
    for name, value in info.to_dict().items():
        if name.endswith("_at") and isinstance(value, float | int | None):
            shown = _when(value)
        else:
            shown = "-" if value is None else str(value)
        typer.echo(f"{name}: {shown}")
    print_table(
        ("at", "from", "to", "reason"),
        [(_when(e.at), e.from_state or "new", e.to_state, e.reason or "") for e in events],
    )


@keys_app.command("init", cls=Command)
def init(database: DatabaseOpt = None, config: ConfigOpt = None) -> None:
    """Migrate the database and make the first keys, as a server start does (idempotent)."""
    with _manager(database, config) as manager:
        infos = manager.list_keys()
    published = sum(1 for info in infos if info.state in ("pending", "active", "retired"))
    typer.echo(f"ready: {published} published signing key(s)")


@keys_app.command("gc-hsm", cls=Command)
def gc_hsm(
    delete: Annotated[
        bool,
        typer.Option("--delete/--dry-run", help="Destroy the objects listed, or only list them."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="The same as --delete.")] = False,
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List (and with --delete destroy) this installation's orphaned HSM key objects.

    An orphan is a token object labelled with this database's installation id that no published
    key owns: the new key of a rotation killed before its commit, or a removed key whose destroy
    never ran. Objects of other installations sharing the token are never touched.
    """
    from sealring.keys import HSMConfig, KeyManager
    from sealring.keys.kek import existing_kek

    with _reader(database, config) as (engine, settings), _exits():
        hsm = HSMConfig.from_env()
        if hsm is None:
            _fail("no HSM is configured (SEALRING_HSM_MODULE)", 2)
        manager = KeyManager(
            engine,
            kek=existing_kek(settings.database_url),
            policy=settings.rotation_policy(),
            hsm=hsm,
        )
        try:
            report = manager.gc_hsm(delete=delete or yes)
        finally:
            manager.close()
    if as_json:
        typer.echo(json.dumps({
            "installation": report.installation,
            "orphans": [dataclasses.asdict(item) for item in report.orphans],
            "others": report.others,
            "deleted": report.deleted,
        }, indent=2))  # fmt: skip
        return
    typer.echo(
        f"installation {report.installation}: {len(report.orphans)} orphaned token object(s)"
    )
    if report.orphans:
        print_table(
            ("id", "label", "key", "state"),
            [
                (item.ref, item.label, item.kid or "-", item.state or "no key row")
                for item in report.orphans
            ],
            no_wrap=("id", "label", "key"),
        )
    if report.others:
        typer.echo(
            f"{report.others} object(s) with the label prefix belong to other installations "
            "(or predate installation ids and no key here records them): never touched"
        )
    if report.deleted:
        typer.echo(f"destroyed {len(report.orphans)} token object(s)")
    elif report.orphans:
        typer.echo(
            "dry run: nothing destroyed; run `sealring keys gc-hsm --delete` to destroy them "
            "(a rotation running right now may show its new key here: check it has finished)"
        )
