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
    jwks_min_max_age: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS", help="Shortest time a fetched JWK Set is cached (default 30)."
        ),
    ] = None,
    jwks_max_max_age: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS", help="Longest time a fetched JWK Set is cached (default 86400)."
        ),
    ] = None,
    jwks_cooldown: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Least time between two fetches for an unknown kid or after a failure "
            "(default 30).",
        ),
    ] = None,
    jwks_stale_if_error: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="How long past its freshness a cached JWK Set still verifies known keys while "
            "it is refreshed in the background or the source fails (default 3600).",
        ),
    ] = None,
    jwks_timeout: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="Deadline of one JWK Set fetch (default 5)."),
    ] = None,
) -> None:
    """Serve the example API: /api/hello, /api/items (items:read / items:write), /healthz,
    /metrics."""
    import uvicorn

    from sealring.resource import AccessTokenVerifier, JWKSSettings
    from sealring.resource.example_api import create_app

    if not 1 <= port <= 65535:
        fail("example-api", f"--port must be from 1 to 65535, not {port}")
    defaults = JWKSSettings()
    low = defaults.min_max_age if jwks_min_max_age is None else jwks_min_max_age
    high = defaults.max_max_age if jwks_max_max_age is None else jwks_max_max_age
    try:
        jwks = JWKSSettings(
            min_max_age=low,
            max_max_age=high,
            # The freshness of a JWKS without Cache-Control stays within the bounds given.
            default_max_age=min(max(defaults.default_max_age, low), high),
            cooldown=defaults.cooldown if jwks_cooldown is None else jwks_cooldown,
            stale_if_error=defaults.stale_if_error
            if jwks_stale_if_error is None
            else jwks_stale_if_error,
            timeout=defaults.timeout if jwks_timeout is None else jwks_timeout,
        )
        verifier = AccessTokenVerifier(
            issuer, audience=audience, jwks_uri=jwks_uri, jwks_settings=jwks
        )
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
