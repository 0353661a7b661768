"""Strict JSON for JOSE headers, claims and JWKs.

RFC 7515 §5.2 step 4 and RFC 7519 §7.2 step 4: duplicate member names MUST be rejected (or the
lexically last used; we reject). Input must be UTF-8 (RFC 8259 §8.1), and so must every string
once its escapes are decoded: an unpaired surrogate (``"\\ud800"``) is refused (RFC 7493 §2.1),
since it would later fail to encode wherever a claim is echoed or logged. Nesting depth and size
are capped so hostile input costs bounded time and memory; ``NaN``/``Infinity`` are refused, and
so is a number literal too large for a double (``1e400``, which Python would read as infinity).
"""

from __future__ import annotations

import json
import json.scanner
from math import isfinite
from typing import Any, NoReturn

from sealring.jose.errors import MalformedToken

__all__ = ["DEFAULT_MAX_DEPTH", "dumps", "loads", "loads_object"]

DEFAULT_MAX_DEPTH = 32


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedToken("JSON: duplicate member name")
    return obj


def _constant(name: str) -> NoReturn:
    raise MalformedToken(f"JSON: {name} is not JSON")


def _float(literal: str) -> float:
    value = float(literal)
    if not isfinite(value):
        raise MalformedToken("JSON: number out of range")
    return value


def _check_strings(value: object) -> None:
    """Refuse unpaired surrogates anywhere in ``value`` (member names included).

    Only called when the text has a ``\\u`` escape, the only way JSON text that is valid UTF-8
    can produce one.
    """
    try:
        _encoder.encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedToken("JSON: unpaired surrogate in a string") from exc


_decoder = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant, parse_float=_float)
_decode = _decoder.decode
# The C scanner alone skips decode()'s regex-based whitespace handling: the fast path for the
# usual compact input; anything with surrounding whitespace falls back to the full decoder.
_scan_once = json.scanner.make_scanner(_decoder)  # type: ignore[arg-type]
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _depth(value: object) -> int:
    """Nesting depth of containers, iteratively (no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def loads(
    data: bytes | str, *, max_size: int | None = None, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """Parse strict JSON; every failure is a :class:`MalformedToken`."""
    if max_size is not None and len(data) > max_size:
        raise MalformedToken("JSON: document too large")
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedToken("JSON: not UTF-8") from exc
    elif isinstance(data, str):
        text = data
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MalformedToken("JSON: unpaired surrogate in the text") from exc
    else:
        raise MalformedToken("JSON: expected text")
    try:
        try:
            value, end = _scan_once(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            value = _decode(text)
    except MalformedToken:
        raise
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and over-long integer literals.
        raise MalformedToken("JSON: invalid") from exc
    # Only walk the tree when the bracket count makes excess depth possible at all.
    if text.count("{") + text.count("[") > max_depth and _depth(value) > max_depth:
        raise MalformedToken("JSON: nested too deeply")
    if "\\u" in text:
        _check_strings(value)
    return value


def loads_object(
    data: bytes | str, *, max_size: int | None = None, what: str = "JSON"
) -> dict[str, Any]:
    """Parse strict JSON that must be an object."""
    if type(data) is bytes and (max_size is None or len(data) <= max_size):
        # The hot path (JWS headers and claims): compact UTF-8 objects.
        try:
            text = data.decode("utf-8")
            value, end = _scan_once(text, 0)
        except (ValueError, RecursionError, StopIteration):
            pass  # the full path below names the problem
        else:
            if end == len(text) and type(value) is dict:
                # Only walk the tree when the bracket count makes excess depth possible.
                if (
                    end > DEFAULT_MAX_DEPTH
                    and text.count("{") + text.count("[") > DEFAULT_MAX_DEPTH
                    and _depth(value) > DEFAULT_MAX_DEPTH
                ):
                    raise MalformedToken("JSON: nested too deeply")
                # The one-character test first: it is far cheaper than the two-character one
                # and rules out most documents.
                if "\\" in text and "\\u" in text:
                    _check_strings(value)
                return value
    value = loads(data, max_size=max_size)
    if type(value) is not dict:
        raise MalformedToken(f"{what}: not a JSON object")
    return value


def dumps(value: object) -> str:
    """Compact JSON text, UTF-8 characters as is."""
    return _encoder.encode(value)
