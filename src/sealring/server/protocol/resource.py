"""Resource indicators (RFC 8707): which audience an access token is issued for."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sealring.server.errors import InvalidTarget

__all__ = ["granted_audience"]

_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+\Z")  # RFC 3986 §4.3, no spaces


def granted_audience(audiences: Sequence[str], resources: Sequence[str]) -> str | list[str]:
    """RFC 8707 §2: each ``resource`` must be one of the client's ``audiences``; else its first.

    A ``resource`` that is not an absolute URI, or that has a fragment, is ``invalid_target``
    whatever the client's registration says.
    """
    if not resources:
        if not audiences:
            raise InvalidTarget("no resource requested and the client has no default audience")
        return audiences[0]
    unique = list(dict.fromkeys(resources))
    if not all(_ABSOLUTE_URI.match(r) and "#" not in r for r in unique):
        raise InvalidTarget("resource must be an absolute URI without a fragment")
    allowed = set(audiences)
    if not all(r in allowed for r in unique):
        raise InvalidTarget("a requested resource is not allowed for this client")
    return unique[0] if len(unique) == 1 else unique
