"""The published JWK Set (RFC 7517 §5): serialised once per change, with a strong ETag."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sealring.jose.jwk import PRIVATE_MEMBERS

__all__ = ["JWKSDocument"]


@dataclass(frozen=True)
class JWKSDocument:
    """What the ``jwks_uri`` serves: the exact body, its strong ETag (quoted) and max-age."""

    body: bytes
    etag: str
    max_age: int

    @classmethod
    def build(cls, public_keys: Iterable[Mapping[str, object]], max_age: float) -> JWKSDocument:
        """Serialise public JWK members; refuses anything that looks like private material."""
        keys = []
        for key in public_keys:
            if PRIVATE_MEMBERS.intersection(key):
                raise ValueError("refusing to publish a JWK with private members")
            keys.append(dict(key))
        body = json.dumps({"keys": keys}, separators=(",", ":"), sort_keys=True).encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=")
        return cls(body=body, etag='"' + digest.decode("ascii") + '"', max_age=int(max_age))

    @property
    def cache_control(self) -> str:
        return f"public, max-age={self.max_age}"

    def matches(self, if_none_match: str | None) -> bool:
        """True when an ``If-None-Match`` header value names this document (answer 304).

        RFC 9110 §13.1.2: ``If-None-Match`` uses the weak comparison (``W/"x"`` matches
        ``"x"``), and ``*`` matches any current representation.
        """
        if not if_none_match:
            return False
        opaque = self.etag.removeprefix("W/")
        for tag in if_none_match.split(","):
            tag = tag.strip()
            if tag == "*" or tag.removeprefix("W/") == opaque:
                return True
        return False
