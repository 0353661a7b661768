"""Reading ``application/x-www-form-urlencoded`` request bodies defensively.

The body is capped before it is read in full, must be UTF-8 (RFC 6749 Appendix B; a ``charset``
other than UTF-8 is refused), its percent-escapes well formed and decoding to UTF-8, and each
parameter may appear once (RFC 6749 §3.1/§3.2) except those a specification allows to repeat
(RFC 8707 ``resource``).
Parameters sent with an empty value are treated as omitted (RFC 6749 §3.1).  Unknown parameters
are ignored (§3.2).  Every failure is an :class:`~sealring.server.errors.OAuthError`, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote

from starlette.requests import Request

from sealring.server.errors import InvalidRequest, RequestTooLarge, UnsupportedMediaType

__all__ = ["Form", "check_form_type", "form_of", "parse_form", "read_form"]

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 64
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class Form:
    """Parsed form parameters; :meth:`get` refuses a repeated parameter."""

    def __init__(self, pairs: Mapping[str, list[str]]) -> None:
        self._values = pairs

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise InvalidRequest(f"parameter {name} is repeated")
        return values[0]

    def getall(self, name: str) -> list[str]:
        return list(self._values.get(name, ()))

    def items(self) -> list[tuple[str, str]]:
        """Every parameter as sent, repeats included (for checks that judge repeats themselves)."""
        return [(name, value) for name, values in self._values.items() for value in values]

    def __contains__(self, name: object) -> bool:
        return name in self._values


async def read_form(request: Request, max_size: int) -> Form:
    check_form_type(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("malformed Content-Length")
        if int(declared) > max_size:
            raise RequestTooLarge(f"the request body exceeds {max_size} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_size:
            raise RequestTooLarge(f"the request body exceeds {max_size} bytes")
        chunks.append(chunk)
    return form_of(b"".join(chunks))


def check_form_type(content_type: str) -> None:
    """Refuse a ``Content-Type`` other than the form media type in UTF-8 (415)."""
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() != FORM_TYPE:
        raise UnsupportedMediaType(f"the request body must be {FORM_TYPE}")
    if params and not _utf8_charset(params):
        raise UnsupportedMediaType("the request body must be encoded in UTF-8")


def form_of(body: bytes) -> Form:
    """The :class:`Form` of a whole request body (within the size cap); ``invalid_request`` if it
    is not a well-formed UTF-8 form."""
    try:
        return Form(parse_form(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the request body is not a valid form") from None


def parse_form(text: str) -> dict[str, list[str]]:
    """``name -> values`` of an ``application/x-www-form-urlencoded`` text, in order.

    The same result as :func:`urllib.parse.parse_qsl` with ``errors="strict"`` and
    ``max_num_fields=MAX_FIELDS`` (tests/server/test_form_parsing.py holds the two equal): ``&``
    separates, a part without ``=`` or with nothing after it is omitted, ``+`` is a space,
    percent-escapes decode as UTF-8, and too many fields or escapes that are not UTF-8 raise
    :class:`ValueError`; so does a ``%`` anywhere not followed by two hex digits, which
    ``parse_qsl`` would keep as it is.  A part with neither ``%`` nor ``+`` (every parameter of
    a typical token request) is taken as it is, without a decoding pass.
    """
    if text.count("&") >= MAX_FIELDS:
        raise ValueError("too many fields")
    if "%" in text and _BAD_ESCAPE.search(text):
        raise ValueError("malformed percent-escape")
    values: dict[str, list[str]] = {}
    for part in text.split("&"):
        name, _, value = part.partition("=")
        if not value:
            continue  # no "=" or an empty value: omitted (RFC 6749 §3.1)
        if "%" in part or "+" in part:
            name = unquote(name.replace("+", " "), errors="strict")
            value = unquote(value.replace("+", " "), errors="strict")
        known = values.get(name)
        if known is None:
            values[name] = [value]
        else:
            known.append(value)
    return values


def _utf8_charset(params: str) -> bool:
    """True unless the media type parameters name a charset other than UTF-8."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True
