"""Opaque handles: authorization codes, refresh tokens, browser sessions and interactions.

A handle is 256 bits from :mod:`secrets`, base64url without padding (43 characters), so it can
be neither guessed nor forged (RFC 9700 §4.14.2, OAuth 2.1 §Refresh Token Protection).  The
database keeps only ``HMAC-SHA-256(handle key, kind || 0x00 || handle)``: a stolen copy of the
tables yields nothing that can be presented, and the kind in the MAC keeps a code from ever being
looked up as a refresh token.  The handle key is derived from the server secret with HKDF, so it
differs from the key that hashes client secrets.

A keyed fast hash (not argon2) is right here for the same reason as for client secrets: the
value is random and 256 bits long, so there is nothing to brute-force, and a slow hash would only
slow every token request.
"""

from __future__ import annotations

import enum
import hmac
import re
import secrets
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["HANDLE_BYTES", "HandleHasher", "HandleKind", "new_handle"]

HANDLE_BYTES: Final = 32
_HANDLE: Final = re.compile(r"[A-Za-z0-9_-]{43}\Z")
_INFO: Final = b"sealring opaque handles v1"


class HandleKind(enum.Enum):
    AUTHORIZATION_CODE = "code"
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a label, not a secret
    SESSION = "session"
    INTERACTION = "interaction"
    # Not a handle: the username or client IP a login-throttle row counts failures for.
    LOGIN_THROTTLE = "login_throttle"
    # The random value of a browser's interaction cookie, as the interaction row records it.
    BROWSER = "browser"
    # A page's CSRF token: MAC of the interaction (or session) and the browser's cookie.
    CSRF = "csrf"


def new_handle() -> str:
    """A fresh handle: 256 random bits, base64url without padding."""
    return secrets.token_urlsafe(HANDLE_BYTES)


class HandleHasher:
    """The keyed hash a handle is stored and looked up by."""

    __slots__ = ("_key",)

    def __init__(self, server_secret: bytes) -> None:
        if len(server_secret) < 32:
            raise ValueError("the server secret must be at least 32 bytes")
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            server_secret
        )

    def __repr__(self) -> str:
        return "HandleHasher(<hidden>)"

    def hash(self, kind: HandleKind, handle: str) -> bytes:
        """The 32-byte storage key of ``handle``."""
        message = kind.value.encode("ascii") + b"\0" + handle.encode("utf-8", "replace")
        return hmac.digest(self._key, message, "sha256")

    def lookup_key(self, kind: HandleKind, presented: str) -> bytes | None:
        """The storage key to look ``presented`` up by, or None if it cannot be a handle.

        Refusing malformed input before hashing keeps over-long or non-ASCII values away from
        the database; a well-formed unknown handle simply finds no row.
        """
        if not _HANDLE.match(presented):
            return None
        return self.hash(kind, presented)

    def matches(self, kind: HandleKind, presented: str, stored: bytes) -> bool:
        """Whether ``presented`` hashes to ``stored``, compared in constant time.

        The row was found by its hash, so this re-check guards against a store that matched
        loosely (a prefix index, a collation) rather than against timing.
        """
        computed = self.hash(kind, presented)
        return hmac.compare_digest(computed, stored) and _HANDLE.match(presented) is not None
