"""The one exception hierarchy every Sealring layer raises, and the registry of its codes.

Callers switch on :attr:`SealringError.code`, a stable machine-readable string, never on the
message text.  Every code is a member of :data:`ErrorCode` and belongs to exactly one class (a
class attribute; an instance never overrides it), so a new failure that needs its own code is a
new subclass.  docs/architecture.md, "Error codes", lists every class with its code
(``tests/test_errors.py`` keeps the list, this registry and the classes in step).

The message is meant for people and never contains secrets or key material.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

__all__ = ["ErrorCode", "ErrorResponse", "MissingDependency", "OAuthErrorName", "SealringError"]

#: The RFC wire values of an OAuth ``error`` member (RFC 6749 §4.1.2.1, §5.2; RFC 7009 §2.2.1;
#: RFC 8707 §2; OIDC Core §3.1.2.6): ``sealring.server.errors.OAuthError.error``.
OAuthErrorName = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "unsupported_token_type",
    "access_denied",
    "unsupported_response_type",
    "server_error",
    "temporarily_unavailable",
    "login_required",
    "consent_required",
    "interaction_required",
    "account_selection_required",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
    "invalid_request_object",
]

ErrorCode = Literal[
    # sealring
    "sealring_error",
    "missing_dependency",
    "database_config",
    # sealring.jose
    "jose_error",
    "malformed",
    "unsupported_crit",
    "alg_not_allowed",
    "unknown_kid",
    "ambiguous_key",
    "bad_signature",
    "invalid_key",
    "invalid_key_set",
    "token_expired",
    "token_not_yet_valid",
    "invalid_claim",
    "missing_claim",
    "invalid_issuer",
    "invalid_audience",
    "invalid_type",
    # sealring.keys
    "keys_error",
    "keys_config",
    "kek_invalid",
    "kek_mismatch",
    "key_unavailable",
    "unknown_key",
    "invalid_transition",
    "hsm_error",
    # sealring.server: each OAuth wire error is the code of the class named after it
    OAuthErrorName,
    "invalid_settings",
    "invalid_client_metadata",
    "invalid_redirect_uri",
    "authentication_failed",
    "account_error",
    "login_throttled",
    "code_already_redeemed",
    "code_replayed",
    "refresh_token_invalid",
    "refresh_token_reused",
    "oauth_error",
    "request_too_large",
    "unsupported_media_type",
    "rate_limited",
    # sealring.resource
    "bearer_error",
    "missing_token",
    "bearer_invalid_request",
    "invalid_token",
    "insufficient_scope",
    "jwks_error",
    "jwks_fetch_failed",
    "jwks_redirect_refused",
    "jwks_bad_status",
    "jwks_too_large",
    "jwks_invalid",
    "discovery_failed",
    "issuer_mismatch",
    "jwks_unavailable",
]


class SealringError(Exception):
    """Base of every error Sealring raises on purpose.

    ``usage`` marks the errors that mean "the command line or configuration is wrong": the CLI
    answers them with exit code 2, everything else that fails on its merits with 1.
    """

    code: ClassVar[ErrorCode] = "sealring_error"
    usage: ClassVar[bool] = False

    def __init__(self, message: str = "") -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class MissingDependency(SealringError):
    """A feature was configured whose optional package is not installed (the message names it)."""

    code = "missing_dependency"
    usage = True


@dataclass(frozen=True)
class ErrorResponse:
    """An HTTP error answer without a framework: adapters copy it onto their own response."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    media_type: str = "application/json"
