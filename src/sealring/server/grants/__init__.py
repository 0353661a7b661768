"""The grant registry (RFC 6749 §4): ``grant_type`` -> :class:`Grant`.

The token endpoint authenticates the client and reads the form, then hands plain values to the
grant's handler, which returns an :class:`~sealring.server.tokens.access_token.IssuedToken` or
raises an :class:`~sealring.server.errors.OAuthError`.  A grant does no I/O of its own: what it
needs from storage the endpoint fetches first and passes in (node-oidc-provider's
``lib/actions/grants/``, authlib's ``register_grant``).  Discovery's ``grant_types_supported``
comes from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealring.server.grants import authorization_code, client_credentials, refresh_token
from sealring.server.grants.base import Grant, GrantRequest, UserGrantStore

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["GRANTS", "Grant", "GrantRequest", "UserGrantStore"]

GRANTS: Mapping[str, Grant] = {
    grant.grant_type: grant
    for grant in (authorization_code.GRANT, client_credentials.GRANT, refresh_token.GRANT)
}
