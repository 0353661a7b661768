"""The OpenAPI 3.1 document of the server's endpoints, served at ``/openapi.json``.

Written by hand so that it says exactly what the endpoints do, errors included; schemathesis
checks the running server against it in CI (tests/server/test_schemathesis.py).
"""

from __future__ import annotations

from typing import Any, get_args

from sealring.server.errors import OAuthErrorName
from sealring.server.routes import OPENID_CONFIGURATION_PATH, ROUTES, WELL_KNOWN_PATH
from sealring.server.settings import Settings

__all__ = ["openapi_document"]

_FORM = "application/x-www-form-urlencoded"
# Every wire ``error`` an OAuthError class can carry; Starlette's 404/405 (http/middleware.py);
# and RFC 6750's invalid_token from /metrics without its bearer token.
_ERROR_CODES = list(
    dict.fromkeys([*get_args(OAuthErrorName), "method_not_allowed", "not_found", "invalid_token"])
)
_CLIENT_AUTH_PROPS: dict[str, Any] = {
    "client_id": {"type": "string"},
    "client_secret": {"type": "string"},
    "client_assertion_type": {"type": "string"},
    "client_assertion": {"type": "string"},
}


def _path(name: str) -> str:
    return next(route.path for route in ROUTES if route.name == name)


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        out["headers"] = headers
    return out


def _rate_limited() -> dict[str, Any]:
    return _error(
        "the caller address's (or, after authentication, the client's) rate limit is exhausted",
        {"Retry-After": {"schema": {"type": "string"}, "required": True}},
    )


def _oauth_errors() -> dict[str, Any]:
    errors = {
        "400": _error(
            "invalid_request (also for a body that is not a UTF-8 form), invalid_scope,"
            " invalid_target, ... (RFC 6749 §5.2)"
        ),
        "401": _error(
            "invalid_client",
            {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
        ),
        "413": _error("the request body is too large (invalid_request)"),
        "429": _rate_limited(),
        "503": _error("no signing key or rate limiter available (temporarily_unavailable)"),
    }
    return errors


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            _FORM: {
                "schema": {
                    "type": "object",
                    "properties": {**properties, **_CLIENT_AUTH_PROPS},
                    "required": required,
                }
            }
        },
    }


def _json_ok(description: str, ref: str) -> dict[str, Any]:
    return {
        "200": {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }
    }


def _answered_everywhere(paths: dict[str, Any]) -> dict[str, Any]:
    """Add the refusals any path can give before its endpoint runs: 405 and 431."""
    for operations in paths.values():
        for operation in operations.values():
            operation["responses"].setdefault(
                "405",
                _error(
                    "the path does not take this method (method_not_allowed)",
                    {"Allow": {"schema": {"type": "string"}, "required": True}},
                ),
            )
            operation["responses"].setdefault(
                "431", _error("the request headers exceed 16 KiB (invalid_request)")
            )
    return paths


