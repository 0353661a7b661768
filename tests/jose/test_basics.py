"""Round trips and the rules of the contract, one assertion group per rule."""

from __future__ import annotations

import pytest

from sealring.errors import SealringError
from sealring.jose import (
    JWK,
    AlgorithmNotAllowed,
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaim,
    InvalidIssuer,
    InvalidKey,
    InvalidKeySet,
    InvalidSignature,
    InvalidTokenType,
    JoseError,
    JWTVerifier,
    KeyNotFound,
    KeySet,
    LocalSigner,
    MalformedToken,
    MissingClaim,
    UnsupportedCritical,
    check_type,
    encode_jwt,
    parse_compact,
    sign_compact,
    validate_claims,
    verify_compact,
)

from .helpers import NOW, b64, forge, key

ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def test_error_codes() -> None:
    expected = {
        JoseError: "jose_error",
        MalformedToken: "malformed",
        UnsupportedCritical: "unsupported_crit",
        AlgorithmNotAllowed: "alg_not_allowed",
        KeyNotFound: "unknown_kid",
        InvalidSignature: "bad_signature",
        InvalidKey: "invalid_key",
        InvalidKeySet: "invalid_key_set",
        ExpiredToken: "token_expired",
        ImmatureToken: "token_not_yet_valid",
        InvalidClaim: "invalid_claim",
        MissingClaim: "missing_claim",
        InvalidIssuer: "invalid_issuer",
        InvalidAudience: "invalid_audience",
        InvalidTokenType: "invalid_type",
    }
    for cls, code in expected.items():
        assert issubclass(cls, SealringError)
        assert issubclass(cls, JoseError)
        assert cls.code == code
    assert MissingClaim("x", claim="exp").claim == "exp"


@pytest.mark.parametrize("alg", ALGS)
def test_sign_verify_round_trip(alg: str) -> None:
    jwk = key(alg)
    signer = LocalSigner(jwk)
    assert signer.alg == alg
    assert signer.kid == jwk.kid
    token = encode_jwt({"sub": "a", "exp": NOW + 10}, signer)
    verifier = JWTVerifier(KeySet.of(jwk), clock=lambda: NOW)
    result = verifier.verify(token)
    assert result.claims == {"sub": "a", "exp": NOW + 10}
    assert result.header == {"alg": alg, "kid": jwk.kid, "typ": "JWT"}
    assert result.key == jwk.public()
    assert result.alg == alg


@pytest.mark.parametrize("alg", ALGS)
def test_public_export_never_has_private_members(alg: str) -> None:
    jwk = key(alg)
    assert jwk.is_private
    public = jwk.to_dict()
    assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(public)
    assert not jwk.public().is_private
    assert jwk.public().kid == jwk.kid == jwk.thumbprint()
    with pytest.raises(InvalidKey):
        jwk.public().private_key()
    with pytest.raises(InvalidKey):
        jwk.public().to_private_dict()
    with pytest.raises(InvalidKey):
        JWK.from_dict(jwk.to_private_dict())
    again = JWK.from_dict(jwk.to_private_dict(), allow_private=True)
    assert again == jwk
    assert again.to_private_dict() == jwk.to_private_dict()
    assert jwk.to_private_dict()["d"] not in repr(jwk)


def test_jwk_is_immutable_and_hashable() -> None:
    jwk = key("ES256")
    with pytest.raises(AttributeError):
        jwk.kid = "x"  # type: ignore[misc]
    assert {jwk, jwk.public()}
    assert hash(jwk) == hash(jwk.kid)


def test_signing_algorithm_defaults() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    assert JWK.from_key(ec.generate_private_key(ec.SECP384R1())).signing_algorithm() == "ES384"
    assert JWK.from_key(ed25519.Ed25519PrivateKey.generate()).signing_algorithm() == "EdDSA"
    rsa = JWK.from_dict({k: v for k, v in key("RS256").to_dict().items() if k != "alg"})
    assert rsa.alg is None
    assert rsa.signing_algorithm() == "RS256"
    with pytest.raises(InvalidKey):
        JWK.from_key(ec.generate_private_key(ec.SECP256R1()), alg="ES384")
    with pytest.raises(InvalidKey):
        JWK.from_key(ec.generate_private_key(ec.SECP256K1()))


def test_keyset_rules() -> None:
    es, ed = key("ES256"), key("EdDSA")
    doc = {
        "keys": [
            es.to_dict(),
            ed.to_dict(),
            {"kty": "XYZ"},
            {**key("ES384").to_dict(), "use": "enc"},
        ]
    }
    ks = KeySet.from_dict(doc)
    assert len(ks) == 2
    assert es.kid in ks
    assert "nope" not in ks
    assert len(ks.skipped) == 2
    assert ks.to_dict() == {"keys": [es.to_dict(), ed.to_dict()]}
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": [es.to_dict(), es.to_dict()]})
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": [es.to_private_dict()]})
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": [{"kty": "oct", "k": "AAAA"}]})
    with pytest.raises(InvalidKeySet):
        KeySet.from_json(b'{"keys":[]}' + b" " * 600_000)
    with pytest.raises(InvalidKeySet):
        KeySet.from_json(b"[]")
    assert not KeySet.of(es).keys[0].is_private


