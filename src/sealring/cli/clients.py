"""``sealring clients``: register and manage OAuth clients (docs/server.md, "Clients").

A client secret is printed once, at ``create`` or ``rotate-secret``; only its keyed hash is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sealring.cli._common import describe_database_error, fail
from sealring.errors import SealringError

if TYPE_CHECKING:
    from sealring.server.clients import SecretHasher
    from sealring.server.stores.clients import ClientRepository

__all__ = ["register"]

clients_app = typer.Typer(
    name="clients", help="Register and manage OAuth clients.", no_args_is_help=True
)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database", help="Database URL (default: SEALRING_DATABASE_URL or ./sealring.db)."
    ),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _fail(message: str, code: int = 2) -> NoReturn:
    fail("clients", message, code)


@contextmanager
def _repository(
    database: str | None, config: Path | None
) -> Iterator[tuple[ClientRepository, SecretHasher]]:
    from sealring.db import make_engine, upgrade
    from sealring.server.clients import SecretHasher
    from sealring.server.settings import Settings
    from sealring.server.stores.clients import ClientRepository
    from sealring.server.stores.server_secret import load_server_secret

    try:
        settings = Settings.load({"database_url": database}, config_file=config)
    except SealringError as exc:
        _fail(exc.message)
    engine = make_engine(settings.database_url, hide_parameters=True)
    try:
        try:
            upgrade(engine)
            secret = load_server_secret(engine, settings.server_secret)
        except SealringError as exc:
            _fail(exc.message)
        except Exception as exc:
            _fail(f"{describe_database_error(exc)} (check --database)")
        yield ClientRepository(engine), SecretHasher(secret)
    finally:
        engine.dispose()


def _check_jwks(text: str) -> None:
    from sealring.jose.errors import JoseError
    from sealring.jose.jwks import KeySet
    from sealring.server.clients import ClientMetadataError

    try:
        keys = KeySet.from_json(text)
    except JoseError as exc:
        raise ClientMetadataError(f"the JWK Set is refused: {exc.message}") from None
    if len(keys) == 0:
        raise ClientMetadataError("the JWK Set has no usable key")


@clients_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="A name for people.")],
    grant_types: Annotated[
        str | None,
        typer.Option("--grant-types", help="Comma-separated (default client_credentials)."),
    ] = None,
    scope: Annotated[
        str, typer.Option("--scope", help='Allowed scopes, e.g. "items:read items:write".')
    ] = "",
    audience: Annotated[
        list[str] | None,
        typer.Option("--audience", help="Allowed audience; the first is the default."),
    ] = None,
    redirect_uri: Annotated[
        list[str] | None, typer.Option("--redirect-uri", help="Redirect URI.")
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="A public client (no credentials).")
    ] = False,
    auth_method: Annotated[
        str | None,
        typer.Option(
            "--auth-method",
            help="client_secret_basic (default), client_secret_post, private_key_jwt or none.",
        ),
    ] = None,
    jwks_uri: Annotated[
        str | None, typer.Option("--jwks-uri", help="URL of the client's JWK Set.")
    ] = None,
    jwks: Annotated[
        Path | None, typer.Option("--jwks", help="File with the client's public JWK Set.")
    ] = None,
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a client; prints its id and, once, its secret."""
    from sealring.server.clients import SECRET_METHODS, ClientMetadataError, new_client, new_secret

    jwks_text = None
    if jwks is not None:
        try:
            jwks_text = jwks.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read {jwks}: {type(exc).__name__}")
    grants = grant_types.split(",") if grant_types is not None else None
    try:
        client = new_client(
            name=name,
            grant_types=grants,
            scope=scope,
            audiences=audience or (),
            redirect_uris=redirect_uri or (),
            public=public,
            auth_method=auth_method,
            jwks=jwks_text,
            jwks_uri=jwks_uri,
            check_jwks=_check_jwks,
        )
    except ClientMetadataError as exc:
        _fail(exc.message)
    with _repository(database, config) as (repo, hasher):
        secret = new_secret() if client.auth_method in SECRET_METHODS else None
        repo.add(client, hasher.hash(secret) if secret else None)
    if as_json:
        typer.echo(json.dumps({"client_id": client.client_id, "client_secret": secret}))
        return
    typer.echo(f"client_id:     {client.client_id}")
    if secret:
        typer.echo(f"client_secret: {secret}")
        typer.echo("The secret is shown only now: store it safely.", err=True)


@clients_app.command("list")
def list_clients(
    database: DatabaseOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False
) -> None:
    """List registered clients (never their secrets)."""
    with _repository(database, config) as (repo, _):
        clients = repo.list()
    if as_json:
        typer.echo(json.dumps([c.describe() for c in clients], indent=2))
        return
    if not clients:
        typer.echo("no clients")
        return
    typer.echo(f"{'CLIENT ID':24} {'AUTH METHOD':20} {'SCOPE':30} NAME")
    for c in clients:
        typer.echo(f"{c.client_id:24} {c.auth_method:20} {' '.join(c.scopes)[:30]:30} {c.name}")


@clients_app.command("show")
def show(
    client_id: Annotated[str, typer.Argument(help="The client id.")],
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show one client's registration (JSON, never the secret)."""
    with _repository(database, config) as (repo, _):
        client = repo.get(client_id)
    if client is None:
        _fail(f"no client {client_id!r}")
    typer.echo(json.dumps(client.describe(), indent=2))


@clients_app.command("delete")
def delete(
    client_id: Annotated[str, typer.Argument(help="The client id.")],
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Delete a client (running servers stop accepting it within the client cache time)."""
    with _repository(database, config) as (repo, _):
        deleted = repo.delete(client_id)
    if not deleted:
        _fail(f"no client {client_id!r}")
    typer.echo(f"deleted {client_id}")


@clients_app.command("rotate-secret")
def rotate_secret(
    client_id: Annotated[str, typer.Argument(help="The client id.")],
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a client's secret; prints the new one once.  The old one stops working."""
    from sealring.server.clients import SECRET_METHODS, new_secret

    with _repository(database, config) as (repo, hasher):
        client = repo.get(client_id)
        if client is None:
            _fail(f"no client {client_id!r}")
        if client.auth_method not in SECRET_METHODS:
            _fail(f"client {client_id!r} uses {client.auth_method}, which has no secret")
        secret = new_secret()
        repo.set_secret_hash(client_id, hasher.hash(secret))
    if as_json:
        typer.echo(json.dumps({"client_id": client_id, "client_secret": secret}))
    else:
        typer.echo(f"client_secret: {secret}")
        typer.echo("The secret is shown only now: store it safely.", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.add_typer(clients_app, name="clients")