def openapi_document(settings: Settings) -> dict[str, Any]:
    security: list[dict[str, list[str]]] = [{"clientBasic": []}, {}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sealring authorization server",
            "version": "1",
            "description": "OAuth 2.0 client_credentials with RFC 9068 JWT access tokens.",
        },
        "servers": [{"url": settings.issuer}],
        "paths": _answered_everywhere(
            {
                _path("token"): {
                    "post": {
                        "operationId": "token",
                        "summary": "Issue an access token (RFC 6749 §4.4, RFC 8707, RFC 9068)",
                        "security": security,
                        "requestBody": _form(
                            {
                                "grant_type": {"type": "string"},
                                "scope": {"type": "string"},
                                "resource": {"type": "string"},
                            },
                            ["grant_type"],
                        ),
                        "responses": {
                            **_json_ok("an access token (RFC 6749 §5.1)", "TokenResponse"),
                            **_oauth_errors(),
                        },
                    }
                },
                _path("introspection"): {
                    "post": {
                        "operationId": "introspect",
                        "summary": "Token introspection (RFC 7662)",
                        "security": security,
                        "requestBody": _form(
                            {"token": {"type": "string"}, "token_type_hint": {"type": "string"}},
                            ["token"],
                        ),
                        "responses": {
                            **_json_ok("the token's state", "IntrospectionResponse"),
                            **_oauth_errors(),
                        },
                    }
                },
                _path("revocation"): {
                    "post": {
                        "operationId": "revoke",
                        "summary": "Token revocation (RFC 7009)",
                        "security": security,
                        "requestBody": _form(
                            {"token": {"type": "string"}, "token_type_hint": {"type": "string"}},
                            ["token"],
                        ),
                        "responses": {
                            "200": {"description": "revoked, or nothing to revoke"},
                            **_oauth_errors(),
                        },
                    }
                },
                _path("jwks"): {
                    "get": {
                        "operationId": "jwks",
                        "summary": "The JWK Set of the signing keys (RFC 7517 §5)",
                        "parameters": [
                            {
                                "name": "If-None-Match",
                                "in": "header",
                                "required": False,
                                "schema": {"type": "string"},
                            }
                        ],
                        "responses": {
                            **_json_ok("the key set", "JWKS"),
                            "304": {"description": "not modified"},
                        },
                    }
                },
                WELL_KNOWN_PATH: {
                    "get": {
                        "operationId": "metadata",
                        "summary": "Authorization server metadata (RFC 8414)",
                        "responses": _json_ok("metadata", "Metadata"),
                    }
                },
                OPENID_CONFIGURATION_PATH: {
                    "get": {
                        "operationId": "openidConfiguration",
                        "summary": "The same metadata at the OpenID Connect discovery path",
                        "responses": _json_ok("metadata", "Metadata"),
                    }
                },
                _path("healthz"): {
                    "get": {
                        "operationId": "healthz",
                        "summary": "The process is up",
                        "responses": _json_ok("up", "Health"),
                    }
                },
                _path("readyz"): {
                    "get": {
                        "operationId": "readyz",
                        "summary": "The database is reachable and a signing key is active",
                        "responses": {
                            **_json_ok("ready", "Health"),
                            "429": _rate_limited(),
                            "503": {
                                "description": "not ready",
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/Health"}
                                    }
                                },
                            },
                        },
                    }
                },
                _path("metrics"): {
                    "get": {
                        "operationId": "metrics",
                        "summary": "Prometheus metrics of this process",
                        "responses": {
                            "200": {
                                "description": "metrics",
                                "content": {"text/plain": {"schema": {"type": "string"}}},
                            },
                            "401": _error(
                                "a metrics_token is set and the request does not bear it",
                                {"WWW-Authenticate": {"schema": {"type": "string"}}},
                            ),
                            "404": _error("no metrics_token is set: not served"),
                        },
                    }
                },
            }
        ),
        "components": {
            "securitySchemes": {"clientBasic": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string", "enum": _ERROR_CODES},
                        "error_description": {"type": "string"},
                    },
                },
                "TokenResponse": {
                    "type": "object",
                    "required": ["access_token", "token_type", "expires_in"],
                    "properties": {
                        "access_token": {"type": "string"},
                        "token_type": {"type": "string", "enum": ["Bearer"]},
                        "expires_in": {"type": "integer"},
                        "scope": {"type": "string"},
                    },
                },
                "IntrospectionResponse": {
                    "type": "object",
                    "required": ["active"],
                    "properties": {
                        "active": {"type": "boolean"},
                        "scope": {"type": "string"},
                        "client_id": {"type": "string"},
                        "sub": {"type": "string"},
                        "aud": {
                            "oneOf": [
                                {"type": "string"},
                                {"type": "array", "items": {"type": "string"}},
                            ]
                        },
                        "iss": {"type": "string"},
                        "exp": {"type": "integer"},
                        "iat": {"type": "integer"},
                        "jti": {"type": "string"},
                        "token_type": {"type": "string"},
                    },
                },
                "JWKS": {
                    "type": "object",
                    "required": ["keys"],
                    "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
                },
                "Metadata": {
                    "type": "object",
                    "required": [
                        "issuer",
                        "token_endpoint",
                        "jwks_uri",
                        "response_types_supported",
                    ],
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string"}, "reason": {"type": "string"}},
                },
            },
        },
    }
