"""One module per HTTP endpoint (node-oidc-provider's ``lib/actions/``).

:data:`HANDLERS` binds each route name of :data:`sealring.server.routes.ROUTES` to its handler;
only ``app.py`` imports this package (tests/server/test_layout.py checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealring.server import routes
from sealring.server.endpoints import (
    authorization,
    discovery,
    end_session,
    interaction,
    introspection,
    jwks,
    operations,
    revocation,
    token,
    userinfo,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sealring.server.http.endpoint import Handler

__all__ = ["HANDLERS"]

HANDLERS: Mapping[str, Handler] = {
    "authorization": authorization.authorization_endpoint,
    "interaction": interaction.interaction_endpoint,
    "interaction_resume": authorization.resume_endpoint,
    "end_session": end_session.end_session_endpoint,
    "userinfo": userinfo.userinfo_endpoint,
    "token": token.token_endpoint,
    "introspection": introspection.introspection_endpoint,
    "revocation": revocation.revocation_endpoint,
    "jwks": jwks.jwks_endpoint,
    "healthz": operations.healthz,
    "readyz": operations.readyz,
    "metrics": operations.metrics_endpoint,
    "openapi": operations.openapi_endpoint,
    routes.DISCOVERY: discovery.discovery_endpoint,
}
