"""The authorization server: one module per endpoint (docs/server.md).

========================  ==============================================================
``token``                 ``POST /token``: client_credentials, RFC 9068 access tokens
``client_auth``           client authentication (RFC 6749 §2.3, RFC 7523 §2.2, OIDC §9)
``introspection``         ``POST /introspect`` (RFC 7662)
``revocation``            ``POST /revoke`` (RFC 7009)
``jwks``                  ``GET /jwks.json`` (RFC 7517 §5)
``discovery``             ``/.well-known/oauth-authorization-server`` (RFC 8414)
``operations``            ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``
``errors``                RFC 6749 §5.2 errors and their HTTP mapping
``clients``, ``models``   client registry, secrets, tables (migration ``0002_clients``)
``ratelimit``             per-client token bucket (memory or Redis)
``settings``, ``app``     checked settings; ``create_app(settings)``
========================  ==============================================================
"""
