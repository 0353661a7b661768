"""One module per HTTP endpoint (node-oidc-provider's ``lib/actions/``).

:data:`HANDLERS` binds each route name of :data:`sealring.server.routes.ROUTES` to its handler;
only ``app.py`` imports this package (tests/server/test_layout.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping

from sealring.server.endpoints.discovery import discovery_endpoint
from sealring.server.endpoints.introspection import introspection_endpoint
from sealring.server.endpoints.jwks import jwks_endpoint
from sealring.server.endpoints.operations import (
    healthz,
    metrics_endpoint,
    openapi_endpoint,
    readyz,
)
from sealring.server.endpoints.revocation import revocation_endpoint
from sealring.server.endpoints.token import token_endpoint
from sealring.server.http.endpoint import Handler
from sealring.server.routes import DISCOVERY

__all__ = ["HANDLERS"]

HANDLERS: Mapping[str, Handler] = {
    "token": token_endpoint,
    "introspection": introspection_endpoint,
    "revocation": revocation_endpoint,
    "jwks": jwks_endpoint,
    "healthz": healthz,
    "readyz": readyz,
    "metrics": metrics_endpoint,
    "openapi": openapi_endpoint,
    DISCOVERY: discovery_endpoint,
}
