"""``sealring serve``: the authorization server (docs/server.md).

With no options: issuer ``http://127.0.0.1:8000``, SQLite file ``./sealring.db``, the development
KEK file beside it (the keys layer warns on every start) and signing keys created on first start.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sealring.cli._common import (
    DATABASE_URL_HINT,
    Command,
    describe_database_error,
    ensure_port_free,
    fail,
)
from sealring.errors import SealringError
from sealring.keys.config import DEFAULT_DATABASE_URL
from sealring.keys.kek import DEV_KEK_WARNED_ENV

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from sealring.server.settings import Settings

__all__ = ["WorkerApp", "register", "serve"]


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
            metavar="URL",
            help=f"SQLAlchemy database URL (default {DEFAULT_DATABASE_URL}). {DATABASE_URL_HINT}",
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
    from sealring.server.settings import ENV_PREFIX, Settings

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
    worker = WorkerApp(settings, _handed_over(os.environ))
    # Workers start with this environment: none of Sealring's variables (the KEK, the HSM PIN,
    # a database URL with its password) reach them that way (issue 10).
    for name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
        del os.environ[name]
    if settings.resolved_http_server == "granian":
        import multiprocessing

        from granian.constants import Interfaces
        from granian.server import Server

        # A forked worker would show the parent's original environment in /proc; a spawned
        # one has the environment above and gets `worker` pickled through its start-up pipe.
        multiprocessing.set_start_method("spawn", force=True)
        Server(
            "sealring.cli.serve:WorkerApp",
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            workers=settings.workers,
            log_access=False,
        ).serve(target_loader=worker, wrap_loader=False)
        return
    _run_uvicorn(worker)


@dataclass(frozen=True)
class WorkerApp:
    """What `sealring serve` hands each worker process: the resolved settings and the key
    configuration, secrets included, as a factory of the application.

    Both HTTP servers start workers with ``multiprocessing``'s spawn method, which pickles this
    object through the pipe the child is started with: the secrets are in no worker's
    environment and on no command line (``/proc/PID/environ``, ``/proc/PID/cmdline``; issue 10),
    and a worker the server restarts gets them the same way.
    """

    settings: Settings
    environ: dict[str, str] = field(repr=False)

    def __call__(self) -> Starlette:
        from sealring.server.app import create_app
        from sealring.server.logging import configure_logging

        configure_logging(self.settings.log_level)
        return create_app(self.settings, environ=self.environ)


def _handed_over(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a worker's key configuration reads (KEK, HSM), and the note that the
    development-KEK warning has been shown once already (by the start-up check)."""
    from sealring.server.settings import ENV_PREFIX

    handed = {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
    handed[DEV_KEK_WARNED_ENV] = "1"
    return handed


def _run_uvicorn(worker: WorkerApp) -> None:
    """``uvicorn.run`` without its import-string rule: the application factory is ``worker``
    itself, which its supervisor pickles into each worker process."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from sealring.server.http.uvicorn_protocol import PrebuiltHttpToolsProtocol

    settings = worker.settings
    config = uvicorn.Config(
        worker,
        factory=True,
        # httptools (uvicorn[standard]), answering the JWKS and the metadata without ASGI.
        http=PrebuiltHttpToolsProtocol,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        log_config=None,
        lifespan="on",
        server_header=False,
    )
    server = uvicorn.Server(config)
    try:
        if settings.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
            return
        server.run()
    except KeyboardInterrupt:
        return
    except SystemExit as exc:
        # uvicorn exits 3 when it could not start (the port taken since the check above, say);
        # its log line says why. The CLI's contract is exit 2 for what the user can correct.
        if exc.code == _UVICORN_STARTUP_FAILURE:
            _fail(f"could not start on {settings.host} port {settings.port} (see the log above)")
        raise
    if not server.started:
        _fail(f"could not start on {settings.host} port {settings.port} (see the log above)")


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
