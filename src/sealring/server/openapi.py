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


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _browser(operation: str, summary: str, parameters: list[str], *, post: bool) -> dict[str, Any]:
    """A page or redirect a browser follows: HTML, or 303 to the next step or the client."""
    responses = {
        "200": _html("a page (login, consent, sign-out, error)"),
        "303": {
            "description": "to the next page, or to the client's redirect URI",
            "headers": {"Location": {"schema": {"type": "string"}, "required": True}},
        },
        "400": _html("an error page: never redirected to an unchecked URI"),
        "403": _html("the page belongs to another browser"),
        "413": _error("the form exceeds max_body_size (invalid_request)"),
        "415": _error("the body is not a UTF-8 form (invalid_request)"),
    }
    query = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in parameters
    ]
    item: dict[str, Any] = {
        "get": {
            "operationId": operation,
            "summary": summary,
            "parameters": query,
            "responses": responses,
        }
    }
    if post:
        item["post"] = {
            "operationId": operation + "Post",
            "summary": summary + " (form)",
            "requestBody": _form({name: {"type": "string"} for name in parameters}, []),
            "responses": responses,
        }
    return item


def _bearer_error(description: str) -> dict[str, Any]:
    """RFC 6750 §3: the challenge in WWW-Authenticate; the body repeats it when there is one."""
    return {
        "description": description,
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "error_description": {"type": "string"},
                    },
                }
            }
        },
    }


_UID = {"name": "uid", "in": "path", "required": True, "schema": {"type": "string"}}
_AUTHORIZE = ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
              "code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint",
              "id_token_hint"]  # fmt: skip


def openapi_document(settings: Settings) -> dict[str, Any]:
    security: list[dict[str, list[str]]] = [{"clientBasic": []}, {}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sealring authorization server",
            "version": "1",
            "description": "OAuth 2.0 and OpenID Connect: client credentials and user login"
            " (authorization code with PKCE, refresh tokens), RFC 9068 JWT access tokens.",
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
                _path("authorization"): _browser(
                    "authorize",
                    "Authorization endpoint (RFC 6749 §4.1.1, RFC 7636, OIDC Core §3.1.2)",
                    _AUTHORIZE,
                    post=True,
                ),
                _path("interaction"): {
                    key: {**value, "parameters": [_UID]}
                    for key, value in _browser(
                        "interaction",
                        "The login or consent page of a sign-in in progress",
                        ["csrf_token", "username", "password", "decision"],
                        post=True,
                    ).items()
                },
                _path("interaction_resume"): {
                    "get": {
                        **_browser("resume", "Finish the authorization request", [], post=False)[
                            "get"
                        ],
                        "parameters": [_UID],
                    }
                },
                _path("end_session"): _browser(
                    "endSession",
                    "RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)",
                    ["id_token_hint", "client_id", "post_logout_redirect_uri", "state"],
                    post=True,
                ),
                _path("userinfo"): {
                    method: {
                        "operationId": "userinfo" + ("Post" if method == "post" else ""),
                        "summary": "UserInfo endpoint (OIDC Core §5.3)",
                        "security": [{"bearer": []}],
                        "responses": {
                            "200": {
                                "description": "sub and the claims of the granted scopes",
                                "content": {"application/json": {"schema": {"type": "object"}}},
                            },
                            "400": _bearer_error("a malformed request (invalid_request)"),
                            "401": _bearer_error(
                                "no access token (no error code), or an invalid, expired or"
                                " revoked one (invalid_token)"
                            ),
                            "403": _bearer_error("the token lacks the openid scope"),
                            "413": _error("the form exceeds max_body_size (invalid_request)"),
                            "415": _error("the body is not a UTF-8 form (invalid_request)"),
                            "429": _rate_limited(),
                            "503": _error("the database or keys are unavailable"),
                        },
                    }
                    for method in ("get", "post")
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
            "securitySchemes": {
                "clientBasic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
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
