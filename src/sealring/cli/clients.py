"""``sealring clients``: register and manage OAuth clients (docs/server.md, "Clients").

A client secret is printed once, at ``create`` or ``rotate-secret``; only its keyed hash is kept.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
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
    warn,
)
from sealring.errors import SealringError

if TYPE_CHECKING:
    from sealring.server.clients import Client, SecretHasher
    from sealring.server.settings import Settings
    from sealring.server.stores.clients import ClientRepository

__all__ = ["register"]

clients_app = typer.Typer(
    name="clients", help="Register and manage OAuth clients.", no_args_is_help=True
)

ClientIdArg = Annotated[str, typer.Argument(metavar="CLIENT_ID", help="The client id.")]


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    env = "env"


FormatOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        help="text (default), json, or env: 'export CLIENT_ID=...' lines for a shell's eval.",
    ),
]


def _fail(message: str, code: int = 2) -> NoReturn:
    fail("clients", message, code)


def _settings(database: str | None, config: Path | None) -> Settings:
    return load_settings("clients", database, config)


@contextmanager
def _repository(
    database: str | None, config: Path | None
) -> Iterator[tuple[ClientRepository, SecretHasher]]:
    from sealring.keys import load_key_config
    from sealring.server.clients import SecretHasher
    from sealring.server.stores.clients import ClientRepository
    from sealring.server.stores.server_secret import load_server_secret

    settings = _settings(database, config)
    with open_database("clients", settings.database_url, hide_parameters=True) as engine:
        try:
            kek = None
            if settings.server_secret is None:  # the stored one is sealed under the KEK
                kek, _ = load_key_config(settings.database_url)
            secret = load_server_secret(engine, settings.server_secret, kek=kek)
        except SealringError as exc:
            _fail(exc.message)
        except Exception as exc:
            _fail(f"{describe_database_error(exc)} (check --database)")
        yield ClientRepository(engine), SecretHasher(secret)


@contextmanager
def _reader(database: str | None, config: Path | None) -> Iterator[ClientRepository]:
    """The clients of an existing database, for commands that only read: no migration, no
    server secret or KEK made (issue 10)."""
    from sealring.server.stores.clients import ClientRepository

    settings = _settings(database, config)
    with open_database(
        "clients", settings.database_url, read_only=True, hide_parameters=True
    ) as engine:
        yield ClientRepository(engine)


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


NameOpt = Annotated[str | None, typer.Option("--name", metavar="NAME", help="A name for people.")]
GrantTypesOpt = Annotated[
    str | None,
    typer.Option(
        "--grant-types",
        metavar="LIST",
        help="Comma-separated: client_credentials, authorization_code, refresh_token"
        " (default client_credentials; authorization_code,refresh_token with --public).",
    ),
]
ScopeOpt = Annotated[
    str | None,
    typer.Option(
        "--scope", metavar="SCOPES", help='Allowed scopes, e.g. "items:read items:write".'
    ),
]
AudienceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--audience",
        metavar="AUD",
        help="Allowed audience (repeatable); the first is the default of the client's tokens.",
    ),
]
RedirectUriOpt = Annotated[
    list[str] | None,
    typer.Option("--redirect-uri", metavar="URI", help="Redirect URI (repeatable)."),
]
AuthMethodOpt = Annotated[
    str | None,
    typer.Option(
        "--auth-method",
        metavar="METHOD",
        help="client_secret_basic (default), client_secret_post, private_key_jwt or none.",
    ),
]
PostLogoutOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--post-logout-redirect-uri",
        metavar="URI",
        help="Where /logout may return the browser (repeatable; OpenID RP-Initiated Logout).",
    ),
]
SkipConsentOpt = Annotated[
    bool | None,
    typer.Option(
        "--skip-consent/--ask-consent",
        help="A first-party client: its users are not asked for consent.",
    ),
]
IdTokenAlgOpt = Annotated[
    str | None,
    typer.Option(
        "--id-token-alg",
        metavar="ALG",
        help="id_token_signed_response_alg: ES256 (default) or RS256.",
    ),
]
JwksUriOpt = Annotated[
    str | None, typer.Option("--jwks-uri", metavar="URL", help="URL of the client's JWK Set.")
]
JwksOpt = Annotated[
    Path | None,
    typer.Option("--jwks", metavar="FILE", help="File with the client's public JWK Set."),
]


def _read_jwks(jwks: Path | None) -> str | None:
    if jwks is None:
        return None
    try:
        return jwks.read_text()
    except OSError as exc:
        _fail(f"cannot read {jwks}: {exc.strerror or type(exc).__name__}")
    except UnicodeDecodeError:
        _fail(f"cannot read {jwks}: not UTF-8 text")


def _warn_if_no_audience(client: Client) -> None:
    # The token endpoint answers invalid_target to a client with no audience: say so now, not
    # at the first token request.
    if "client_credentials" in client.grant_types and not client.audiences:
        warn(
            "clients",
            f"client {client.client_id} has no --audience, so it cannot get an access token "
            f"until one is added: sealring clients update {client.client_id} --audience AUD",
        )


def _print_credentials(
    client_id: str, secret: str | None, output: OutputFormat, *, announce_id: bool = True
) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps({"client_id": client_id, "client_secret": secret}))
    elif output is OutputFormat.env:
        typer.echo(f"export CLIENT_ID={shlex.quote(client_id)}")
        if secret:
            typer.echo(f"export CLIENT_SECRET={shlex.quote(secret)}")
    else:
        if announce_id:
            typer.echo(f"client_id:     {client_id}")
        if secret:
            typer.echo(f"client_secret: {secret}")
    if secret:
        typer.echo("The secret is shown only now: store it safely.", err=True)


def _output(output: OutputFormat | None, as_json: bool) -> OutputFormat:
    if as_json and output not in (None, OutputFormat.json):
        _fail("give --json or --format, not both")
    return OutputFormat.json if as_json else output or OutputFormat.text


def _split_values(values: list[str] | None) -> tuple[str, ...] | None:
    """A repeated option as given; one empty value (``--audience ''``) clears the list."""
    if values is None:
        return None
    return tuple(v for v in values if v)


@clients_app.command("create", cls=Command)
def create(
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="A name for people.")],
    grant_types: GrantTypesOpt = None,
    scope: ScopeOpt = None,
    audience: AudienceOpt = None,
    redirect_uri: RedirectUriOpt = None,
    public: Annotated[
        bool, typer.Option("--public", help="A public client (no credentials).")
    ] = False,
    auth_method: AuthMethodOpt = None,
    jwks_uri: JwksUriOpt = None,
    jwks: JwksOpt = None,
    introspect: Annotated[
        bool,
        typer.Option(
            "--introspect",
            help="A resource server: may introspect any token issued for one of its audiences.",
        ),
    ] = False,
    post_logout_redirect_uri: PostLogoutOpt = None,
    skip_consent: SkipConsentOpt = None,
    id_token_alg: IdTokenAlgOpt = None,
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    output: FormatOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
) -> None:
    """Register a client; prints its id and, once, its secret."""
    from sealring.server.clients import SECRET_METHODS, ClientMetadataError, new_client, new_secret

    fmt = _output(output, as_json)
    jwks_text = _read_jwks(jwks)
    grants = grant_types.split(",") if grant_types is not None else None
    try:
        client = new_client(
            name=name,
            grant_types=grants,
            scope=scope or "",
            audiences=audience or (),
            redirect_uris=redirect_uri or (),
            public=public,
            auth_method=auth_method,
            jwks=jwks_text,
            jwks_uri=jwks_uri,
            check_jwks=_check_jwks,
            introspect=introspect,
            jwks_uri_networks=_settings(database, config).jwks_uri_allowed_networks,
            post_logout_redirect_uris=post_logout_redirect_uri or (),
            skip_consent=bool(skip_consent),
            id_token_alg=id_token_alg or "ES256",
        )
    except ClientMetadataError as exc:
        _fail(exc.message)
    with _repository(database, config) as (repo, hasher):
        secret = new_secret() if client.auth_method in SECRET_METHODS else None
        repo.add(client, hasher.hash(secret) if secret else None)
    _print_credentials(client.client_id, secret, fmt)
    _warn_if_no_audience(client)


@clients_app.command("update", cls=Command)
def update(
    client_id: ClientIdArg,
    name: NameOpt = None,
    grant_types: GrantTypesOpt = None,
    scope: ScopeOpt = None,
    audience: AudienceOpt = None,
    redirect_uri: RedirectUriOpt = None,
    auth_method: AuthMethodOpt = None,
    jwks_uri: JwksUriOpt = None,
    jwks: JwksOpt = None,
    post_logout_redirect_uri: PostLogoutOpt = None,
    skip_consent: SkipConsentOpt = None,
    id_token_alg: IdTokenAlgOpt = None,
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    output: FormatOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
) -> None:
    """Change a client's registration; fields not given are kept.

    A repeated option (--audience, --redirect-uri, --post-logout-redirect-uri) replaces the
    whole list; an empty value (--audience '') clears it. Moving to a secret-based auth method prints a new secret, once; moving away from one
    deletes the secret. Running servers see the change within the client cache time.
    """
    from sealring.server.clients import SECRET_METHODS, ClientMetadataError, new_client, new_secret

    fmt = _output(output, as_json)
    jwks_text = _read_jwks(jwks)
    with _repository(database, config) as (repo, hasher):
        old = repo.get(client_id)
        if old is None:
            _fail(f"no client {client_id!r}")
        method = auth_method
        if method is None:
            given_keys = jwks_text is not None or jwks_uri is not None
            method = "private_key_jwt" if given_keys else old.auth_method
        keys_text, keys_uri = old.jwks, old.jwks_uri
        if jwks_text is not None or jwks_uri is not None:
            keys_text, keys_uri = jwks_text, jwks_uri
        elif method != "private_key_jwt":
            keys_text = keys_uri = None  # the old public keys go with the old method
        grants: list[str] | tuple[str, ...] | None = (
            grant_types.split(",") if grant_types is not None else old.grant_types
        )
        if grant_types is None and (method == "none") != old.public:
            grants = None  # public <-> confidential: that kind's default grant types
        audiences = _split_values(audience)
        redirect_uris = _split_values(redirect_uri)
        logout_uris = _split_values(post_logout_redirect_uri)
        try:
            checked = new_client(
                name=old.name if name is None else name,
                grant_types=grants,
                scope=" ".join(old.scopes) if scope is None else scope,
                audiences=old.audiences if audiences is None else audiences,
                redirect_uris=old.redirect_uris if redirect_uris is None else redirect_uris,
                public=method == "none",
                auth_method=method,
                jwks=keys_text,
                jwks_uri=keys_uri,
                check_jwks=_check_jwks if jwks_text is not None else None,
                introspect=old.introspect and method != "none",
                jwks_uri_networks=_settings(database, config).jwks_uri_allowed_networks,
                post_logout_redirect_uris=(
                    old.post_logout_redirect_uris if logout_uris is None else logout_uris
                ),
                skip_consent=old.skip_consent if skip_consent is None else skip_consent,
                id_token_alg=old.id_token_alg if id_token_alg is None else id_token_alg,
            )
        except ClientMetadataError as exc:
            _fail(exc.message)
        secret = None
        secret_hash = old.secret_hash
        if checked.auth_method not in SECRET_METHODS:
            secret_hash = None
        elif old.auth_method not in SECRET_METHODS:
            secret = new_secret()
            secret_hash = hasher.hash(secret)
        client = dataclasses.replace(
            checked, client_id=old.client_id, created_at=old.created_at, secret_hash=secret_hash
        )
        if not repo.update(client):
            _fail(f"no client {client_id!r}")  # deleted while we were looking at it
    if fmt is OutputFormat.json:
        typer.echo(json.dumps({**client.describe(), "client_secret": secret}, indent=2))
    else:
        typer.echo(f"updated {client_id}")
        if secret:
            _print_credentials(client_id, secret, fmt, announce_id=False)
    _warn_if_no_audience(client)


@clients_app.command("list", cls=Command)
def list_clients(
    database: DatabaseOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False
) -> None:
    """List registered clients (never their secrets)."""
    with _reader(database, config) as repo:
        clients = repo.list()
    if as_json:
        typer.echo(json.dumps([c.describe() for c in clients], indent=2))
        return
    if not clients:
        typer.echo("no clients", err=True)
        return
    print_table(
        ("client id", "name", "auth method", "scope", "audiences"),
        [
            (c.client_id, c.name, c.auth_method, " ".join(c.scopes), " ".join(c.audiences))
            for c in clients
        ],
        no_wrap=("client id", "auth method"),
    )


@clients_app.command("show", cls=Command)
def show(
    client_id: ClientIdArg,
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show one client's registration (JSON, never the secret)."""
    with _reader(database, config) as repo:
        client = repo.get(client_id)
    if client is None:
        _fail(f"no client {client_id!r}")
    typer.echo(json.dumps(client.describe(), indent=2))


@clients_app.command("delete", cls=Command)
def delete(
    client_id: ClientIdArg,
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Delete a client (running servers stop accepting it within the client cache time)."""
    with _repository(database, config) as (repo, _):
        deleted = repo.delete(client_id)
    if not deleted:
        _fail(f"no client {client_id!r}")
    typer.echo(f"deleted {client_id}")


@clients_app.command("rotate-secret", cls=Command)
def rotate_secret(
    client_id: ClientIdArg,
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    output: FormatOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
) -> None:
    """Replace a client's secret; prints the new one once.  The old one stops working."""
    from sealring.server.clients import SECRET_METHODS, new_secret

    fmt = _output(output, as_json)
    with _repository(database, config) as (repo, hasher):
        client = repo.get(client_id)
        if client is None:
            _fail(f"no client {client_id!r}")
        if client.auth_method not in SECRET_METHODS:
            _fail(f"client {client_id!r} uses {client.auth_method}, which has no secret")
        secret = new_secret()
        repo.set_secret_hash(client_id, hasher.hash(secret))
    _print_credentials(client_id, secret, fmt, announce_id=fmt is not OutputFormat.text)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.add_typer(clients_app, name="clients")
