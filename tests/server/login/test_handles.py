"""Opaque handles and their keyed storage hash (sealring.server.tokens.handles)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from base64 import urlsafe_b64decode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from sealring.server.clients import SecretHasher
from sealring.server.tokens import handles
from sealring.server.tokens.handles import HandleHasher, HandleKind, new_handle

SECRET = b"k" * 32


def test_handle_carries_256_random_bits() -> None:
    handle = new_handle()
    assert len(handle) == 43
    assert len(urlsafe_b64decode(handle + "=")) == 32
    assert len({new_handle() for _ in range(2000)}) == 2000


def test_handle_comes_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def fake(n: int) -> str:
        seen.append(n)
        return "x" * 43

    monkeypatch.setattr(handles.secrets, "token_urlsafe", fake)
    assert new_handle() == "x" * 43
    assert seen == [32]


def test_storage_hash_is_keyed() -> None:
    handle = new_handle()
    a = HandleHasher(SECRET).hash(HandleKind.REFRESH_TOKEN, handle)
    b = HandleHasher(b"j" * 32).hash(HandleKind.REFRESH_TOKEN, handle)
    assert len(a) == 32
    assert a != b
    assert a != hashlib.sha256(handle.encode()).digest()


def test_storage_hash_is_deterministic_for_lookup() -> None:
    handle = new_handle()
    assert HandleHasher(SECRET).hash(HandleKind.AUTHORIZATION_CODE, handle) == HandleHasher(
        SECRET
    ).hash(HandleKind.AUTHORIZATION_CODE, handle)


def test_kinds_are_separated() -> None:
    hasher = HandleHasher(SECRET)
    handle = new_handle()
    digests = {hasher.hash(kind, handle) for kind in HandleKind}
    assert len(digests) == len(HandleKind)
    stored = hasher.hash(HandleKind.AUTHORIZATION_CODE, handle)
    assert not hasher.matches(HandleKind.REFRESH_TOKEN, handle, stored)


def test_handle_key_differs_from_the_client_secret_key() -> None:
    # The same server secret hashes client secrets; a handle hash must not equal that HMAC.
    handle = new_handle()
    client_hash = SecretHasher(SECRET).hash(handle)
    hasher = HandleHasher(SECRET)
    assert all(hasher.hash(kind, handle) != client_hash for kind in HandleKind)
    direct = hmac.digest(SECRET, b"code\0" + handle.encode(), "sha256")
    assert hasher.hash(HandleKind.AUTHORIZATION_CODE, handle) != direct


def test_the_storage_key_is_hmac_sha256_of_kind_nul_handle_under_the_hkdf_handle_key() -> None:
    # The stored format: a change to any part of the derivation (HKDF's hash, length or info,
    # the separator, the MAC) would make every code, refresh token and session already in
    # the database unfindable after an upgrade.
    handle = "A" * 21 + "-" + "z" * 21
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"sealring opaque handles v1"
    ).derive(SECRET)
    for kind in HandleKind:
        expected = hmac.new(key, kind.value.encode() + b"\x00" + handle.encode(), "sha256")
        assert HandleHasher(SECRET).hash(kind, handle) == expected.digest()


def test_short_server_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        HandleHasher(b"k" * 31)


def test_repr_names_the_class_and_hides_the_key() -> None:
    assert repr(HandleHasher(SECRET)) == "HandleHasher(<hidden>)"


def test_matches_accepts_the_right_handle_only() -> None:
    hasher = HandleHasher(SECRET)
    handle = new_handle()
    stored = hasher.hash(HandleKind.SESSION, handle)
    assert hasher.matches(HandleKind.SESSION, handle, stored)
    assert not hasher.matches(HandleKind.SESSION, new_handle(), stored)


@pytest.mark.parametrize("presented", ["\ud800" * 43, "a" * 42 + "\udcff", "a" * 42 + "\u00e9"])
def test_a_presented_value_that_is_no_handle_matches_nothing_and_never_raises(
    presented: str,
) -> None:
    # matches() hashes before it checks the shape: a lone surrogate (what a lenient decoder
    # leaves of broken UTF-8) must be a mismatch, not a UnicodeEncodeError.
    hasher = HandleHasher(SECRET)
    stored = hasher.hash(HandleKind.REFRESH_TOKEN, new_handle())
    assert hasher.matches(HandleKind.REFRESH_TOKEN, presented, stored) is False


def test_matches_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = handles.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(handles.hmac, "compare_digest", spy)
    hasher = HandleHasher(SECRET)
    handle = new_handle()
    assert hasher.matches(
        HandleKind.INTERACTION, handle, hasher.hash(HandleKind.INTERACTION, handle)
    )
    assert calls == [1]


@pytest.mark.parametrize(
    "presented",
    ["", "a" * 42, "a" * 44, "a" * 42 + "+", "a" * 42 + "=", "a" * 42 + "é", "a" * 5000],
)
def test_malformed_handles_get_no_lookup_key(presented: str) -> None:
    assert HandleHasher(SECRET).lookup_key(HandleKind.REFRESH_TOKEN, presented) is None


@given(st.text(max_size=60))
def test_lookup_key_exists_exactly_for_handle_shaped_input(presented: str) -> None:
    hasher = HandleHasher(SECRET)
    key = hasher.lookup_key(HandleKind.REFRESH_TOKEN, presented)
    shaped = re.fullmatch(r"[A-Za-z0-9_-]{43}", presented, flags=re.ASCII) is not None
    if shaped:
        assert key == hasher.hash(HandleKind.REFRESH_TOKEN, presented)
    else:
        assert key is None


def test_a_fresh_handle_always_has_a_lookup_key() -> None:
    hasher = HandleHasher(secrets.token_bytes(32))
    for _ in range(200):
        handle = new_handle()
        assert hasher.lookup_key(HandleKind.AUTHORIZATION_CODE, handle) is not None
