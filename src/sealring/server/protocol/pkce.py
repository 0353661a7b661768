"""Proof Key for Code Exchange (RFC 7636), ``S256`` only.

Sealring requires PKCE from every client (OAuth 2.1; RFC 9700 §2.1.1) and offers only the
``S256`` transform: ``plain`` sends the secret itself through the front channel, and a missing
``code_challenge_method`` would mean ``plain`` (RFC 7636 §4.3), so it is refused rather than
defaulted.  :func:`check_code_challenge` runs at the authorization endpoint,
:func:`verify_code_verifier` at the token endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

from sealring.server.errors import InvalidGrant, InvalidRequest

__all__ = [
    "CODE_CHALLENGE_METHODS_SUPPORTED",
    "S256",
    "check_code_challenge",
    "check_code_verifier",
    "s256_challenge",
    "verify_code_verifier",
]

S256: Final = "S256"
#: The value of ``code_challenge_methods_supported`` (RFC 8414 §2).
CODE_CHALLENGE_METHODS_SUPPORTED: Final = (S256,)

# RFC 7636 §4.1: code-verifier = 43*128unreserved, unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
_VERIFIER: Final = re.compile(r"[A-Za-z0-9\-._~]{43,128}\Z")
# RFC 7636 §4.2 allows the same 43-128 characters for a challenge, but an S256 challenge is
# BASE64URL(SHA-256(verifier)) without padding: always exactly 43 characters of the base64url
# alphabet.  Anything else can never match a verifier, so it is refused at the front door.
_S256_CHALLENGE: Final = re.compile(r"[A-Za-z0-9\-_]{43}\Z")


def s256_challenge(verifier: str) -> str:
    """RFC 7636 §4.2: ``BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_code_challenge(challenge: str | None, method: str | None) -> str:
    """RFC 7636 §4.4.1: the authorization request's challenge, or ``invalid_request``.

    Returns the challenge to store with the authorization code.
    """
    if challenge is None:
        raise InvalidRequest("code_challenge is required (PKCE with S256)")
    if method is None:
        raise InvalidRequest("code_challenge_method is required and must be S256")
    if method != S256:
        # The description RFC 7636 §4.4.1 gives for an unsupported method.
        raise InvalidRequest("transform algorithm not supported")
    if not _S256_CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge is not a base64url SHA-256 value of 43 characters")
    return challenge


def check_code_verifier(verifier: str) -> None:
    """RFC 7636 §4.1: 43 to 128 characters of the unreserved set, else ``invalid_request``."""
    if not _VERIFIER.match(verifier):
        raise InvalidRequest("code_verifier must be 43 to 128 unreserved characters")


def verify_code_verifier(stored_challenge: str | None, verifier: str | None) -> None:
    """RFC 7636 §4.6 and RFC 9700 §4.8 at the token endpoint; raises, never returns False.

    A verifier is accepted if and only if the code was issued with a challenge: a verifier for a
    code without one is the PKCE downgrade of RFC 9700 §4.8 and is refused like a wrong one.
    """
    if stored_challenge is None:
        if verifier is not None:
            raise InvalidGrant("code_verifier sent for a code issued without code_challenge")
        raise InvalidGrant("the code was issued without PKCE")
    if verifier is None:
        raise InvalidRequest("code_verifier is required")
    check_code_verifier(verifier)
    computed = s256_challenge(verifier).encode("ascii")
    if not hmac.compare_digest(computed, stored_challenge.encode("ascii", "replace")):
        raise InvalidGrant("code_verifier does not match the code_challenge")
