"""``sealring serve``: the authorization server (docs/server.md).

With no options: issuer ``http://127.0.0.1:8000``, SQLite file ``./sealring.db``, the development
KEK file beside it (the keys layer warns on every start) and signing keys created on first start.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from sealring.cli._common import Command, describe_database_error, ensure_port_free, fail
from sealring.errors import SealringError
from sealring.keys.config import DEFAULT_DATABASE_URL
from sealring.keys.kek import DEV_KEK_WARNED_ENV

__all__ = ["register", "serve"]


def _fail(message: str, code: int = 2) -> NoReturn:
    fail("serve", message, code)


def serve(
    issuer: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Public issuer URL (default http://HOST:PORT)."),
    ] = None,
    host: Annotated[
        str | None, typer.Option(metavar="HOST", help="Address to bind (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Port to bind (default 8000).")
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help=f"SQLAlchemy database URL (default {DEFAULT_DATABASE_URL})."
        ),
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            metavar="N|auto",
            help="Worker processes (default 1); auto: one per CPU core this process may use.",
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option(metavar="FILE", help="TOML settings file.")] = None,
    http_server: Annotated[
        str | None,
        typer.Option(
            "--http-server",
            metavar="NAME",
            help="auto (default: uvicorn), uvicorn, or granian (pip install 'sealring[granian]').",
        ),
    ] = None,
) -> None:
    """Run the authorization server."""
    from sealring.server.logging import configure_logging
    from sealring.server.settings import RESOLVED_ENV, Settings

    options: dict[str, object | None] = {
        "issuer": issuer,
        "host": host,
        "port": port,
        "database_url": database,
        "workers": workers,
        "http_server": http_server,
    }
    try:
        settings = Settings.load(options, config_file=config)
    except SealringError as exc:
        _fail(exc.message)
    if settings.resolved_http_server == "granian" and importlib.util.find_spec("granian") is None:
        _fail(
            "granian is not installed: pip install 'sealring[granian]', or use --http-server uvicorn"
        )
    ensure_port_free("serve", settings.host, settings.port)
    configure_logging(settings.log_level)
    try:
        _preflight(settings)
    except SealringError as exc:
        _fail(exc.message)
    except Exception as exc:  # database unreachable and the like: one line, no traceback
        _fail(f"cannot start: {describe_database_error(exc)} (check --database)")
    typer.echo(f"Sealring authorization server, issuer {settings.issuer}")
    typer.echo(f"  token endpoint {settings.token_endpoint}, JWKS {settings.jwks_uri}")
    typer.echo(f"  {settings.workers} worker(s) on {settings.resolved_http_server}")
    sys.stdout.flush()
    os.environ[RESOLVED_ENV] = settings.to_json()
    # The start-up check above has shown the development-KEK warning; the workers need not.
    os.environ[DEV_KEK_WARNED_ENV] = "1"
    if settings.resolved_http_server == "granian":
        from granian.constants import Interfaces
        from granian.server import Server

        Server(
            "sealring.server.app:app_from_env",
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            workers=settings.workers,
            factory=True,
            log_access=False,
        ).serve()
        return
    import uvicorn

    try:
        uvicorn.run(
            "sealring.server.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=False,
            log_config=None,
            lifespan="on",
            server_header=False,
        )
    except SystemExit as exc:
        # uvicorn exits 3 when it could not start (the port taken since the check above, say);
        # its log line says why. The CLI's contract is exit 2 for what the user can correct.
        if exc.code == _UVICORN_STARTUP_FAILURE:
            _fail(f"could not start on {settings.host} port {settings.port} (see the log above)")
        raise


_UVICORN_STARTUP_FAILURE = 3


def _preflight(settings: object) -> None:
    """Migrate and create keys once, in the parent, before any worker starts (and fail early)."""
    from sealring.server.context import build_context
    from sealring.server.settings import Settings

    assert isinstance(settings, Settings)
    context, km = build_context(settings)
    km.close()
    context.engine.dispose()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.command("serve", cls=Command)(serve)
