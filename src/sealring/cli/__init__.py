"""The ``sealring`` command (its tree: :mod:`sealring.cli.commands`).

Exit codes: 0 success, 1 a verification or operation that failed on its merits, 2 a usage error
(bad arguments, unreadable file, invalid configuration, a port already in use).

Kept light: ``sealring --version`` answers before Typer and the command modules are imported
(issue 11: it returns in well under 0.3 s; the whole tree takes several times that to import).
``app`` is imported from :mod:`sealring.cli.commands` on first use.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    app: typer.Typer

__all__ = ["app", "main", "package_version"]


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sealring")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        # What the Typer tree's eager --version prints, without importing it.
        sys.stdout.write(f"sealring {package_version()}\n")
        return
    from sealring.cli.commands import app

    app(prog_name="sealring")


def __getattr__(name: str) -> Any:
    if name == "app":
        from sealring.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
