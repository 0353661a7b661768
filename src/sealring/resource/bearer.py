"""Finding the bearer token in a request (RFC 6750 §2) and answering a refusal (RFC 6750 §3).

Framework-free: adapters pass in the header and, when enabled, the form or query value; they get
back the token or a :class:`~sealring.resource.errors.BearerError`, and copy the
:class:`~sealring.errors.ErrorResponse` of :func:`error_response` onto their own response.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sealring.errors import ErrorResponse, SealringError
from sealring.resource.errors import (
    BearerError,
    InvalidRequest,
    JWKSError,
    MissingToken,
)

__all__ = ["BearerOptions", "error_response", "extract_token"]

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@dataclass(frozen=True)
class BearerOptions:
    """Where a token may come from, and the realm named in challenges.

    Only the ``Authorization`` header by default: RFC 6750 §2.2 (form body) and §2.3 (URI query)
    leak tokens into logs and caches, so each has to be switched on.
    """

    realm: str | None = None
    allow_form: bool = False
    allow_query: bool = False


def extract_token(
    authorization: str | None,
    *,
    form_values: Sequence[str] = (),
    query_values: Sequence[str] = (),
) -> str:
    """The one bearer token of a request.

    ``authorization`` is the ``Authorization`` header (``None`` when absent); ``form_values`` /
    ``query_values`` are the ``access_token`` values of an enabled method. Raises
    :class:`MissingToken` when there is none, :class:`InvalidRequest` when the header is
    malformed or more than one method (or value) is used (RFC 6750 §2: exactly one method).
    """
    found: list[str] = []
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            credentials = credentials.strip()
            if not _B64TOKEN.fullmatch(credentials):
                raise InvalidRequest("the Authorization header is not 'Bearer <token>'")
            found.append(credentials)
    for value in (*form_values, *query_values):
        if not _B64TOKEN.fullmatch(value):
            raise InvalidRequest("the access_token parameter is malformed")
        found.append(value)
    if not found:
        raise MissingToken("this resource needs a bearer access token")
    if len(found) > 1:
        raise InvalidRequest("the request carries more than one access token")
    return found[0]


def error_response(exc: SealringError, realm: str | None) -> ErrorResponse:
    """The answer to a refused request: the error's own :meth:`response`; adapters copy it.

    Anything but a bearer or key-set error is not a refusal and is raised again.
    """
    if isinstance(exc, BearerError | JWKSError):
        return exc.response(realm)
    raise exc
