"""Key and algorithm selection (RFC 8725 §3.1, RFC 7515 §4.1.4): the verifier's set decides.

``selection_table`` is the precomputed form of ``select_key``: it must list exactly the pairs
``select_key`` accepts, no more, so that the fast path never accepts what the slow path refuses.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sealring.jose import (
    ALGORITHMS,
    JWK,
    AlgorithmNotAllowed,
    AmbiguousKey,
    CompactJWS,
    JoseError,
    JWTVerifier,
    KeyNotFound,
    KeySet,
    LocalSigner,
    encode_jwt,
    select_key,
    verify_compact,
)
from sealring.jose.jws import key_allows, selection_table
from tests.helpers.clock import T0 as NOW
from tests.helpers.jose import b64, forge, key


def _rsa_without_alg() -> JWK:
    return JWK.from_key(key("RS256").private_key())


def _jws(alg: str, kid: object = None) -> CompactJWS:
    header: dict[str, object] = {"alg": alg}
    if kid is not None:
        header["kid"] = kid
    return CompactJWS(header, b"{}", b"x.y", b"")


def _kidless(signing_key: JWK, alg: str | None = None, **header: object) -> str:
    """A token signed by ``signing_key`` whose header carries no ``kid`` unless given."""
    signer = LocalSigner(signing_key, alg)
    encoded = b64(json.dumps({"alg": signer.alg, **header}).encode())
    signing_input = f"{encoded}.{b64(json.dumps({'exp': NOW + 60}).encode())}"
    return f"{signing_input}.{b64(signer.sign(signing_input.encode()))}"


def test_an_rsa_key_without_alg_serves_only_listed_rsa_algorithms() -> None:
    rsa = _rsa_without_alg()
    assert key_allows(rsa, "RS256")
    assert not key_allows(rsa, "PS256")
    assert key_allows(rsa, "PS256", ["PS256"])
    assert not key_allows(rsa, "RS384", ["PS256"])
    assert not key_allows(rsa, "ES256", ["ES256", "RS256"])


def test_a_key_with_alg_serves_that_alg_alone() -> None:
    assert key_allows(key("ES256"), "ES256", ["ES256", "ES384"])
    assert not key_allows(key("ES256"), "ES384", ["ES256", "ES384"])


@pytest.mark.parametrize("alg", ["HS256", "none", "RS1"])
def test_an_unsupported_algorithm_is_not_allowed_with_or_without_kid(alg: str) -> None:
    keys = KeySet.of(key("ES256"))
    with pytest.raises(AlgorithmNotAllowed):
        select_key(_jws(alg), keys)
    with pytest.raises(AlgorithmNotAllowed):
        select_key(_jws(alg, key("ES256").kid), keys)


@pytest.mark.parametrize("kid", [["a"], {"k": 1}, 5])
def test_a_kid_that_is_not_a_string_finds_no_key(kid: object) -> None:
    with pytest.raises(KeyNotFound):
        select_key(_jws("ES256", kid), KeySet.of(key("ES256")))


def test_a_token_without_kid_uses_the_allow_list_to_fit_keys() -> None:
    rsa = _rsa_without_alg()
    token = _kidless(rsa, "PS256")
    rsa = rsa.public()
    assert verify_compact(token, KeySet.of(rsa), algorithms=["PS256"])
    with pytest.raises(JoseError):
        verify_compact(token, KeySet.of(rsa))


def test_a_token_without_kid_needs_exactly_one_fitting_key() -> None:
    other = JWK.from_key(ec.generate_private_key(ec.SECP256R1()), alg="ES256")
    token = _kidless(key("ES256"))
    assert verify_compact(token, KeySet.of(key("ES256")))
    with pytest.raises(AmbiguousKey, match="several") as ambiguous:
        verify_compact(token, KeySet.of(key("ES256"), other))
    assert ambiguous.value.code == "ambiguous_key"  # not "unknown_kid": the key is there, twice
    assert isinstance(ambiguous.value, KeyNotFound)  # still caught as "no key for this token"
    with pytest.raises(KeyNotFound, match="no key") as missing:
        verify_compact(token, KeySet.of(key("ES384")))
    assert type(missing.value) is KeyNotFound
    assert missing.value.code == "unknown_kid"


def _accepted_pairs(keys: KeySet, algorithms: list[str] | None) -> set[tuple[str | None, str]]:
    pairs = set()
    for alg in ALGORITHMS:
        for kid in [None, *keys.kids]:
            try:
                chosen, _ = select_key(_jws(alg, kid), keys, algorithms)
            except JoseError:
                continue
            pairs.add((kid, alg))
            assert chosen is (keys.get(kid) if kid else chosen)
    return pairs


@pytest.mark.parametrize(
    "algorithms", [None, ["ES256"], ["RS256"], ["PS256", "ES384"], ["PS256", "RS256", "ES256"]]
)
def test_the_selection_table_is_exactly_what_select_key_accepts(
    algorithms: list[str] | None,
) -> None:
    for keys in (
        KeySet.of(key("ES256")),
        KeySet.of(key("ES256"), _rsa_without_alg()),
        KeySet.of(key("ES256"), key("ES384"), key("EdDSA")),
    ):
        table = selection_table(keys, algorithms)
        assert set(table) == _accepted_pairs(keys, algorithms)
        for (kid, alg), (chosen, verify) in table.items():
            expected, _ = select_key(_jws(alg, kid), keys, algorithms)
            assert chosen is expected
            assert callable(verify)


def test_the_verifier_refuses_an_algorithm_outside_its_allow_list() -> None:
    token = encode_jwt({"exp": NOW + 60}, LocalSigner(key("ES256")))
    verifier = JWTVerifier(KeySet.of(key("ES256")), algorithms=["RS256"], clock=lambda: NOW)
    with pytest.raises(AlgorithmNotAllowed):
        verifier.verify(token)


def test_a_verifier_table_entry_verifies_with_its_own_key() -> None:
    signer = LocalSigner(key("ES256"))
    token = encode_jwt({"exp": NOW + 60}, signer)
    verified = JWTVerifier(KeySet.of(key("ES256"), key("ES384")), clock=lambda: NOW).verify(token)
    assert verified.key.kid == signer.kid
    assert verified.alg == "ES256"


@pytest.mark.parametrize("alg", ["HS256", "RS256"])
def test_a_signer_refuses_an_algorithm_that_does_not_fit_its_key(alg: str) -> None:
    unbound = JWK.from_key(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(AlgorithmNotAllowed):
        LocalSigner(unbound, alg)
    assert LocalSigner(unbound).alg == "ES256"


def test_a_forged_kidless_token_is_refused() -> None:
    with pytest.raises(JoseError):
        verify_compact(forge({"alg": "ES256"}, {}, b"\0" * 64), KeySet.of(key("ES256")))


def test_a_kid_the_set_does_not_hold_is_refused_even_when_one_key_fits() -> None:
    # RFC 7515 §4.1.4: a kid names the key; an unknown one is not a kid-less token.
    token = _kidless(key("ES256"), kid="not-in-the-set")
    keys = KeySet.of(key("ES256"))
    assert JWTVerifier(keys, clock=lambda: NOW).verify(_kidless(key("ES256")))
    with pytest.raises(KeyNotFound):
        JWTVerifier(keys, clock=lambda: NOW).verify(token)
    with pytest.raises(KeyNotFound):
        JWTVerifier(KeySet.of(key("ES256"), key("ES384")), clock=lambda: NOW).verify(token)
