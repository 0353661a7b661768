"""``sealring keys``: list, rotate, revoke, rewrap and export the signing keys.

Every command runs the schedule first (a rotation that is due happens here too), and none ever
prints private material: the key manager hands out public JWKs and signers only.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from sealring.cli._common import describe_database_error, fail
from sealring.errors import SealringError

if TYPE_CHECKING:
    from sealring.keys import KeyManager

__all__ = ["register"]

keys_app = typer.Typer(
    name="keys",
    help="Signing keys: lifecycle, rotation, revocation, KEK rewrap, public JWKS.",
    no_args_is_help=True,
)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="SQLAlchemy URL (default: $SEALRING_DATABASE_URL, else sqlite:///./sealring.db).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The server's TOML settings file (default: $SEALRING_CONFIG), for its key policy.",
        show_default=False,
    ),
]
# Usage and configuration problems exit 2; an operation that fails on its merits exits 1.
_USAGE_CODES = frozenset(
    {
        "keys_config",
        "kek_invalid",
        "database_config",
        "unknown_key",
        "invalid_transition",
        "invalid_settings",
    }
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.add_typer(keys_app, name="keys")


def _fail(message: str, code: int) -> NoReturn:
    fail("keys", message, code)


@contextmanager
def _manager(database: str | None, config: Path | None) -> Iterator[KeyManager]:
    """The key manager under the server's own settings, so both apply one rotation policy."""
    from sqlalchemy.exc import SQLAlchemyError

    from sealring.db import make_engine, upgrade
    from sealring.keys import KeyManager, load_key_config
    from sealring.server.settings import Settings

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    engine = None
    manager = None
    try:
        settings = Settings.load({"database_url": database}, config_file=config)
        url = settings.database_url
        engine = make_engine(url)
        upgrade(engine)
        kek, hsm = load_key_config(url)
        manager = KeyManager(engine, kek=kek, policy=settings.rotation_policy(), hsm=hsm)
        manager.ensure_ready()
        yield manager
    except SealringError as exc:
        _fail(exc.message, 2 if exc.code in _USAGE_CODES else 1)
    except SQLAlchemyError as exc:
        _fail(f"{describe_database_error(exc)} (check --database)", 2)
    finally:
        if manager is not None:
            manager.close()
        if engine is not None:
            engine.dispose()


def _when(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command("list")
def list_keys(
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every key: kid, algorithm, state and its lifecycle times."""
    with _manager(database, config) as manager:
        infos = manager.list_keys()
    if as_json:
        typer.echo(json.dumps([info.to_dict() for info in infos], indent=2))
        return
    table = Table(title="Signing keys")
    for column in ("kid", "alg", "state", "created", "activates", "retires", "removed"):
        table.add_column(column, no_wrap=column != "kid")
    for info in infos:
        table.add_row(
            info.kid,
            info.alg,
            info.state + (f" ({info.revoke_reason})" if info.revoke_reason else ""),
            _when(info.created_at),
            _when(info.activated_at or info.activates_at),
            _when(info.retired_at or info.retires_at),
            _when(info.removed_at or info.revoked_at or info.removes_at),
        )
    Console(width=160).print(table)


@keys_app.command("rotate")
def rotate(
    database: DatabaseOption = None,
    config: ConfigOption = None,
    alg: Annotated[
        str | None, typer.Option("--alg", help="Rotate only this algorithm's key.")
    ] = None,
    now: Annotated[
        bool,
        typer.Option("--now", help="Sign with the new key at once, skipping pre-publication."),
    ] = False,
) -> None:
    """Start a rotation: a new key is published now and signs after pre-publication."""
    if now:
        typer.echo(
            "warning: --now skips pre-publication; resource servers with a cached JWKS may "
            "reject new tokens until they refetch it",
            err=True,
        )
    with _manager(database, config) as manager:
        transitions = manager.rotate(alg, immediate=now)
    for t in transitions:
        typer.echo(f"{t.kid} {t.alg}: {t.from_state or 'new'} -> {t.to_state}")
    if not transitions:
        typer.echo("nothing to do: a rotation is already pending")


@keys_app.command("revoke")
def revoke(
    kid: Annotated[
        str | None,
        typer.Argument(help="The key id to revoke (one starting with '-': use --kid or '--')."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (kept in the audit trail).")
    ] = None,
    kid_option: Annotated[
        str | None, typer.Option("--kid", help="The key id, as an option.", show_default=False)
    ] = None,
    database: DatabaseOption = None,
    config: ConfigOption = None,
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
    for t in transitions:
        typer.echo(f"{t.kid} {t.alg}: {t.from_state or 'new'} -> {t.to_state}")


@keys_app.command("rewrap")
def rewrap(database: DatabaseOption = None, config: ConfigOption = None) -> None:
    """Re-encrypt every stored private key under the first configured KEK."""
    with _manager(database, config) as manager:
        count = manager.rewrap()
    typer.echo(f"rewrapped {count} key(s)")


@keys_app.command("export-public")
def export_public(database: DatabaseOption = None, config: ConfigOption = None) -> None:
    """Print the published JWK Set (public keys only)."""
    with _manager(database, config) as manager:
        body = manager.jwks().body
    sys.stdout.write(json.dumps(json.loads(body), indent=2) + "\n")
