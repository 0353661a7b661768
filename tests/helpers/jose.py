"""JOSE test helpers: base64url by hand, forged tokens, one generated key per algorithm."""

from __future__ import annotations

import base64
import json
from functools import cache

from sealring.jose import JWK


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, object], payload: bytes | dict[str, object], sig: bytes = b"") -> str:
    """A compact JWS with arbitrary parts (not a valid signature unless given one)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"{b64(json.dumps(header).encode())}.{b64(body)}.{b64(sig)}"


@cache
def key(alg: str) -> JWK:
    """One generated key per algorithm, shared across tests (RSA generation is slow)."""
    return JWK.generate(alg)
