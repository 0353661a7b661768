"""AccessTokenVerifier and its verified-token cache, against keys served over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sealring.errors import SealringError
from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
from sealring.jose.jws import LocalSigner, sign_compact
from sealring.jose.jwt import encode_jwt
from sealring.resource import (
    AccessTokenVerifier,
    AsyncJWKSClient,
    InsufficientScope,
    InvalidToken,
    JWKSClient,
    JWKSError,
    TrustedIssuer,
)
from sealring.resource import verifier as verifier_module
from tests.helpers.clock import T0, FakeClock
from tests.helpers.issuer import IssuerServer
from tests.helpers.tokens import AUDIENCE, mint, new_key
from tests.helpers.waiting import eventually

ISSUER = "https://as.example"


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts full verifications (cache misses)."""
    calls: list[str] = []
    real = verifier_module.verify_signature

    def counting(jws, key, alg):  # type: ignore[no-untyped-def]
        calls.append(key.kid)
        return real(jws, key, alg)

    monkeypatch.setattr(verifier_module, "verify_signature", counting)
    return calls


def reason(verifier: AccessTokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    return info.value.reason


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA", "ES384"])
def test_valid_token(issuer_server: IssuerServer, clock: FakeClock, alg: str) -> None:
    key = new_key(alg)
    issuer_server.publish(key)
    token = mint(key, issuer=issuer_server.issuer, scope="items:read items:write", extra="x")
    with AccessTokenVerifier(issuer_server.issuer, audience=AUDIENCE, clock=clock) as verifier:
        claims = verifier.verify(token)
    assert claims.sub == "client-1"
    assert claims.client_id == "client-1"
    assert claims.scopes == {"items:read", "items:write"}
    assert claims.aud == (AUDIENCE,)
    assert claims.iss == issuer_server.issuer
    assert claims.kid == key.kid
    assert claims.raw["extra"] == "x"
    assert claims.has_scopes(["items:read"])
    with pytest.raises(InsufficientScope) as info:
        claims.require_scopes(["admin"])
    assert 'scope="admin"' in info.value.challenge("api")


def test_rfc9068_profile(verifier: AccessTokenVerifier, issuer_server: IssuerServer, key) -> None:
    iss = issuer_server.issuer
    assert reason(verifier, mint(key, issuer=iss, typ="JWT")) == "invalid_type"
    assert reason(verifier, mint(key, issuer=iss, typ=None)) == "invalid_type"
    assert reason(verifier, mint(key, issuer=iss, audience="https://other")) == "invalid_audience"
    assert reason(verifier, mint(key, issuer=iss, client_id=None)) in (
        "missing_claim",
        "invalid_claim",
    )
    assert reason(verifier, mint(key, issuer=iss, now=0)) == "token_expired"
    assert reason(verifier, mint(key, issuer=iss, now=2e9)) == "token_not_yet_valid"
    assert reason(verifier, "not-a-token") == "malformed"
    token = mint(key, issuer=iss)
    head, _body, sig = token.split(".")
    forged = mint(key, issuer=iss, scope="admin").split(".")[1]
    assert reason(verifier, f"{head}.{forged}.{sig}") == "bad_signature"


def test_leeway(issuer_server: IssuerServer, clock: FakeClock, key) -> None:
    issuer_server.publish(key)
    token = mint(key, issuer=issuer_server.issuer, lifetime=10)
    with AccessTokenVerifier(
        issuer_server.issuer, audience=AUDIENCE, clock=clock, cache_size=None
    ) as verifier:
        clock.advance(10 + 29)
        verifier.verify(token)
        clock.advance(2)
        assert reason(verifier, token) == "token_expired"


def test_untrusted_issuer_is_refused_without_io(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, key
) -> None:
    token = mint(key, issuer="http://127.0.0.1:1/evil", jku="http://127.0.0.1:1/jwks")
    assert reason(verifier, token) == "invalid_issuer"
    assert issuer_server.seen == []


def test_unknown_kid_flood_is_bounded_by_the_cooldown(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    attacker = new_key("ES256")
    verifier.verify(mint(key, issuer=issuer_server.issuer))
    tokens = [_with_kid(attacker, issuer_server.issuer) for _ in range(1000)]
    for token in tokens:  # 1,000 random kids over 100 s
        assert reason(verifier, token) == "unknown_kid"
        clock.advance(0.1)
    fetch_times = [s for s in issuer_server.jwks_fetches()]
    # the first fetch, then at most one per 30 s cooldown: 100 s -> at most 3 more
    assert 2 <= len(fetch_times) <= 1 + 4


def _with_kid(key, issuer: str) -> str:  # type: ignore[no-untyped-def]
    renamed = JWK.from_key(key.private_key(), alg="ES256", kid=secrets.token_hex(8))
    return mint(renamed, issuer=issuer)


def test_cross_issuer_kid_confusion(
    issuer_server: IssuerServer, second_issuer: IssuerServer, clock: FakeClock
) -> None:
    a_key = new_key("ES256", kid="same-kid")
    b_key = new_key("ES256", kid="same-kid")
    b_only = new_key("ES256", kid="b-only")
    issuer_server.publish(a_key)
    second_issuer.publish(b_key, b_only)
    verifier = AccessTokenVerifier(
        audience=AUDIENCE,
        trusted_issuers=[TrustedIssuer(issuer_server.issuer), TrustedIssuer(second_issuer.issuer)],
        clock=clock,
    )
    with verifier:
        assert verifier.verify(mint(a_key, issuer=issuer_server.issuer)).iss == issuer_server.issuer
        assert verifier.verify(mint(b_only, issuer=second_issuer.issuer)).kid == "b-only"
        # B's keys never verify a token that claims to come from A, whatever its kid says
        assert reason(verifier, mint(b_key, issuer=issuer_server.issuer)) == "bad_signature"
        assert reason(verifier, mint(b_only, issuer=issuer_server.issuer)) == "unknown_kid"
        assert reason(verifier, mint(a_key, issuer=second_issuer.issuer)) == "bad_signature"


def test_cache_hit_skips_verification(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, key, signature_checks: list[str]
) -> None:
    token = mint(key, issuer=issuer_server.issuer)
    first = verifier.verify(token)
    for _ in range(10):
        assert verifier.verify(token) is first
    assert len(signature_checks) == 1


def test_cache_entry_expires_exactly_at_exp(
    issuer_server: IssuerServer, clock: FakeClock, key, signature_checks: list[str]
) -> None:
    issuer_server.publish(key, max_age=86400)
    token = mint(key, issuer=issuer_server.issuer, lifetime=600)
    with AccessTokenVerifier(
        issuer_server.issuer, audience=AUDIENCE, clock=clock, leeway=0
    ) as verifier:
        verifier.verify(token)
        clock.now = 1_800_000_600 - 0.001
        verifier.verify(token)
        assert len(signature_checks) == 1
        clock.now = 1_800_000_600.0
        assert reason(verifier, token) == "token_expired"
        assert len(signature_checks) == 2
        assert verifier.cache is not None
        assert len(verifier.cache) == 0


def test_expired_but_within_leeway_is_not_cached(
    verifier: AccessTokenVerifier,
    issuer_server: IssuerServer,
    clock: FakeClock,
    key,
    signature_checks,
) -> None:
    token = mint(key, issuer=issuer_server.issuer, lifetime=60)
    clock.advance(70)  # past exp, inside the 30 s leeway
    verifier.verify(token)
    verifier.verify(token)
    assert len(signature_checks) == 2


def test_kid_removed_from_key_set_evicts_cached_tokens(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    token = mint(key, issuer=issuer_server.issuer, lifetime=3600)
    verifier.verify(token)
    k2 = new_key("ES256", kid="k2")
    issuer_server.publish(k2, max_age=300)
    clock.advance(299)
    verifier.verify(token)  # still fresh key set, still cached
    clock.advance(1)
    # Stale but usable: still served while the background refresh brings the set without k1,
    # whose arrival evicts the token.
    assert verifier.verify(token).kid == "k1"
    assert verifier.cache is not None
    cache = verifier.cache
    eventually(lambda: len(cache) == 0, what="the token of k1 evicted")
    assert reason(verifier, token) == "unknown_kid"


def test_rotation_picks_up_new_key(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    verifier.verify(mint(key, issuer=issuer_server.issuer))
    k2 = new_key("ES256", kid="k2")
    issuer_server.publish(key, k2, max_age=300)
    clock.advance(31)
    assert verifier.verify(mint(k2, issuer=issuer_server.issuer, now=clock.now)).kid == "k2"


def test_revoked_kid_evicts_and_refuses(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, key, signature_checks
) -> None:
    token = mint(key, issuer=issuer_server.issuer)
    verifier.verify(token)
    verifier.revoke_kid(issuer_server.issuer, "k1")
    assert reason(verifier, token) == "key_revoked"
    assert reason(verifier, mint(key, issuer=issuer_server.issuer)) == "key_revoked"


def test_key_set_outage_fails_closed_for_cached_tokens_too(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    token = mint(key, issuer=issuer_server.issuer, lifetime=7200)
    verifier.verify(token)
    issuer_server.stop()
    clock.advance(301)
    verifier.verify(token)  # stale-if-error
    clock.advance(3600)
    with pytest.raises(JWKSError):
        verifier.verify(token)


def test_static_key_set_and_async(clock: FakeClock) -> None:
    key = new_key("ES256")
    token = mint(key, issuer="https://as.example")
    verifier = AccessTokenVerifier(
        "https://as.example", audience=AUDIENCE, keys=KeySet.of(key), clock=clock
    )
    assert verifier.verify(token).kid == key.kid
    assert asyncio.run(verifier.averify(token)).kid == key.kid


def test_averify_with_async_and_sync_clients(
    issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    issuer_server.publish(key)
    token = mint(key, issuer=issuer_server.issuer)

    async def main() -> None:
        async with AsyncJWKSClient(issuer_server.jwks_uri, clock=clock) as client:
            v = AccessTokenVerifier(
                issuer_server.issuer, audience=AUDIENCE, keys=client, clock=clock
            )
            assert (await v.averify(token)).sub == "client-1"
            assert v.verify(mint(key, issuer=issuer_server.issuer)).sub == "client-1"
            clock.advance(301)
            # Stale but usable: answered, with the refresh scheduled on the running loop.
            assert v.verify(mint(key, issuer=issuer_server.issuer)).sub == "client-1"
            clock.advance(3600)  # past stale-if-error before that task ran: only a fetch can do
            with pytest.raises(TypeError):
                v.verify(mint(key, issuer=issuer_server.issuer))
        with JWKSClient(issuer_server.jwks_uri, clock=clock) as sync_client:
            v = AccessTokenVerifier(
                issuer_server.issuer,
                audience=AUDIENCE,
                keys=sync_client,
                clock=clock,
                cache_size=None,
            )
            fresh = mint(key, issuer=issuer_server.issuer, now=clock.now)
            assert (await v.averify(fresh)).sub == "client-1"

    asyncio.run(main())


def test_configuration_is_checked(issuer_server: IssuerServer) -> None:
    with pytest.raises(ValueError):
        AccessTokenVerifier(audience=AUDIENCE)
    with pytest.raises(ValueError):
        AccessTokenVerifier(audience=AUDIENCE, jwks_uri=issuer_server.jwks_uri)
    with pytest.raises(ValueError):
        AccessTokenVerifier(issuer_server.issuer, audience=AUDIENCE, algorithms=["HS256"])
    with pytest.raises(ValueError):
        AccessTokenVerifier(issuer_server.issuer, audience=AUDIENCE, leeway=-1)
    with pytest.raises(ValueError):
        AccessTokenVerifier(
            audience=AUDIENCE,
            trusted_issuers=[
                TrustedIssuer("https://a.example"),
                TrustedIssuer("https://a.example"),
            ],
        )
    with JWKSClient(issuer=issuer_server.issuer) as client, pytest.raises(ValueError):
        AccessTokenVerifier("https://b.example", audience=AUDIENCE, keys=client)


def test_algorithm_allow_list(issuer_server: IssuerServer, clock: FakeClock) -> None:
    key = new_key("RS256")
    issuer_server.publish(key)
    with AccessTokenVerifier(
        issuer_server.issuer, audience=AUDIENCE, algorithms=["ES256"], clock=clock
    ) as verifier:
        assert reason(verifier, mint(key, issuer=issuer_server.issuer)) == "alg_not_allowed"


# -- hostile input: only InvalidToken, never a crash ---------------------------------------


@pytest.fixture
def static_verifier(key, clock: FakeClock) -> AccessTokenVerifier:  # type: ignore[no-untyped-def]
    return AccessTokenVerifier(ISSUER, audience=AUDIENCE, keys=KeySet.of(key), clock=clock)


@pytest.mark.parametrize("token", [["a.b.c"], {"t": 1}, bytearray(b"a.b.c"), None, 3])
def test_non_string_tokens_are_invalid_token(
    static_verifier: AccessTokenVerifier, token: object
) -> None:
    # A list or bytearray must not reach the cache lookup (TypeError: unhashable).
    with pytest.raises(InvalidToken) as info:
        static_verifier.verify(token)  # type: ignore[arg-type]
    assert info.value.reason == "malformed"
    with pytest.raises(InvalidToken):
        asyncio.run(static_verifier.averify(token))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("claim", "value"),
    [("exp", 10**400), ("iat", -(10**400)), ("exp", 2**64)],
    ids=["exp-1e400", "iat--1e400", "exp-2^64"],
)
def test_huge_numeric_dates_are_invalid_token(
    static_verifier: AccessTokenVerifier,
    key,
    claim: str,
    value: int,  # type: ignore[no-untyped-def]
) -> None:
    # exp = 10**400 passed the claim checks and then crashed float() with OverflowError.
    token = mint(key, issuer=ISSUER, **{claim: value})
    with pytest.raises(InvalidToken) as info:
        static_verifier.verify(token)
    assert info.value.reason == "invalid_claim"


def test_unpaired_surrogate_in_a_claim_is_invalid_token(
    static_verifier: AccessTokenVerifier,
    key,  # type: ignore[no-untyped-def]
) -> None:
    claims = {"iss": ISSUER, "sub": "\ud800", "aud": AUDIENCE, "client_id": "c", "iat": T0}
    claims.update(exp=T0 + 60, jti="j")
    payload = json.dumps(claims).encode()  # ensure_ascii: the surrogate travels as \\ud800
    token = sign_compact(payload, LocalSigner(key), header={"typ": "at+jwt"})
    with pytest.raises(InvalidToken) as info:
        static_verifier.verify(token)
    assert info.value.reason == "malformed"


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("items:read  items:write", {"items:read", "items:write"}),
        (" items:read ", {"items:read"}),
        ("items:read\titems:write", {"items:read\titems:write"}),
        ("items:read\u00a0admin", {"items:read\u00a0admin"}),
        ("a\nb", {"a\nb"}),
    ],
)
def test_scopes_are_split_on_spaces_only(
    static_verifier: AccessTokenVerifier,
    key,
    scope: str,
    expected: set[str],  # type: ignore[no-untyped-def]
) -> None:
    # RFC 6749 §3.3: a tab or a no-break space must not split one scope into two grants.
    claims = static_verifier.verify(mint(key, issuer=ISSUER, scope=scope))
    assert claims.scopes == expected


def test_cache_hit_still_answers_for_this_verifier_only(key, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    # Two verifiers with different audiences never share entries: each owns its cache.
    keys = KeySet.of(key)
    a = AccessTokenVerifier(ISSUER, audience=AUDIENCE, keys=keys, clock=clock)
    b = AccessTokenVerifier(ISSUER, audience="https://other.example", keys=keys, clock=clock)
    token = mint(key, issuer=ISSUER)
    a.verify(token)
    assert a.cached(token) is not None
    with pytest.raises(InvalidToken) as info:
        b.verify(token)
    assert info.value.reason == "invalid_audience"
    # The cache holds the exact string: a re-encoding of the same token is not a hit.
    head, body, sig = token.split(".")
    assert a.cached(f"{head}.{body}.{sig}=") is None
    clock.now = T0 + 600
    assert a.cached(token) is None


def test_rsa_key_without_alg_verifies_only_rs256_by_default(clock: FakeClock) -> None:
    # With every algorithm allowed by default, an RSA key that declares no alg would accept
    # RS384/RS512/PS256/... too: the token header would widen what the key is bound to.
    rsa = new_key("RS256")
    bare = JWK.from_key(rsa.private_key(), kid="bare")  # no alg
    keys = KeySet.of(bare)
    default = AccessTokenVerifier(ISSUER, audience=AUDIENCE, keys=keys, clock=clock)
    explicit = AccessTokenVerifier(
        ISSUER, audience=AUDIENCE, keys=keys, algorithms=["PS256", "RS256"], clock=clock
    )

    def token(alg: str) -> str:
        claims = {"iss": ISSUER, "sub": "s", "aud": AUDIENCE, "client_id": "c", "jti": "j"}
        claims.update(iat=int(T0), exp=int(T0) + 60)
        return encode_jwt(claims, LocalSigner(bare, alg), typ="at+jwt")

    assert default.verify(token("RS256")).sub == "s"
    for alg in ("PS256", "RS512", "PS512"):
        with pytest.raises(InvalidToken) as info:
            default.verify(token(alg))
        assert info.value.reason == "alg_not_allowed"
    assert explicit.verify(token("PS256")).sub == "s"
    with pytest.raises(InvalidToken):
        explicit.verify(token("RS512"))


@pytest.mark.parametrize("algorithms", [[], "ES256", ["HS256"], ["none"]])
def test_bad_allow_lists_are_refused(key, algorithms: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        AccessTokenVerifier(ISSUER, audience=AUDIENCE, keys=KeySet.of(key), algorithms=algorithms)  # type: ignore[arg-type]


def test_a_nan_clock_never_serves_from_the_cache(key) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    verifier = AccessTokenVerifier(ISSUER, audience=AUDIENCE, keys=KeySet.of(key), clock=clock)
    token = mint(key, issuer=ISSUER)
    verifier.verify(token)
    clock.now = float("nan")
    assert verifier.cached(token) is None
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    assert info.value.reason == "token_expired"


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from([10**400, -(10**400), 2**64, "\ud800", "a\tb", T0 + 60, [], {}]),
    lambda inner: (
        # min_size=1: every extension draws from inner (Hypothesis warns when one never does)
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, min_size=1, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@example(header={}, claims={"exp": 10**400})  # the hostile values above, always tried first
@example(header={}, claims={"iat": -(10**400)})
@example(header={}, claims={"sub": "\ud800"})
@given(
    header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64", "cty"]), _JSON),
    claims=st.dictionaries(
        st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "sub", "client_id", "scope", "jti"]),
        _JSON,
    ),
)
def test_hostile_headers_and_claims_only_raise_invalid_token(
    header: dict[str, object], claims: dict[str, object]
) -> None:
    # Signed for real, so the claim checks and the claims object are reached, not just parsing.
    key = _FUZZ_KEY
    verifier = AccessTokenVerifier(
        ISSUER, audience=AUDIENCE, keys=KeySet.of(key), clock=FakeClock()
    )
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "s", "client_id": "c", "jti": "j"}
    claims = {**base, "iat": T0, "exp": T0 + 60, **claims}
    extra = {"typ": "at+jwt", **header}
    extra.pop("alg", None)
    extra.pop("kid", None)
    try:
        payload = json.dumps(claims).encode()
        token = sign_compact(payload, LocalSigner(key), header=extra)
    except (ValueError, SealringError):
        return  # not serialisable (NaN) or refused by the signer: nothing to verify
    with contextlib.suppress(InvalidToken):
        verifier.verify(token)


_FUZZ_KEY = new_key("ES256", kid="fuzz")
