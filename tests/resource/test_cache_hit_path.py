"""The verified-token cache's hit path: raw header lookups, the tail-keyed dict, the trust check.

A hit is the hot path of every protected request, so it takes shortcuts: the dict is keyed on the
token's last bytes, ASGI adapters look up the raw ``Authorization`` value, and the issuer's fresh
kids are kept as a snapshot. Each shortcut must answer exactly as a full verification would.
"""

from __future__ import annotations

import pytest

from sealring.jose.jwks import KeySet
from sealring.resource import AccessTokenVerifier, JWKSClient
from sealring.resource.cache import KEY_CHARS, VerifiedTokenCache, entry_cost

from .conftest import AUDIENCE, FakeClock, IssuerServer, mint, new_key


def test_header_lookup_answers_as_the_token_lookup(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, key
) -> None:
    token = mint(key, issuer=issuer_server.issuer)
    raw = token.encode()
    assert verifier.cached_header(b"Bearer " + raw) is None  # not verified yet
    claims = verifier.verify(token)
    for scheme in (b"Bearer ", b"bearer ", b"BEARER ", b"bEaReR "):  # RFC 7235: any case
        assert verifier.cached_header(scheme + raw) is claims
    assert verifier.cached(token) is claims
    for other in (
        b"Bearer  " + raw,  # two spaces: the full path decides
        b"Bearer " + raw + b" ",
        b"Basic " + raw,
        b"Bearer" + raw,
        raw,
        b"Bearer " + raw[:-1],
        b"Bearer x" + raw,
        b"Bearer ",
        b"",
    ):
        assert verifier.cached_header(other) is None, other
    assert verifier.cached(token + "x") is None
    assert verifier.cached("é" + token) is None  # non-ASCII: never a hit, never an error


def test_tokens_sharing_a_tail_never_answer_for_each_other() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(10)
    tail = b"T" * KEY_CHARS
    a, b = b"header-a." + tail, b"header-bb." + tail
    cache.put(a, "claims of a", expires_at=100, issuer="i", kid="k", now=0)
    assert cache.get(a, 0) == "claims of a"
    assert cache.get(b, 0) is None
    assert cache.get(b"Bearer " + b, 0, 7) is None
    assert cache.get(b"Bearer " + a, 0, 7) == "claims of a"
    assert cache.get(b"Bearer x" + a, 0, 7) is None  # same tail, one byte longer
    cache.put(b, "claims of b", expires_at=100, issuer="i", kid="k2", now=0)
    assert cache.get(a, 0) is None  # they take turns
    assert cache.get(b, 0) == "claims of b"
    assert len(cache) == 1
    assert cache.retain_kids("i", ["k"]) == 1
    assert len(cache) == 0


def test_short_tokens_are_keyed_whole() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    cache.put(b"short", 1, expires_at=100, issuer="i", kid="k", now=0)
    assert cache.get(b"short", 0) == 1
    assert cache.get(b"Bearer short", 0, 7) == 1
    assert cache.get(b"Bearer xshort", 0, 7) is None
    assert cache.get(b"hort", 0) is None


def test_expired_entry_is_dropped_by_either_lookup() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    token = b"x" * 100
    cache.put(token, 1, expires_at=100, issuer="i", kid="k", now=0)
    assert cache.get(b"Bearer " + token, 99.999, 7) == 1
    assert cache.get(b"Bearer " + token, 100, 7) is None
    assert len(cache) == 0
    cache.put(token, 1, expires_at=100, issuer="i", kid="k", now=0)
    assert cache.get(token, float("nan")) is None  # a NaN clock is a miss, never a hit
    assert len(cache) == 0


