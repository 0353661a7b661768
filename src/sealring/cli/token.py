"""``sealring token``: get an access token with a client's credentials (RFC 6749 §4.4).

The client id and secret come from the environment (``CLIENT_ID``, ``CLIENT_SECRET``, which
``sealring clients create --format env`` prints for a shell's ``eval``) or from stdin, never from
an option: a secret on a command line is visible to every user of the machine in ``ps``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer

from sealring.cli._common import Command, fail
from sealring.urls import is_loopback_host

__all__ = ["register", "token"]

TIMEOUT = 10.0
DEFAULT_ISSUER = "http://127.0.0.1:8000"


def _fail(message: str, code: int = 2) -> NoReturn:
    fail("token", message, code)


def _check_issuer(issuer: str) -> str:
    """The secret is sent to this issuer: https, or plain http to a loopback host only."""
    parts = urlsplit(issuer)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return issuer.rstrip("/")
    if parts.scheme == "http" and is_loopback_host(host):
        return issuer.rstrip("/")
    _fail(f"--issuer {issuer!r} must be an https URL (plain http only on loopback)")


def _metadata_url(issuer: str) -> str:
    # RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path.
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return urlunsplit(
        (parts.scheme, parts.netloc, f"/.well-known/oauth-authorization-server{path}", "", "")
    )


def _credentials(client_id: str | None, secret_stdin: bool) -> tuple[str, str]:
    client_id = client_id or os.environ.get("CLIENT_ID")
    if not client_id:
        _fail("no client id: set CLIENT_ID (see sealring clients create --format env)")
    if secret_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = os.environ.get("CLIENT_SECRET", "")
    if not secret:
        where = "stdin was empty" if secret_stdin else "set CLIENT_SECRET or use --secret-stdin"
        _fail(f"no client secret: {where}")
    return client_id, secret


def token(
    issuer: Annotated[
        str,
        typer.Option(metavar="URL", envvar="SEALRING_ISSUER", help="The authorization server."),
    ] = DEFAULT_ISSUER,
    scope: Annotated[
        str | None, typer.Option(metavar="SCOPES", help='Scopes to ask for, e.g. "items:read".')
    ] = None,
    resource: Annotated[
        str | None,
        typer.Option(
            metavar="AUD",
            help="The API the token is for (RFC 8707; default: the client's first audience).",
        ),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(metavar="ID", help="The client id (default: $CLIENT_ID).")
    ] = None,
    secret_stdin: Annotated[
        bool,
        typer.Option("--secret-stdin", help="Read the client secret from stdin's first line."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole token response, not only the token.")
    ] = False,
) -> None:
    """Get an access token (client_credentials grant) and print it.

    The secret comes from $CLIENT_SECRET, or from stdin with --secret-stdin, never from an
    option. Exit status 1 when the server refuses (its OAuth error is printed).
    """
    import httpx

    base = _check_issuer(issuer)
    cid, secret = _credentials(client_id, secret_stdin)
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    if resource:
        form["resource"] = resource
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as http:
            meta = http.get(_metadata_url(base))
            if meta.status_code != 200:
                _fail(f"{base} has no authorization server metadata (HTTP {meta.status_code})")
            endpoint = _token_endpoint(meta, base)
            # RFC 6749 §2.3.1: id and secret are form-encoded before Basic's base64.
            response = http.post(endpoint, data=form, auth=httpx.BasicAuth(cid, secret))
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {base}: {type(exc).__name__}: {exc}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        _fail(f"the token endpoint answered HTTP {response.status_code} without a JSON object", 1)
    if response.status_code != 200 or "access_token" not in body:
        error = str(body.get("error", f"HTTP {response.status_code}"))
        detail = body.get("error_description")
        _fail(f"{error}: {detail}" if detail else error, 1)
    typer.echo(json.dumps(body) if as_json else str(body["access_token"]))


def _token_endpoint(meta: object, base: str) -> str:
    try:
        data = meta.json()  # type: ignore[attr-defined]
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("issuer") != base:
        _fail(f"the metadata at {_metadata_url(base)} is not {base}'s (RFC 8414 §3.3)")
    endpoint = data.get("token_endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", base)):
        _fail(f"the metadata of {base} has no usable token_endpoint")
    return endpoint


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.command("token", cls=Command)(token)