def test_header_never_chooses_the_key_or_algorithm() -> None:
    ec_key, rsa_key = key("ES256"), key("RS256")
    keys = KeySet.of(ec_key, rsa_key)
    # an RS256 header naming the EC key
    token = sign_compact(b"{}", LocalSigner(rsa_key))
    head = forge({"alg": "RS256", "kid": ec_key.kid}, b"{}").split(".")[0]
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(head + "." + token.split(".", 1)[1], keys)
    for alg in ("HS256", "none", "ES256K", "RSA-OAEP"):
        with pytest.raises(AlgorithmNotAllowed):
            verify_compact(forge({"alg": alg, "kid": ec_key.kid}, b"{}"), keys)
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(sign_compact(b"{}", LocalSigner(ec_key)), keys, algorithms=["RS256"])


def test_rsa_key_without_alg_and_allow_list() -> None:
    rsa_key = key("RS256")
    bare = JWK.from_dict(
        {k: v for k, v in rsa_key.to_private_dict().items() if k != "alg"}, allow_private=True
    )
    token = sign_compact(b"{}", LocalSigner(bare, "PS256"))
    keys = KeySet.of(bare)
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(token, keys)  # default binding is RS256
    verify_compact(token, keys, algorithms=["PS256"])
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(token, keys, algorithms=["RS256"])
    with pytest.raises(AlgorithmNotAllowed):
        LocalSigner(rsa_key, "PS256")  # bound to RS256


def test_no_kid_needs_exactly_one_fitting_key() -> None:
    a, b = key("ES256"), JWK.generate("ES256")
    token = sign_compact(b"{}", LocalSigner(a))
    parts = token.split(".")[1:]
    no_kid = forge({"alg": "ES256"}, b"{}").split(".")[0]
    # re-sign without kid: build the signing input by hand
    signing_input = f"{no_kid}.{parts[0]}".encode()
    sig = LocalSigner(a).sign(signing_input)
    bare = f"{no_kid}.{parts[0]}.{b64(sig)}"
    verify_compact(bare, KeySet.of(a, key("EdDSA")))
    with pytest.raises(KeyNotFound):
        verify_compact(bare, KeySet.of(a, b))
    with pytest.raises(KeyNotFound):
        verify_compact(bare, KeySet.of(key("EdDSA")))


def test_unknown_kid_and_bad_signature() -> None:
    a = key("ES256")
    token = sign_compact(b"{}", LocalSigner(a))
    with pytest.raises(KeyNotFound):
        verify_compact(token, KeySet.of(key("EdDSA")))
    other = JWK.from_key(JWK.generate("ES256").private_key(), kid=a.kid, alg="ES256")
    with pytest.raises(InvalidSignature):
        verify_compact(token, KeySet.of(other))


def test_crit_b64_and_ignored_key_headers() -> None:
    a = key("ES256")
    signer = LocalSigner(a)
    with pytest.raises(UnsupportedCritical):
        verify_compact(
            sign_compact(b"{}", signer, header={"crit": ["exp"], "exp": 1}), KeySet.of(a)
        )
    with pytest.raises(UnsupportedCritical):
        verify_compact(
            sign_compact(b"{}", signer, header={"b64": False, "crit": ["b64"]}), KeySet.of(a)
        )
    with pytest.raises(UnsupportedCritical):
        verify_compact(sign_compact(b"{}", signer, header={"b64": False}), KeySet.of(a))
    for crit in ([], "x", [1], ["alg"], ["missing"]):
        with pytest.raises(MalformedToken):
            verify_compact(sign_compact(b"{}", signer, header={"crit": crit}), KeySet.of(a))
    # An embedded jwk naming another key is ignored: the set decides.
    evil = JWK.generate("ES256")
    token = sign_compact(
        b"{}",
        LocalSigner(JWK.from_key(evil.private_key(), kid=a.kid, alg="ES256")),
        header={"jwk": evil.to_dict(), "jku": "https://evil.example/jwks"},
    )
    with pytest.raises(InvalidSignature):
        verify_compact(token, KeySet.of(a))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "....",
        "eyJhbGciOiJFUzI1NiJ9.e30.",
        "eyJhbGciOiJFUzI1NiJ9=.e30.AA",
        b"\xff\xfe.e30.AA",
        "é.e30.AA",
        forge({"alg": 1}, b"{}"),
        forge({"alg": "ES256", "kid": 1}, b"{}"),
        b64(b"[]") + ".e30.AA",
        b64(b'{"alg":"ES256","alg":"ES256"}') + ".e30.AA",
        b64(b"\xff") + ".e30.AA",
    ],
)
def test_malformed(token: str | bytes) -> None:
    a = key("ES256")
    with pytest.raises(
        (MalformedToken, AlgorithmNotAllowed, KeyNotFound, InvalidSignature)
    ) as info:
        verify_compact(token, KeySet.of(a))
    if token not in ("eyJhbGciOiJFUzI1NiJ9.e30.",):
        assert isinstance(info.value, MalformedToken)


