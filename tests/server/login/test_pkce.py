"""RFC 7636 PKCE, S256 only: one test per rule of sealring.server.protocol.pkce."""

from __future__ import annotations

import hashlib
import string
from base64 import urlsafe_b64encode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealring.server.errors import InvalidGrant, InvalidRequest
from sealring.server.protocol import pkce
from sealring.server.protocol.pkce import (
    CODE_CHALLENGE_METHODS_SUPPORTED,
    check_code_challenge,
    check_code_verifier,
    s256_challenge,
    verify_code_verifier,
)

# RFC 7636 Appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
UNRESERVED = string.ascii_letters + string.digits + "-._~"


def test_rfc7636_appendix_b_vector() -> None:
    assert s256_challenge(RFC_VERIFIER) == RFC_CHALLENGE
    assert check_code_challenge(RFC_CHALLENGE, "S256") == RFC_CHALLENGE
    verify_code_verifier(RFC_CHALLENGE, RFC_VERIFIER)


def test_only_s256_is_advertised() -> None:
    assert CODE_CHALLENGE_METHODS_SUPPORTED == ("S256",)


def test_plain_method_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="transform algorithm not supported"):
        check_code_challenge(RFC_VERIFIER, "plain")


@pytest.mark.parametrize("method", ["s256", "SHA256", "S256 ", "S512"])
def test_methods_other_than_exact_s256_are_refused(method: str) -> None:
    with pytest.raises(InvalidRequest):
        check_code_challenge(RFC_CHALLENGE, method)


def test_missing_method_is_refused_not_defaulted_to_plain() -> None:
    with pytest.raises(InvalidRequest, match="code_challenge_method is required"):
        check_code_challenge(RFC_CHALLENGE, None)


def test_missing_challenge_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="code_challenge is required"):
        check_code_challenge(None, "S256")


@pytest.mark.parametrize(
    "challenge",
    [
        RFC_CHALLENGE[:-1],  # 42
        RFC_CHALLENGE + "A",  # 44
        RFC_CHALLENGE + "=",  # padded
        RFC_CHALLENGE[:-2] + "+/",  # standard base64 alphabet
        RFC_CHALLENGE[:-1] + ".",  # unreserved, but never in base64url
        RFC_VERIFIER + RFC_VERIFIER,  # a valid-looking plain value of 86 characters
    ],
)
def test_s256_challenge_must_be_43_base64url_characters(challenge: str) -> None:
    with pytest.raises(InvalidRequest):
        check_code_challenge(challenge, "S256")


def test_wrong_verifier_is_invalid_grant() -> None:
    other = "a" * 43
    with pytest.raises(InvalidGrant, match="does not match"):
        verify_code_verifier(RFC_CHALLENGE, other)


def test_plain_style_verifier_equal_to_challenge_is_refused() -> None:
    # What a server that silently accepted "plain" would let through.
    with pytest.raises(InvalidGrant):
        verify_code_verifier(RFC_CHALLENGE, RFC_CHALLENGE)


def test_verifier_without_stored_challenge_is_the_downgrade_and_refused() -> None:
    with pytest.raises(InvalidGrant, match="without code_challenge"):
        verify_code_verifier(None, RFC_VERIFIER)


def test_code_without_challenge_is_refused_even_without_verifier() -> None:
    with pytest.raises(InvalidGrant):
        verify_code_verifier(None, None)


def test_missing_verifier_for_a_challenge_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="code_verifier is required"):
        verify_code_verifier(RFC_CHALLENGE, None)


@pytest.mark.parametrize("length", [43, 128])
def test_verifier_length_bounds_are_inclusive(length: int) -> None:
    verifier = ("a1-._~" * 30)[:length]
    verify_code_verifier(s256_challenge(verifier), verifier)


@pytest.mark.parametrize("length", [42, 129])
def test_verifier_outside_43_to_128_is_refused_even_if_it_matches(length: int) -> None:
    verifier = "b" * length
    with pytest.raises(InvalidRequest):
        verify_code_verifier(s256_challenge(verifier), verifier)


@pytest.mark.parametrize("bad", ["+", "/", "=", " ", "%", "é"])
def test_verifier_characters_outside_unreserved_are_refused(bad: str) -> None:
    verifier = "c" * 42 + bad
    with pytest.raises(InvalidRequest):
        check_code_verifier(verifier)


@pytest.mark.parametrize("stored", ["é" * 43, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c\u212a"])
def test_a_stored_challenge_that_is_not_ascii_is_a_mismatch_not_a_crash(stored: str) -> None:
    # Fail closed: a row the authorization endpoint could not have written (its challenge is
    # checked there) is still answered with invalid_grant, never a UnicodeEncodeError (a 500).
    with pytest.raises(InvalidGrant, match="does not match"):
        verify_code_verifier(stored, RFC_VERIFIER)


def test_verifier_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = pkce.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(pkce.hmac, "compare_digest", spy)
    verify_code_verifier(RFC_CHALLENGE, RFC_VERIFIER)
    assert calls == [(RFC_CHALLENGE.encode(), RFC_CHALLENGE.encode())]


@given(st.text(alphabet=UNRESERVED, min_size=43, max_size=128))
def test_any_valid_verifier_round_trips(verifier: str) -> None:
    challenge = s256_challenge(verifier)
    expected = urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == expected.decode()
    assert check_code_challenge(challenge, "S256") == challenge
    verify_code_verifier(challenge, verifier)


@given(
    st.text(alphabet=UNRESERVED, min_size=43, max_size=128),
    st.text(alphabet=UNRESERVED, min_size=43, max_size=128),
)
def test_a_different_verifier_never_matches(verifier: str, other: str) -> None:
    if other == verifier:
        return
    with pytest.raises(InvalidGrant):
        verify_code_verifier(s256_challenge(verifier), other)


@given(st.text(max_size=140))
def test_verifier_syntax_is_exactly_43_to_128_unreserved(text: str) -> None:
    valid = 43 <= len(text) <= 128 and all(c in UNRESERVED for c in text)
    if valid:
        check_code_verifier(text)
    else:
        with pytest.raises(InvalidRequest):
            check_code_verifier(text)
