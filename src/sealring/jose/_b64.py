"""Strict base64url (RFC 7515 §2): unpadded, URL-safe alphabet, canonical trailing bits."""

from __future__ import annotations

import binascii

from sealring.jose.errors import MalformedToken

__all__ = [
    "TO_STANDARD",
    "b64url_decode",
    "b64url_encode",
    "b64url_encode_bytes",
    "decode_translated",
    "uint_b64_encode",
]

# base64url -> standard alphabet; the standard-only characters and "=" become "!", which the strict
# decoder refuses, so one translation both converts and rules them out.
TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"", b"==", b"=")
# Low bits of the last character that carry no data, by length mod 4; they must be zero.
_UNUSED_BITS = (0, 0, 0x0F, 0x03)
# The value of each alphabet character, to check the unused low bits of the last one.
_VALUE = {
    c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_a2b_base64 = binascii.a2b_base64


def b64url_encode_bytes(data: bytes) -> bytes:
    """Encode without padding, as ASCII bytes."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def b64url_encode(data: bytes) -> str:
    """Encode without padding."""
    return b64url_encode_bytes(data).decode("ascii")


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
    return decode_translated(raw.translate(TO_STANDARD))


def decode_translated(segment: bytes) -> bytes:
    """Decode base64url already translated with :data:`TO_STANDARD`.

    Strict ``a2b_base64`` rejects every character outside the alphabet, including the ``!`` that
    the translation made of ``+``, ``/`` and ``=``. Every verification decodes two segments
    here, so the common case (a canonical segment) costs one length test and one C call.
    """
    try:
        if rem := len(segment) & 3:
            if rem == 1:
                raise MalformedToken("base64url: impossible length")
            if _VALUE[segment[-1]] & _UNUSED_BITS[rem]:
                raise MalformedToken("base64url: non-canonical trailing bits")
            segment += _PADDING[rem]
        return _a2b_base64(segment, strict_mode=True)
    except (KeyError, binascii.Error) as exc:
        raise MalformedToken("base64url: character outside the alphabet") from exc


def uint_b64_encode(value: int, length: int | None = None) -> str:
    """Base64urlUInt (RFC 7518 §2): big-endian, minimal octets unless a fixed length is given."""
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big"))
