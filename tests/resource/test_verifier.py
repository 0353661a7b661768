"""AccessTokenVerifier and its verified-token cache, against keys served over real HTTP."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
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
from sealring.resource.cache import VerifiedTokenCache

from .conftest import AUDIENCE, FakeClock, IssuerServer, mint, new_key


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
    a_key = new_key("ES256", kid="shared")
    b_key = new_key("ES256", kid="shared")
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
    assert reason(verifier, token) == "unknown_kid"
    assert verifier.cache is not None
    assert len(verifier.cache) == 0


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
            assert (await v.averify(token)).sub == "client-1"

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


def test_cache_lru_bound() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(3)
    for i in range(5):
        cache.put(f"t{i}", i, expires_at=100, issuer="i", kid="k", now=0)
    assert len(cache) == 3
    assert cache.get("t0", 0) is None
    assert cache.get("t2", 0) == 2
    cache.put("t5", 5, expires_at=100, issuer="i", kid="k2", now=0)
    assert cache.get("t3", 0) is None  # t2 was used more recently than t3
    assert cache.retain_kids("i", ["k2"]) == 2
    assert len(cache) == 1
    cache.put("old", 1, expires_at=10, issuer="i", kid="k", now=10)
    assert cache.get("old", 0) is None
    with pytest.raises(ValueError):
        VerifiedTokenCache(0)
