"""Scope (RFC 6749 §3.3): parsing a scope string, and granting what a client asked for."""

from __future__ import annotations

import re
from collections.abc import Collection

from sealring.server.errors import InvalidScope

__all__ = ["granted_scopes", "parse_scope"]

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def parse_scope(text: str) -> tuple[str, ...]:
    """Split and check a space-delimited scope string (RFC 6749 §3.3); order kept, no repeats."""
    tokens = text.split(" ") if text else []
    out: list[str] = []
    for token in tokens:
        if not token:
            continue
        if not _SCOPE_TOKEN.fullmatch(token):
            raise ValueError("invalid scope token")
        if token not in out:
            out.append(token)
    return tuple(out)


def granted_scopes(allowed: tuple[str, ...], requested: str | None) -> tuple[str, ...]:
    """RFC 6749 §3.3: a subset of the client's scopes ``allowed``; none requested means all.

    ``scope = scope-token *( SP scope-token )``: a leading, trailing or doubled space is as
    malformed as a character outside NQCHAR.
    """
    if requested is None:
        return allowed
    try:
        if requested and "" in requested.split(" "):
            raise ValueError("empty scope token")
        scopes = parse_scope(requested)
    except ValueError:
        raise InvalidScope("scope is not a space-separated list of scope tokens") from None
    permitted: Collection[str] = set(allowed)
    if not all(s in permitted for s in scopes):
        raise InvalidScope("a requested scope is not allowed for this client")
    return scopes