def test_key_set_change_stops_header_hits(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    token = mint(key, issuer=issuer_server.issuer, lifetime=3600)
    header = b"Bearer " + token.encode()
    verifier.verify(token)
    assert verifier.cached_header(header) is not None
    k2 = new_key("ES256", kid="k2")
    issuer_server.publish(k2, max_age=300)
    clock.advance(299)
    assert verifier.cached_header(header) is not None  # the old set is still fresh
    clock.advance(1)
    assert verifier.cached_header(header) is None  # due for refresh: the full path decides
    verifier.verify(mint(k2, issuer=issuer_server.issuer, now=clock.now))
    assert verifier.cached_header(header) is None  # k1 left the set: evicted


def test_a_put_racing_a_revocation_is_not_served(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, key
) -> None:
    token = mint(key, issuer=issuer_server.issuer)
    claims = verifier.verify(token)
    verifier.revoke_kid(issuer_server.issuer, "k1")
    assert verifier.cache is not None
    # What a verification that passed its revocation check just before revoke_kid would do:
    verifier.cache.put(
        token.encode(), claims, expires_at=claims.exp, issuer=claims.iss, kid="k1", now=0
    )
    assert verifier.cached(token) is None
    assert verifier.cached_header(b"Bearer " + token.encode()) is None


def test_a_client_with_its_own_clock_is_asked_on_every_hit(
    issuer_server: IssuerServer, key
) -> None:
    """The fresh-kids snapshot holds deadlines of the client's clock: unusable with another."""
    issuer_server.publish(key, max_age=300)
    verifier_clock, client_clock = FakeClock(), FakeClock()
    with JWKSClient(issuer=issuer_server.issuer, clock=client_clock) as client:
        verifier = AccessTokenVerifier(
            issuer_server.issuer, audience=AUDIENCE, keys=client, clock=verifier_clock
        )
        token = mint(key, issuer=issuer_server.issuer, lifetime=3600)
        verifier.verify(token)
        assert verifier.cached(token) is not None
        client_clock.advance(300)  # the client's key set is due for refresh; ours is not
        assert verifier.cached(token) is None
        assert verifier.cached_header(b"Bearer " + token.encode()) is None


def test_static_key_set_hits_until_exp(clock: FakeClock, key) -> None:
    verifier = AccessTokenVerifier(
        "https://as.example", audience=AUDIENCE, keys=KeySet.of(key), clock=clock
    )
    token = mint(key, issuer="https://as.example", lifetime=600)
    claims = verifier.verify(token)
    clock.advance(599)
    assert verifier.cached_header(b"Bearer " + token.encode()) is claims
    clock.advance(1)
    assert verifier.cached_header(b"Bearer " + token.encode()) is None
    # A kid the static set does not hold is never trusted from the cache.
    other = new_key("ES256", kid="k9")
    assert verifier.cache is not None
    forged = mint(other, issuer="https://as.example")
    verifier.cache.put(
        forged.encode(), claims, expires_at=clock.now + 60, issuer=claims.iss, kid="k9", now=0
    )
    assert verifier.cached(forged) is claims  # the entry's kid is k1, which the set holds
    verifier.cache.clear()
    assert verifier.cached(forged) is None


def test_key_set_kids() -> None:
    a, b = new_key("ES256", kid="a"), new_key("EdDSA", kid="b")
    keys = KeySet.of(a, b)
    assert keys.kids == frozenset({"a", "b"})
    assert "a" in keys
    assert "c" not in keys
    with pytest.raises(AttributeError):
        keys.kids = frozenset()  # type: ignore[misc]


def test_byte_budget_bounds_large_tokens() -> None:
    big = entry_cost(b"x" * 16384)
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(max_entries=1000, max_bytes=10 * big)
    for i in range(25):
        cache.put(b"x" * 16379 + b"%05d" % i, i, expires_at=100, issuer="i", kid="k", now=0)
    assert len(cache) == 10
    assert cache.estimated_bytes == 10 * big
    assert cache.get(b"x" * 16379 + b"%05d" % 24, 0) == 24  # the newest stay
    assert cache.get(b"x" * 16379 + b"%05d" % 14, 0) is None
    # Small tokens fill by count as before; every removal path gives its bytes back.
    small = b"s" * 100
    cache.put(small, 1, expires_at=100, issuer="i", kid="small", now=0)
    assert cache.estimated_bytes <= 10 * big
    assert cache.evict_kid("i", "small") == 1
    cache.put(small, 1, expires_at=10, issuer="i", kid="small", now=0)
    assert cache.get(small, 10) is None  # expired: dropped
    held = len(cache)
    assert held == 9  # one large entry made room for the small one
    assert cache.retain_kids("i", []) == held
    assert cache.estimated_bytes == 0
    assert len(cache) == 0
    # A token too large for the whole budget is not cached (and evicts nothing).
    cache.put(small, 1, expires_at=100, issuer="i", kid="k", now=0)
    tiny: VerifiedTokenCache[int] = VerifiedTokenCache(max_bytes=entry_cost(small))
    tiny.put(small, 1, expires_at=100, issuer="i", kid="k", now=0)
    tiny.put(small + b"!", 2, expires_at=100, issuer="i", kid="k", now=0)
    assert tiny.get(small, 0) == 1
    assert len(tiny) == 1
    with pytest.raises(ValueError, match="max_bytes"):
        VerifiedTokenCache(max_bytes=0)


def test_verifier_cache_bytes_option(clock: FakeClock, key) -> None:
    verifier = AccessTokenVerifier(
        "https://as.example",
        audience=AUDIENCE,
        keys=KeySet.of(key),
        clock=clock,
        cache_bytes=3 * entry_cost(b"x" * 600),
    )
    tokens = [mint(key, issuer="https://as.example", padding="p" * 100) for _ in range(5)]
    for token in tokens:
        verifier.verify(token)
    assert verifier.cache is not None
    assert 1 <= len(verifier.cache) < 5
    assert verifier.cache.estimated_bytes <= 3 * entry_cost(b"x" * 600)
