"""Strict base64url (RFC 7515 §2): unpadded, URL-safe alphabet, canonical trailing bits."""

from __future__ import annotations

import base64
import binascii

from sealring.jose.errors import MalformedToken

__all__ = ["b64url_decode", "b64url_encode", "uint_b64_encode"]

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"", b"==", b"=")
# The value of each alphabet character, to check the unused low bits of the last one.
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}


def b64url_encode(data: bytes) -> str:
    """Encode without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str | bytes) -> bytes:
    """Decode canonical unpadded base64url; anything else raises :class:`MalformedToken`.

    RFC 7515 §2 defines base64url "with all trailing '=' characters omitted"; a non-canonical
    last character (unused bits set) would give a second spelling of the same bytes.
    """
    if isinstance(data, str):
        try:
            raw = data.encode("ascii")
        except UnicodeEncodeError as exc:
            raise MalformedToken("base64url: non-ASCII character") from exc
    else:
        raw = data
    if raw.translate(None, _ALPHABET):
        raise MalformedToken("base64url: character outside the alphabet (or padding)")
    rem = len(raw) % 4
    if rem == 1:
        raise MalformedToken("base64url: impossible length")
    if rem and _VALUE[raw[-1]] & (0x0F if rem == 2 else 0x03):
        raise MalformedToken("base64url: non-canonical trailing bits")
    try:
        return binascii.a2b_base64(raw.translate(_TO_STANDARD) + _PADDING[rem])
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise MalformedToken("base64url: invalid") from exc


def uint_b64_encode(value: int, length: int | None = None) -> str:
    """Base64urlUInt (RFC 7518 §2): big-endian, minimal octets unless a fixed length is given."""
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big"))
