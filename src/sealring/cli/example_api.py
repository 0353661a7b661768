"""``sealring example-api``: the example resource server (docs/resource-server.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from sealring.cli._common import Command, ensure_port_free, fail

__all__ = ["example_api", "register"]


def example_api(
    issuer: Annotated[
        str, typer.Option(metavar="URL", help="The issuer whose access tokens are accepted.")
    ],
    audience: Annotated[
        str, typer.Option(metavar="AUD", help="This API's identifier, required in 'aud'.")
    ],
    jwks_uri: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="The issuer's JWKS URI (default: discovered from the issuer)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to bind.")] = 8001,
) -> None:
    """Serve the example API: /api/hello, /api/items (items:read / items:write), /healthz."""
    import uvicorn

    from sealring.resource import AccessTokenVerifier
    from sealring.resource.example_api import create_app

    if not 1 <= port <= 65535:
        fail("example-api", f"--port must be from 1 to 65535, not {port}")
    try:
        verifier = AccessTokenVerifier(issuer, audience=audience, jwks_uri=jwks_uri)
    except ValueError as exc:
        fail("example-api", str(exc))
    try:
        ensure_port_free("example-api", host, port)
        typer.echo(
            f"Sealring example API on http://{host}:{port}, trusting {issuer} for {audience}"
        )
        uvicorn.run(
            create_app(verifier), host=host, port=port, access_log=False, server_header=False
        )
    except SystemExit as exc:
        if exc.code == 3:  # uvicorn could not start: the port was taken after the check
            fail("example-api", f"could not start on {host} port {port} (see the log above)")
        raise
    finally:
        verifier.close()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.command("example-api", cls=Command)(example_api)
