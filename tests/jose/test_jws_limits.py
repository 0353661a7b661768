"""JWS parsing limits (RFC 7515 §7.1, §2 base64url): each cap holds exactly at its value.

A token or header at the cap parses; one byte more is refused. Base64url is canonical: a
segment has one spelling, so a second spelling of a valid signature is refused, not verified.
"""

from __future__ import annotations

import json

import pytest

from sealring.jose import (
    DEFAULT_MAX_HEADER_SIZE,
    DEFAULT_MAX_TOKEN_SIZE,
    KeySet,
    LocalSigner,
    MalformedToken,
    UnsupportedCritical,
    jws,
    parse_compact,
    sign_compact,
    verify_compact,
)
from tests.helpers.jose import b64, forge, key

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _header_of_size(size: int) -> dict[str, object]:
    """A header whose JSON (as the helpers encode it) is exactly ``size`` bytes."""
    header: dict[str, object] = {"alg": "ES256", "pad": ""}
    header["pad"] = "x" * (size - len(json.dumps(header).encode()))
    assert len(json.dumps(header).encode()) == size
    return header


def _token_of_size(size: int) -> str:
    """A token of exactly ``size`` characters."""
    base = forge({"alg": "ES256"}, b"", b"")
    # Grow the payload; base64url has no length 1 mod 4, so the signature segment absorbs it.
    payload = b"p" * ((size - len(base)) * 3 // 4)
    token = forge({"alg": "ES256"}, payload, b"")
    sig = b""
    while len(token) < size:
        sig += b"s"
        token = forge({"alg": "ES256"}, payload, sig)
    assert len(token) == size, len(token)
    return token


@pytest.mark.parametrize("as_bytes", [False, True])
def test_default_token_size_cap_holds_at_its_value(as_bytes: bool) -> None:
    token = _token_of_size(DEFAULT_MAX_TOKEN_SIZE)
    parse_compact(token.encode() if as_bytes else token)
    over = token + "A"
    with pytest.raises(MalformedToken, match="size cap"):
        parse_compact(over.encode() if as_bytes else over)


def test_a_token_exactly_at_a_custom_cap_parses() -> None:
    token = _token_of_size(200)
    for value in (token, token.encode()):
        parse_compact(value, max_size=200)
        with pytest.raises(MalformedToken, match="size cap"):
            parse_compact(value, max_size=199)


def test_a_non_ascii_token_is_named_as_such_even_at_the_cap() -> None:
    token = _token_of_size(100)
    bad = token[:-1] + "é"
    with pytest.raises(MalformedToken, match="non-ASCII"):
        parse_compact(bad, max_size=100)
    with pytest.raises(MalformedToken, match="non-ASCII"):
        parse_compact(bad)


@pytest.mark.parametrize("cap", [DEFAULT_MAX_HEADER_SIZE, 100, 101, 102])
def test_header_size_cap_holds_at_its_value(cap: int) -> None:
    kwargs = {} if cap == DEFAULT_MAX_HEADER_SIZE else {"max_header_size": cap}
    parsed = parse_compact(forge(_header_of_size(cap), {}), **kwargs)  # type: ignore[arg-type]
    assert parsed.header["alg"] == "ES256"
    with pytest.raises(MalformedToken, match="header larger"):
        parse_compact(forge(_header_of_size(cap + 1), {}), **kwargs)  # type: ignore[arg-type]


def test_verify_compact_applies_its_caps() -> None:
    signer = LocalSigner(key("ES256"))
    keys = KeySet.of(key("ES256"))
    token = sign_compact(b"{}", signer)
    assert verify_compact(token, keys).payload == b"{}"
    with pytest.raises(MalformedToken, match="size cap"):
        verify_compact(token, keys, max_size=len(token) - 1)
    verify_compact(token, keys, max_size=len(token))
    header_bytes = len(json.dumps({"alg": "ES256", "kid": signer.kid}, separators=(",", ":")))
    with pytest.raises(MalformedToken, match="header larger"):
        verify_compact(token, keys, max_header_size=header_bytes - 1)
    verify_compact(token, keys, max_header_size=header_bytes)


def _respell_last(segment: str) -> str:
    """The same bytes spelled differently: set the unused low bits of the last character."""
    unused = {2: 0x0F, 3: 0x03}[len(segment) % 4]
    value = ALPHABET.index(segment[-1])
    assert value & unused == 0
    return segment[:-1] + ALPHABET[value | 1]


def test_a_second_spelling_of_a_valid_signature_is_refused() -> None:
    token = sign_compact(b'{"sub":"a"}', LocalSigner(key("ES256")))
    head, body, sig = token.split(".")
    assert len(sig) % 4 == 2  # 64 bytes: the last character carries four unused bits
    verify_compact(token, KeySet.of(key("ES256")))
    with pytest.raises(MalformedToken, match="non-canonical"):
        verify_compact(f"{head}.{body}.{_respell_last(sig)}", KeySet.of(key("ES256")))


@pytest.mark.parametrize("payload", [b"{}", b'{"a":1}'])
def test_a_second_spelling_of_the_payload_is_refused(payload: bytes) -> None:
    token = sign_compact(payload, LocalSigner(key("ES256")))
    head, body, sig = token.split(".")
    assert len(body) % 4 in (2, 3)
    with pytest.raises(MalformedToken, match="non-canonical"):
        parse_compact(f"{head}.{_respell_last(body)}.{sig}")


@pytest.mark.parametrize("part", [1, 2])
@pytest.mark.parametrize("char", ["!", "*", "+", "/", "="])
def test_a_character_outside_base64url_is_refused_anywhere(part: int, char: str) -> None:
    token = sign_compact(b'{"sub":"abcdef"}', LocalSigner(key("ES256")))
    parts = token.split(".")
    middle = len(parts[part]) // 2
    parts[part] = parts[part][:middle] + char + parts[part][middle + 1 :]
    with pytest.raises(MalformedToken):
        parse_compact(".".join(parts))


def test_a_segment_of_impossible_length_is_refused() -> None:
    token = sign_compact(b"{}", LocalSigner(key("ES256")))
    head, body, sig = token.split(".")
    assert (len(body), len(sig)) == (3, 86)
    for bad in (f"{head}.{body}AA.{sig}", f"{head}.{body}.{sig[:-1]}"):
        with pytest.raises(MalformedToken, match="impossible"):
            parse_compact(bad)


def test_duplicate_critical_names_are_malformed() -> None:
    header = {"alg": "ES256", "crit": ["ext", "ext"], "ext": 1}
    with pytest.raises(MalformedToken):
        parse_compact(forge(header, {}))
    with pytest.raises(UnsupportedCritical):
        parse_compact(forge({"alg": "ES256", "crit": ["ext"], "ext": 1}, {}))


def test_a_malformed_header_is_reported_as_the_header() -> None:
    with pytest.raises(MalformedToken, match=r"^JWS header: "):
        parse_compact(f"{b64(b'[1]')}.{b64(b'{}')}.")


def test_a_parsed_header_is_not_shared_between_parses() -> None:
    token = forge({"alg": "ES256", "x5c": ["a"], "ext": {"k": "v"}}, {})
    first = parse_compact(token)
    first.header["x5c"].append("b")  # type: ignore[attr-defined]
    first.header["ext"]["k"] = "changed"  # type: ignore[index]
    again = parse_compact(token)
    assert again.header["x5c"] == ["a"]
    assert again.header["ext"] == {"k": "v"}


def test_a_scalar_header_stays_the_same_when_a_caller_changes_its_copy() -> None:
    token = forge({"alg": "ES256", "typ": "JWT"}, {})
    parse_compact(token).header["typ"] = "changed"
    assert parse_compact(token).header == {"alg": "ES256", "typ": "JWT"}


def test_the_parsed_header_cache_is_bounded() -> None:
    for i in range(300):
        parse_compact(forge({"alg": "ES256", "n": i}, {}))
        assert len(jws._parsed_headers) <= 256


def test_the_encoded_header_cache_is_bounded() -> None:
    signer = LocalSigner(key("ES256"))
    for i in range(300):
        sign_compact(b"{}", signer, header={"typ": f"t{i}"})
        assert len(jws._header_cache) <= 256


@pytest.mark.parametrize("part", [1, 2])
@pytest.mark.parametrize("chars", ["!!!!", "****", "+/+/", "====", "    ", "\n\n\n\n"])
def test_foreign_characters_are_refused_even_when_dropping_them_would_decode(
    part: int, chars: str
) -> None:
    # A lenient decoder skips them and yields the original bytes: a second spelling of a
    # valid token, which strict base64url (RFC 7515 §2) does not have.
    token = sign_compact(b'{"sub":"abcdef"}', LocalSigner(key("ES256")))
    parts = token.split(".")
    middle = len(parts[part]) // 2
    parts[part] = parts[part][:middle] + chars + parts[part][middle:]
    with pytest.raises(MalformedToken):
        parse_compact(".".join(parts))
