"""AccessTokenVerifier's rules (RFC 9068 §2.2, §4) on a static key set with a frozen clock.

Every RFC 9068 claim the application reads has the type it is declared with, the configuration
is refused when it would switch a check off, the default leeway holds exactly at 30 s, and a
cache hit is served only while its key is trusted.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from sealring.jose import JWK, KeySet, LocalSigner, encode_jwt
from sealring.resource import AccessTokenVerifier, TrustedIssuer
from sealring.resource.errors import InsufficientScope, InvalidToken
from sealring.resource.verifier import DEFAULT_LEEWAY, RFC9068_REQUIRED_CLAIMS, AccessTokenClaims
from tests.helpers.jose import b64

NOW = 1_800_000_000.0
ISSUER = "https://as.example"
AUDIENCE = "https://api.example"
KEY = JWK.generate("ES256")


def claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "client_id": "client-1",
        "iat": NOW,
        "exp": NOW + 600,
        "jti": "j-1",
        "scope": "read write",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(key: JWK = KEY, typ: str = "at+jwt", **changes: object) -> str:
    return encode_jwt(claims(**changes), LocalSigner(key), typ=typ)


def verifier(
    now: float = NOW, keys: KeySet | None = None, **options: object
) -> AccessTokenVerifier:
    return AccessTokenVerifier(
        ISSUER,
        keys=keys or KeySet.of(KEY),
        clock=lambda: now,
        **{"audience": AUDIENCE, **options},  # type: ignore[arg-type]
    )


def test_a_valid_access_token_gives_typed_claims() -> None:
    got = verifier().verify(token())
    assert (got.iss, got.sub, got.aud, got.client_id, got.jti) == (
        ISSUER,
        "alice",
        (AUDIENCE,),
        "client-1",
        "j-1",
    )
    assert (got.exp, got.iat, got.kid) == (NOW + 600, NOW, KEY.kid)
    assert type(got.exp) is float
    assert type(got.iat) is float
    assert got.scopes == frozenset({"read", "write"})
    assert got.raw["sub"] == "alice"


@pytest.mark.parametrize("name", ["client_id", "scope", "sub", "jti"])
@pytest.mark.parametrize("value", [123, ["x"], True])
def test_string_claims_must_be_strings(name: str, value: object) -> None:
    # A client_id of 123 must not reach the application as an int.
    with pytest.raises(InvalidToken) as caught:
        verifier().verify(token(**{name: value}))
    assert caught.value.reason == "invalid_claim"


@pytest.mark.parametrize("name", RFC9068_REQUIRED_CLAIMS)
def test_every_rfc9068_claim_is_required_by_default(name: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        verifier().verify(token(**{name: None}))
    assert caught.value.reason in ("missing_claim", "invalid_issuer")


def test_optional_claims_may_be_absent_when_not_required() -> None:
    relaxed = verifier(required_claims=("iss", "exp", "aud", "sub"))
    got = relaxed.verify(token(client_id=None, jti=None, iat=None, scope=None))
    assert (got.client_id, got.jti, got.iat, got.scopes) == (None, None, None, frozenset())


def test_client_id_is_required_by_the_claims_object_when_listed() -> None:
    strict = verifier(required_claims=("iss", "exp", "aud", "sub", "client_id"))
    with pytest.raises(InvalidToken) as caught:
        strict.verify(token(client_id=None))
    assert caught.value.reason == "missing_claim"


def test_an_audience_list_is_kept_as_its_strings() -> None:
    got = verifier().verify(token(aud=["https://other", AUDIENCE]))
    assert got.aud == ("https://other", AUDIENCE)


def test_scope_is_split_on_spaces_only() -> None:
    got = verifier().verify(token(scope="a  b\tc"))
    assert got.scopes == frozenset({"a", "b\tc"})
    assert got.has_scopes(["a"])
    assert not got.has_scopes(["b"])
    got.require_scopes(["a", "b\tc"])
    with pytest.raises(InsufficientScope):
        got.require_scopes(["a", "c"])


def test_claims_are_immutable() -> None:
    # Claims are shared by every request that presents the same token (the cache).
    got = verifier().verify(token())
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.sub = "mallory"  # type: ignore[misc]
    with pytest.raises(TypeError):
        got.raw["sub"] = "mallory"  # type: ignore[index]
    assert isinstance(got, AccessTokenClaims)


def test_the_default_leeway_is_30_seconds_at_its_edge() -> None:
    assert DEFAULT_LEEWAY == 30.0
    exp = NOW + 600
    verifier(now=exp + 29.5).verify(token())
    with pytest.raises(InvalidToken) as caught:
        verifier(now=exp + 30).verify(token())
    assert caught.value.reason == "token_expired"
    verifier(now=NOW - 30).verify(token())
    with pytest.raises(InvalidToken):
        verifier(now=NOW - 30.5).verify(token())


def test_a_custom_leeway_replaces_the_default() -> None:
    exp = NOW + 600
    with pytest.raises(InvalidToken):
        verifier(now=exp + 1, leeway=0).verify(token())
    verifier(now=exp + 99, leeway=100).verify(token())


@pytest.mark.parametrize("leeway", [-1, math.nan, math.inf])
def test_a_leeway_that_would_switch_expiry_off_is_refused(leeway: float) -> None:
    with pytest.raises(ValueError):
        verifier(leeway=leeway)


def test_an_empty_audience_is_refused() -> None:
    with pytest.raises(ValueError):
        verifier(audience="")


def test_the_audience_must_match() -> None:
    with pytest.raises(InvalidToken) as caught:
        verifier().verify(token(aud="https://other"))
    assert caught.value.reason == "invalid_audience"
    multi = verifier(audience=["https://other", AUDIENCE])
    assert multi.verify(token()).sub == "alice"


def test_a_per_issuer_audience_overrides_the_verifier_audience() -> None:
    second = TrustedIssuer("https://as2.example", keys=KeySet.of(KEY), audience="https://b")
    both = AccessTokenVerifier(
        ISSUER, keys=KeySet.of(KEY), trusted_issuers=[second], audience=AUDIENCE, clock=lambda: NOW
    )
    assert both.verify(token()).aud == (AUDIENCE,)
    assert both.verify(token(iss="https://as2.example", aud="https://b")).iss == second.issuer
    with pytest.raises(InvalidToken):
        both.verify(token(iss="https://as2.example"))


@pytest.mark.parametrize("algorithms", ["ES256", [], ["HS256"], ["ES256", "none"]])
def test_an_allow_list_that_is_a_string_empty_or_unsupported_is_refused(algorithms: object) -> None:
    with pytest.raises(ValueError):
        verifier(algorithms=algorithms)


def test_the_allow_list_is_applied() -> None:
    with pytest.raises(InvalidToken) as caught:
        verifier(algorithms=["RS256"]).verify(token())
    assert caught.value.reason == "alg_not_allowed"
    assert verifier(algorithms=["ES256", "RS256"]).verify(token()).sub == "alice"


def _without_kid(key: JWK) -> str:
    """An access token signed by ``key`` whose header names no ``kid``."""
    signer = LocalSigner(key)
    header = b64(json.dumps({"alg": signer.alg, "typ": "at+jwt"}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims()).encode())}"
    return f"{signing_input}.{b64(signer.sign(signing_input.encode()))}"


def test_a_token_without_kid_that_several_keys_fit_is_ambiguous_not_unknown() -> None:
    other = JWK.generate("ES256")
    assert verifier().verify(_without_kid(KEY)).sub == "alice"  # one fitting key: that one
    with pytest.raises(InvalidToken) as caught:
        verifier(keys=KeySet.of(KEY, other)).verify(_without_kid(KEY))
    assert caught.value.reason == "ambiguous_key"
    with pytest.raises(InvalidToken) as caught:
        verifier(keys=KeySet.of(JWK.generate("ES384"))).verify(_without_kid(KEY))
    assert caught.value.reason == "unknown_kid"  # no key fits at all


def test_typ_at_jwt_is_required_by_default() -> None:
    with pytest.raises(InvalidToken) as caught:
        verifier().verify(token(typ="JWT"))
    assert caught.value.reason == "invalid_type"
    assert verifier(typ=None).verify(token(typ="JWT")).sub == "alice"


def test_the_token_size_cap_holds_at_its_value() -> None:
    raw = token()
    assert verifier(max_token_size=len(raw)).verify(raw).sub == "alice"
    with pytest.raises(InvalidToken) as caught:
        verifier(max_token_size=len(raw) - 1).verify(raw)
    assert caught.value.reason == "malformed"


def test_an_untrusted_issuer_is_refused() -> None:
    with pytest.raises(InvalidToken) as caught:
        verifier().verify(token(iss="https://evil.example"))
    assert caught.value.reason == "invalid_issuer"
    with pytest.raises(InvalidToken):
        verifier().verify(token(iss=7))


def test_configuration_without_an_issuer_is_refused() -> None:
    with pytest.raises(ValueError):
        AccessTokenVerifier(audience=AUDIENCE)
    with pytest.raises(ValueError):
        AccessTokenVerifier(audience=AUDIENCE, keys=KeySet.of(KEY))
    with pytest.raises(ValueError):
        AccessTokenVerifier(audience=AUDIENCE, jwks_uri="https://as.example/jwks")
    twice = [TrustedIssuer(ISSUER, keys=KeySet.of(KEY))] * 2
    with pytest.raises(ValueError):
        AccessTokenVerifier(audience=AUDIENCE, trusted_issuers=twice)


# -- the cache -----------------------------------------------------------------------------------


def test_a_verified_token_is_served_from_the_cache() -> None:
    v = verifier()
    raw = token()
    first = v.verify(raw)
    assert v.cached(raw) is first
    assert v.cached_header(b"Bearer " + raw.encode()) is first
    assert v.verify(raw) is first


def test_a_cache_hit_is_served_only_while_its_kid_is_trusted() -> None:
    v = verifier()
    raw = token()
    v.verify(raw)
    # The issuer's snapshot of trusted kids no longer holds the token's kid: a static key set
    # cannot vouch for it again, so the hit is refused on both lookups.
    v._issuers[ISSUER].trusted = (frozenset({"another-kid"}), math.inf)
    assert v.cached(raw) is None
    assert v.cached_header(b"Bearer " + raw.encode()) is None


def test_a_cache_hit_is_not_served_after_its_trust_expires() -> None:
    v = verifier()
    raw = token()
    v.verify(raw)
    v._issuers[ISSUER].trusted = (frozenset({KEY.kid}), NOW)  # stale at NOW
    assert v.cached(raw) is None
    assert v.cached_header(b"Bearer " + raw.encode()) is None


def test_a_revoked_kid_ends_cache_hits_and_verification() -> None:
    v = verifier()
    raw = token()
    v.verify(raw)
    v.revoke_kid(ISSUER, KEY.kid)
    assert v.cached(raw) is None
    assert v.cached_header(b"Bearer " + raw.encode()) is None
    with pytest.raises(InvalidToken) as caught:
        v.verify(raw)
    assert caught.value.reason == "key_revoked"
    other = JWK.generate("ES256")
    v2 = verifier(keys=KeySet.of(KEY, other))
    v2.verify(raw)
    v2.revoke_kid(ISSUER, other.kid)
    assert v2.cached(raw) is not None  # another kid's revocation leaves this token alone


def test_no_cache_means_every_token_is_verified() -> None:
    v = verifier(cache_size=0)
    raw = token()
    assert v.cache is None
    assert v.verify(raw).sub == "alice"
    assert v.cached(raw) is None
    assert v.cached_header(b"Bearer " + raw.encode()) is None


def test_cached_refuses_a_non_string_token() -> None:
    with pytest.raises(InvalidToken):
        verifier().cached(b"abc")  # type: ignore[arg-type]


def _token_of_length(length: int) -> str:
    """A valid token of exactly ``length`` characters (a padding claim sets the size)."""
    pad = (length - len(token())) * 3 // 4
    for size in range(pad - 24, pad + 8):
        candidate = token(pad="x" * size)
        if len(candidate) == length:
            return candidate
    raise AssertionError(f"no token of length {length}")


def test_the_default_token_size_cap_is_16_kib_at_its_edge() -> None:
    at_cap = _token_of_length(16 * 1024)
    assert verifier().verify(at_cap).sub == "alice"
    over = next(t for t in (_try_length(n) for n in range(16 * 1024 + 1, 16 * 1024 + 4)) if t)
    with pytest.raises(InvalidToken) as caught:
        verifier().verify(over)
    assert caught.value.reason == "malformed"


def _try_length(length: int) -> str | None:
    try:
        return _token_of_length(length)
    except AssertionError:
        return None


def test_claims_need_an_exp_even_when_required_claims_leave_it_out() -> None:
    # AccessTokenClaims.exp is a number: a token without exp never reaches the application.
    relaxed = verifier(required_claims=("iss", "aud", "sub"))
    with pytest.raises(InvalidToken) as caught:
        relaxed.verify(token(exp=None))
    assert caught.value.reason == "missing_claim"


def test_an_absent_optional_subject_reads_as_empty() -> None:
    got = verifier(required_claims=("iss", "exp", "aud")).verify(token(sub=None))
    assert got.sub == ""


def test_the_issuers_are_kept_in_configuration_order() -> None:
    second = TrustedIssuer("https://as2.example", keys=KeySet.of(KEY))
    both = AccessTokenVerifier(
        ISSUER, keys=KeySet.of(KEY), trusted_issuers=[second], audience=AUDIENCE
    )
    assert both.issuers == (ISSUER, "https://as2.example")
    assert both.audience == AUDIENCE


def test_keys_without_an_issuer_are_refused_even_beside_trusted_issuers() -> None:
    others = [TrustedIssuer("https://as2.example", keys=KeySet.of(KEY))]
    with pytest.raises(ValueError):
        AccessTokenVerifier(audience=AUDIENCE, keys=KeySet.of(KEY), trusted_issuers=others)
    with pytest.raises(ValueError):
        AccessTokenVerifier(
            audience=AUDIENCE, jwks_uri="https://as.example/j", trusted_issuers=others
        )


def test_a_configured_jwks_uri_is_the_one_fetched() -> None:
    with AccessTokenVerifier(ISSUER, jwks_uri="https://as.example/keys", audience=AUDIENCE) as v:
        assert v._issuers[ISSUER].keys.jwks_uri == "https://as.example/keys"  # type: ignore[union-attr]
    with AccessTokenVerifier(ISSUER, audience=AUDIENCE) as v:
        assert v._issuers[ISSUER].keys.jwks_uri is None  # type: ignore[union-attr]  # discovered later


@pytest.mark.parametrize("iss", [["https://as.example"], {"a": 1}])
def test_an_unhashable_issuer_is_refused_as_untrusted(iss: object) -> None:
    with pytest.raises(InvalidToken) as caught:
        verifier().verify(token(iss=iss))
    assert caught.value.reason == "invalid_issuer"


def test_a_token_exactly_at_the_size_cap_is_served_from_the_cache() -> None:
    raw = token()
    v = verifier(max_token_size=len(raw))
    first = v.verify(raw)
    assert v.cached(raw) is first


def test_a_put_that_races_a_revocation_is_not_served() -> None:
    # revoke_kid evicts the kid's tokens, but a verification finishing at the same moment may put
    # one back: both lookups must check the revocation list again.
    v = verifier()
    raw = token()
    claims_of_raw = v.verify(raw)
    v.revoke_kid(ISSUER, KEY.kid)
    assert v.cache is not None
    v.cache.put(
        raw.encode(), claims_of_raw, expires_at=NOW + 600, issuer=ISSUER, kid=KEY.kid, now=NOW
    )
    assert v.cached_header(b"Bearer " + raw.encode()) is None
    assert v.cached(raw) is None