def test_size_caps() -> None:
    a = key("ES256")
    big = sign_compact(b'{"x":"' + b"a" * 20_000 + b'"}', LocalSigner(a))
    with pytest.raises(MalformedToken):
        parse_compact(big)
    parse_compact(big, max_size=64 * 1024)
    with pytest.raises(MalformedToken):
        parse_compact(sign_compact(b"{}", LocalSigner(a), header={"x": "y" * 5000}))
    with pytest.raises(MalformedToken):
        parse_compact(123)  # type: ignore[arg-type]


def test_claims() -> None:
    validate_claims({"exp": NOW + 1}, now=NOW)
    with pytest.raises(ExpiredToken):
        validate_claims({"exp": NOW}, now=NOW)
    validate_claims({"exp": NOW - 5}, now=NOW, leeway=10)
    with pytest.raises(MissingClaim) as missing:
        validate_claims({}, now=NOW)
    assert missing.value.claim == "exp"
    validate_claims({}, now=NOW, required=())
    for bad in (True, "1900000000", None, [1], float("nan"), float("inf")):
        with pytest.raises(InvalidClaim):
            validate_claims({"exp": bad}, now=NOW)
    with pytest.raises(ImmatureToken):
        validate_claims({"nbf": NOW + 5}, now=NOW, required=())
    validate_claims({"nbf": NOW + 5}, now=NOW, leeway=5, required=())
    with pytest.raises(ImmatureToken):
        validate_claims({"iat": NOW + 100}, now=NOW, required=())
    with pytest.raises(InvalidIssuer):
        validate_claims(
            {"iss": "https://a.example/"}, now=NOW, issuer="https://a.example", required=()
        )
    with pytest.raises(MissingClaim):
        validate_claims({}, now=NOW, issuer="https://a.example", required=())
    with pytest.raises(InvalidClaim):
        validate_claims({"iss": 1}, now=NOW, required=())
    validate_claims({"aud": "api"}, now=NOW, audience="api", required=())
    validate_claims({"aud": ["x", "api"]}, now=NOW, audience=["api", "other"], required=())
    with pytest.raises(InvalidAudience):
        validate_claims({"aud": ["x"]}, now=NOW, audience="api", required=())
    with pytest.raises(InvalidClaim):
        validate_claims({"aud": [1]}, now=NOW, audience="api", required=())
    with pytest.raises(InvalidClaim):
        validate_claims({"aud": {"api": 1}}, now=NOW, audience="api", required=())
    with pytest.raises(MissingClaim):
        validate_claims({}, now=NOW, audience="api", required=())


def test_type_rules() -> None:
    check_type({"typ": "at+jwt"}, "at+jwt")
    check_type({"typ": "application/AT+JWT"}, "at+jwt")
    check_type({"typ": "At+Jwt"}, "application/at+jwt")
    check_type({}, None)
    for header in ({"typ": "JWT"}, {}, {"typ": 1}, {"typ": "application/jwt"}):
        with pytest.raises(InvalidTokenType):
            check_type(header, "at+jwt")


def test_verifier_pipeline() -> None:
    a = key("ES256")
    signer = LocalSigner(a)
    claims = {"iss": "https://as.example", "aud": "api", "exp": NOW + 60, "sub": "u"}
    token = encode_jwt(claims, signer, typ="at+jwt")
    verifier = JWTVerifier(
        KeySet.of(a),
        issuer="https://as.example",
        audience="api",
        typ="at+jwt",
        required=(),
        clock=lambda: NOW,
    )
    assert verifier.verify(token).claims == claims
    assert verifier.verify(token.encode()).claims == claims
    with pytest.raises(InvalidTokenType):
        verifier.verify(encode_jwt(claims, signer))
    with pytest.raises(MissingClaim):  # at+jwt always needs exp
        verifier.verify(
            encode_jwt({k: v for k, v in claims.items() if k != "exp"}, signer, typ="at+jwt")
        )
    late = JWTVerifier(KeySet.of(a), clock=lambda: NOW + 61)
    with pytest.raises(ExpiredToken):
        late.verify(token)
    with pytest.raises(MalformedToken):
        verifier.verify(sign_compact(b"[1]", signer, header={"typ": "at+jwt"}))
    with pytest.raises(JoseError):
        sign_compact(b"{}", signer, header={"alg": "RS256"})
    with pytest.raises(JoseError):
        encode_jwt({"x": object()}, signer)
