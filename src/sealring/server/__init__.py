"""The authorization server (docs/server.md; the module map is in docs/architecture.md).

========================  ==============================================================
``app``                   ``create_app(settings)``: the Starlette application and its lifespan
``routes``                every path, once: Starlette routes, metadata URLs, metric labels
``context``               the services every endpoint shares, wired by ``build_context``
``settings``              checked settings from defaults, TOML, ``SEALRING_*`` and options
``errors``                OAuth errors (RFC 6749 §5.2) and their HTTP mapping
``clients``               the client value object, registration rules and secrets
``endpoints/``            one module per HTTP endpoint (token, introspection, revocation, ...)
``grants/``               the grant registry: ``client_credentials`` (RFC 6749 §4.4)
``protocol/``             RFC rules without I/O: client authentication, scope, resource
``tokens/``               RFC 9068 access tokens
``stores/``               the tables and one repository per table
``http/``                 forms, responses, the endpoint decorator, the request middleware
``ratelimit``             per-client token bucket (memory or Redis)
========================  ==============================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealring.server.settings import Settings, SettingsError

if TYPE_CHECKING:
    from sealring.server.app import create_app

__all__ = ["Settings", "SettingsError", "create_app"]


def __getattr__(name: str) -> object:
    # Imported on first use: the CLI reads Settings without loading Starlette and every endpoint.
    if name == "create_app":
        from sealring.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
