"""``sealring example-api``: the example resource server (docs/resource-server.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from sealring.cli._common import fail

__all__ = ["example_api", "register"]


def example_api(
    issuer: Annotated[str, typer.Option(help="The issuer whose access tokens are accepted.")],
    audience: Annotated[str, typer.Option(help="This API's identifier, required in 'aud'.")],
    jwks_uri: Annotated[
        str | None,
        typer.Option(help="The issuer's JWKS URI (default: discovered from the issuer)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8001,
) -> None:
    """Serve the example API: /api/hello, /api/items (items:read / items:write), /healthz."""
    import uvicorn

    from sealring.resource import AccessTokenVerifier
    from sealring.resource.example_api import create_app

    try:
        verifier = AccessTokenVerifier(issuer, audience=audience, jwks_uri=jwks_uri)
    except ValueError as exc:
        fail("example-api", str(exc))
    typer.echo(f"Sealring example API on http://{host}:{port}, trusting {issuer} for {audience}")
    try:
        uvicorn.run(
            create_app(verifier), host=host, port=port, access_log=False, server_header=False
        )
    finally:
        verifier.close()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.command("example-api")(example_api)
