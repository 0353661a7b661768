"""Review of the lock-free verified-token cache hit path: each finding pinned by a test.

The hit path (``VerifiedTokenCache.get``, ``AccessTokenVerifier.cached`` / ``cached_header``,
the Starlette ``cached_claims``) must answer exactly as a full verification would, or send the
request down the full path: never accept what the full path refuses, never turn a refusal or
an outage into a 500.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.hashes import SHA256
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sealring.jose.algorithms import ALGORITHMS, CURVES, _der_prefixes, _der_signature
from sealring.jose.errors import InvalidSignature
from sealring.jose.jwks import KeySet
from sealring.resource import (
    AccessTokenVerifier,
    InvalidToken,
    JWKSClient,
    JWKSSettings,
    TrustedIssuer,
)
from sealring.resource import verifier as verifier_module
from sealring.resource.cache import KEY_CHARS, VerifiedTokenCache, entry_cost
from sealring.resource.example_api import create_app
from sealring.resource.integrations.starlette import requires_token

from .conftest import AUDIENCE, T0, FakeClock, IssuerServer, mint, new_key
from .conftest import Route as IssuerRoute

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads often, so that the lock-free reads interleave with the writers."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _decorated_app(verifier: AccessTokenVerifier) -> Starlette:
    @requires_token(verifier=verifier)
    async def hello(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/api/hello", hello)])


def _check_invariants(cache: VerifiedTokenCache[Any]) -> None:
    """The byte count is the sum of the entries' costs; the index names exactly the entries."""
    entries = dict(cache._entries)
    assert cache.estimated_bytes == sum(entry_cost(e.token) for e in entries.values())
    assert cache.estimated_bytes <= cache.max_bytes
    assert len(entries) <= cache.max_entries
    indexed = {key: by for by, keys in cache._by_key.items() for key in keys}
    assert sum(len(keys) for keys in cache._by_key.values()) == len(indexed)  # one set per key
    assert all(keys for keys in cache._by_key.values())  # no empty sets left behind
    assert indexed == {key: (e.issuer, e.kid) for key, e in entries.items()}
    assert all(key == e.token[-KEY_CHARS:] for key, e in entries.items())


# -- Finding 1: an unusable key set on a cache hit was a 500, not a 503 ----------------------


@pytest.mark.parametrize("app", ["middleware", "decorator"])
def test_an_unusable_key_set_on_a_cache_hit_is_503_not_500(
    issuer_server: IssuerServer, clock: FakeClock, key: Any, app: str
) -> None:
    # The key set went stale, its refetch failed and stale-if-error is over: the issuer's keys
    # cannot be had. The hit path asked the JWKS client, whose lookup raised KeySetUnavailable
    # out of cached_claims, outside the middleware's (and the decorator's) error handling.
    issuer_server.publish(key, max_age=300)
    verifier = AccessTokenVerifier(
        issuer_server.issuer,
        audience=AUDIENCE,
        clock=clock,
        jwks_settings=JWKSSettings(stale_if_error=0),
    )
    token = mint(key, issuer=issuer_server.issuer, lifetime=3600)
    header = {"Authorization": f"Bearer {token}"}
    asgi = create_app(verifier) if app == "middleware" else _decorated_app(verifier)
    with verifier, TestClient(asgi, raise_server_exceptions=False) as client:
        assert client.get("/api/hello", headers=header).status_code == 200  # now cached
        clock.advance(300)
        issuer_server.routes["/jwks"] = IssuerRoute(500, b"{}")
        for _ in range(3):  # the first fails the fetch; the others fall within its cooldown
            response = client.get("/api/hello", headers=header)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "30"
        # The no-I/O lookups answer "not from the cache" instead of raising.
        assert verifier.cached(token) is None
        assert verifier.cached_header(b"Bearer " + token.encode()) is None
        issuer_server.publish(key, max_age=300)
        clock.advance(30)  # past the cooldown: the keys come back, so does the token
        assert client.get("/api/hello", headers=header).status_code == 200


# -- Finding 2: a fetch racing the trust snapshot left the old kids trusted -------------------


def test_a_fetch_racing_the_trust_snapshot_does_not_keep_removed_kids_trusted(
    issuer_server: IssuerServer, clock: FakeClock, key: Any
) -> None:
    issuer_server.publish(key, max_age=300)
    verifier = AccessTokenVerifier(issuer_server.issuer, audience=AUDIENCE, clock=clock)
    client = verifier._issuers[issuer_server.issuer].keys
    assert isinstance(client, JWKSClient)
    token = mint(key, issuer=issuer_server.issuer, lifetime=3600)
    claims = verifier.verify(token)
    k2 = new_key("ES256", kid="k2")
    read_snapshot = client.fresh_kids

    def fetch_lands_after_the_read() -> tuple[frozenset[str], float] | None:
        snapshot = read_snapshot()
        client.fresh_kids = read_snapshot  # type: ignore[method-assign]
        issuer_server.publish(k2, max_age=300)  # another thread's fetch: k1 has left the set
        client.refresh()
        return snapshot

    client.fresh_kids = fetch_lands_after_the_read  # type: ignore[method-assign]
    with verifier:
        verifier.cached(token)  # began before the fetch: either answer is fine for this one
        assert client.fresh_kids is read_snapshot
        # A verification that got the old key set before the fetch puts its token now (the
        # race the hit path's re-checks exist for): it must not be served on the old snapshot.
        assert verifier.cache is not None
        verifier.cache.put(
            token.encode(), claims, expires_at=claims.exp, issuer=claims.iss, kid="k1", now=T0
        )
        assert verifier.cached_header(b"Bearer " + token.encode()) is None
        assert verifier.cached(token) is None
        with pytest.raises(InvalidToken):
            verifier.verify(token)


def test_fresh_kids_never_pairs_old_keys_with_a_new_deadline(
    issuer_server: IssuerServer, clock: FakeClock, key: Any
) -> None:
    # A fetch writes the keys, then the deadline. A reader that read the keys first could see
    # the old keys and then the new (later) deadline: a snapshot trusting removed kids longer.
    issuer_server.publish(key, max_age=300)
    with JWKSClient(issuer=issuer_server.issuer, clock=clock) as client:
        client.get_key_set()
        issuer_server.publish(new_key("ES256", kid="k2"), max_age=3000)
        state = client._cache
        armed = [True]

        class FetchBetweenReads(type(state)):  # type: ignore[misc]
            def __getattribute__(self, name: str) -> Any:
                value = object.__getattribute__(self, name)
                if name in ("keys", "fresh_until") and armed[0]:
                    armed[0] = False
                    client.refresh()  # lands right after this first read
                return value

        state.__class__ = FetchBetweenReads
        snapshot = client.fresh_kids()
        state.__class__ = FetchBetweenReads.__mro__[1]
    assert not armed[0]
    assert snapshot is not None
    assert snapshot != (frozenset({"k1"}), T0 + 3000)
    assert snapshot in ((frozenset({"k1"}), T0 + 300), (frozenset({"k2"}), T0 + 300))


# -- Finding 3: a kid bound to another key kept serving its former key's tokens ---------------


def test_a_kid_bound_to_another_key_evicts_the_tokens_of_its_former_key(
    issuer_server: IssuerServer, clock: FakeClock
) -> None:
    old, new = new_key("ES256", kid="k1"), new_key("ES256", kid="k1")
    other = new_key("ES256", kid="k2")
    issuer_server.publish(old, other, max_age=300)
    with AccessTokenVerifier(issuer_server.issuer, audience=AUDIENCE, clock=clock) as verifier:
        stale = mint(old, issuer=issuer_server.issuer, lifetime=3600)
        kept = mint(other, issuer=issuer_server.issuer, lifetime=3600)
        verifier.verify(stale)
        verifier.verify(kept)
        issuer_server.publish(new, other, max_age=300)  # the operator re-keys k1, same kid
        clock.advance(300)
        verifier.verify(mint(new, issuer=issuer_server.issuer, now=clock.now))  # refetches
        assert verifier.cached(stale) is None
        assert verifier.cached_header(b"Bearer " + stale.encode()) is None
        assert verifier.cached(kept) is not None  # an unchanged key keeps its tokens
        with pytest.raises(InvalidToken) as info:
            verifier.verify(stale)  # what the full path says
        assert info.value.reason == "bad_signature"


# -- Residual of the review, closed: a key set replaced during a verification ---------------


@pytest.mark.parametrize("change", ["re-keyed", "removed"])
def test_a_key_set_replaced_during_verification_does_not_vouch_for_the_put(
    issuer_server: IssuerServer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The fetch and its listener land after the key was selected and before the put: the
    listener finds nothing to evict yet, so the verifier must take the entry back itself."""
    old = new_key("ES256", kid="k1")
    issuer_server.publish(old, max_age=300)
    verifier = AccessTokenVerifier(issuer_server.issuer, audience=AUDIENCE, clock=clock)
    client = verifier._issuers[issuer_server.issuer].keys
    assert isinstance(client, JWKSClient)
    token = mint(old, issuer=issuer_server.issuer, lifetime=3600)
    verifier.verify(mint(old, issuer=issuer_server.issuer, lifetime=3600))  # keys fetched
    real = verifier_module.verify_signature

    def fetch_midway(jws: Any, key: Any, alg: str) -> None:
        real(jws, key, alg)  # the old key's signature is good...
        replacement = new_key("ES256", kid="k1" if change == "re-keyed" else "k2")
        issuer_server.publish(replacement, max_age=300)
        client.refresh()  # ...but the set it came from is replaced before the put

    monkeypatch.setattr(verifier_module, "verify_signature", fetch_midway)
    with verifier:
        assert verifier.verify(token).kid == "k1"  # verified against the set it was given
        assert verifier.cached(token) is None
        assert verifier.cached_header(b"Bearer " + token.encode()) is None
        monkeypatch.setattr(verifier_module, "verify_signature", real)
        with pytest.raises(InvalidToken):
            verifier.verify(token)  # what the full path says now


def test_cache_discard() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    token = b"t" * 40
    cache.put(token, 1, expires_at=100, issuer="i", kid="k", now=0)
    assert not cache.discard(b"u" + token[1:])  # same tail, other token: untouched
    assert cache.get(token, 0) == 1
    assert cache.discard(token)
    assert not cache.discard(token)
    assert cache.get(token, 0) is None
    assert cache.estimated_bytes == 0


# -- Checked and sound: pinned so that it stays so --------------------------------------------


def test_header_tricks_never_hit_and_never_raise(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, key: Any
) -> None:
    token = mint(key, issuer=issuer_server.issuer)
    raw = token.encode()
    claims = verifier.verify(token)
    assert verifier.cached_header(b"bEARER " + raw) is claims
    for header in (
        b" Bearer " + raw,
        b"Bearer\t" + raw,
        b"Bearer\xa0" + raw,
        b"Bearer " + raw + b"\x00",
        b"Bearer " + raw + b"\r\n",
        b"Bearer " + raw.upper(),
        b"Bearer " + raw[:-1] + b"\xff",
        b"Bearer " + raw[:-KEY_CHARS],  # the head without the tail
        b"Bearer " + raw[-KEY_CHARS:],  # the tail alone
        b"Bearer " + raw[-KEY_CHARS + 1 :],
        b"Bearer " + raw + raw,
        b"B\xc3\xa9arer " + raw,
        b"Bearer \xc3\xa9" + raw[2:],
        raw[:7] + raw,
        b"Bearer",
        b"x" * 7,
    ):
        assert verifier.cached_header(header) is None, header
    for text in (
        token.upper(),
        token[:-1],
        token + "\u0000",
        " " + token,
        token.replace(".", "\uff0e"),
        "\ud800" + token,
        token[:-KEY_CHARS],
    ):
        assert verifier.cached(text) is None, text
    for wrong in (raw, bytearray(raw), memoryview(raw), None, 1):
        with pytest.raises(InvalidToken):
            verifier.cached(wrong)  # type: ignore[arg-type]


def test_repeated_or_oddly_named_authorization_headers_go_down_the_full_path(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, key: Any
) -> None:
    token = mint(key, issuer=issuer_server.issuer)
    bearer = f"Bearer {token}"
    for asgi in (create_app(verifier), _decorated_app(verifier)):
        with TestClient(asgi, raise_server_exceptions=False) as client:
            assert client.get("/api/hello", headers={"Authorization": bearer}).status_code == 200
            # Cached now; a second header (even an identical one) is still a 400.
            for second in (bearer, "Bearer x", "Basic eDp5"):
                response = client.get(
                    "/api/hello", headers=[("Authorization", bearer), ("authorization", second)]
                )
                assert response.status_code == 400, second
                assert 'error="invalid_request"' in response.headers["www-authenticate"]
            response = client.get("/api/hello", headers={"Authorization": f"Bearer {token}x"})
            assert response.status_code == 401


def test_tokens_of_two_issuers_with_the_same_kid_are_trusted_per_issuer(
    issuer_server: IssuerServer, second_issuer: IssuerServer, clock: FakeClock
) -> None:
    a_key, b_key = new_key("ES256", kid="k1"), new_key("ES256", kid="k1")
    issuer_server.publish(a_key, max_age=300)
    second_issuer.publish(b_key, max_age=3000)
    with AccessTokenVerifier(
        audience=AUDIENCE,
        trusted_issuers=[TrustedIssuer(issuer_server.issuer), TrustedIssuer(second_issuer.issuer)],
        clock=clock,
    ) as verifier:
        a = mint(a_key, issuer=issuer_server.issuer, lifetime=3600)
        b = mint(b_key, issuer=second_issuer.issuer, lifetime=3600)
        verifier.verify(a)
        verifier.verify(b)
        assert verifier.cached(a) is not None
        assert verifier.cached(b) is not None
        # Issuer A drops k1; issuer B's k1 is another key and stays.
        issuer_server.publish(new_key("ES256", kid="k2"), max_age=300)
        clock.advance(300)
        assert verifier.cached(a) is None  # A's set is due: the full path decides
        with pytest.raises(InvalidToken):
            verifier.verify(a)
        assert verifier.cached(a) is None
        assert verifier.cached_header(b"Bearer " + b.encode()) is not None
        # Revoking A's k1 leaves B's k1 alone.
        verifier.revoke_kid(issuer_server.issuer, "k1")
        assert verifier.cached(b) is not None
        verifier.revoke_kid(second_issuer.issuer, "k1")
        assert verifier.cached(b) is None
        assert verifier.cached_header(b"Bearer " + b.encode()) is None


def test_expiry_on_the_hit_path_is_exact_and_the_full_path_applies_leeway(
    clock: FakeClock, key: Any
) -> None:
    verifier = AccessTokenVerifier(
        "https://as.example", audience=AUDIENCE, keys=KeySet.of(key), clock=clock, leeway=30
    )
    token = mint(key, issuer="https://as.example", lifetime=60)
    verifier.verify(token)
    header = b"Bearer " + token.encode()
    clock.now = T0 + 60 - 1e-6
    assert verifier.cached_header(header) is not None
    clock.now = T0 + 60
    assert verifier.cached_header(header) is None
    assert verifier.cache is not None
    assert len(verifier.cache) == 0  # dropped
    clock.now = T0 + 89
    assert verifier.verify(token).sub == "client-1"  # within leeway, re-verified...
    assert verifier.cached(token) is None  # ...but not cached past exp
    clock.now = T0 + 90
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_byte_count_holds_on_every_removal_path() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(max_entries=3, max_bytes=10_000)
    tail = b"T" * KEY_CHARS
    a, b = b"a." + tail, b"bb." + tail
    cache.put(a, 1, expires_at=100, issuer="i", kid="ka", now=0)
    cache.put(a, 2, expires_at=100, issuer="i", kid="ka", now=0)  # the same token again
    _check_invariants(cache)
    cache.put(b, 3, expires_at=100, issuer="i", kid="kb", now=0)  # replaces a (shared tail)
    _check_invariants(cache)
    assert cache.evict_kid("i", "ka") == 0  # a's index record went with it
    assert cache.estimated_bytes == entry_cost(b)
    assert cache.get(b, 100) is None  # expired on a lookup
    _check_invariants(cache)
    assert cache.estimated_bytes == 0
    cache.put(b, 3, expires_at=100, issuer="i", kid="kb", now=0)
    cache.put(b"x" * 2000, 4, expires_at=100, issuer="j", kid="kb", now=0)  # byte-evicts
    cache.put(b"y" * 2000, 5, expires_at=100, issuer="j", kid="kb", now=0)
    _check_invariants(cache)
    assert cache.retain_kids("j", []) == 1
    _check_invariants(cache)
    cache.put(b"z" * 10, 6, expires_at=100, issuer="j", kid="kz", now=0)
    assert cache.get(b"z" * 10, float("nan")) is None  # dropped on a NaN clock
    _check_invariants(cache)
    cache.put(b"z" * 10, 6, expires_at=100, issuer="j", kid="kz", now=0)
    cache.clear()
    _check_invariants(cache)
    assert cache.estimated_bytes == 0


_TAIL = b"S" * KEY_CHARS
# Distinct tokens, some sharing their tail, some shorter than a tail, some large.
_TOKENS = [
    b"h1." + _TAIL,
    b"h22." + _TAIL,
    b"h333." + _TAIL,
    b"short",
    b"sh",
    b"p" * 300 + b"1" * KEY_CHARS,
    b"p" * 300 + b"2" * KEY_CHARS,
    b"L" * 900,
    b"M" * 2500,
]
_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("put"),
            st.integers(0, len(_TOKENS) - 1),
            st.sampled_from(["a", "b", "c"]),
            st.integers(0, 20),
        ),
        st.tuples(st.just("get"), st.integers(0, len(_TOKENS) - 1), st.booleans()),
        st.tuples(st.just("evict"), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("retain"), st.sets(st.sampled_from(["a", "b", "c"]))),
        st.tuples(st.just("tick"), st.integers(1, 5)),
        st.tuples(st.just("clear")),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=_OPS, max_entries=st.integers(1, 5), max_bytes=st.integers(600, 12_000))
def test_random_operations_keep_the_cache_sound(
    ops: list[tuple[Any, ...]], max_entries: int, max_bytes: int
) -> None:
    """A hit only ever returns the value last put for exactly those bytes, still valid and
    not evicted by its kid; the byte count and index stay exact whatever the sequence."""
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(max_entries, max_bytes)
    alive: dict[bytes, tuple[int, float, str]] = {}
    now, serial = 0.0, 0
    for op in ops:
        if op[0] == "put":
            token, kid, lifetime = _TOKENS[op[1]], op[2], op[3]
            serial += 1
            cache.put(token, serial, expires_at=now + lifetime, issuer="i", kid=kid, now=now)
            if lifetime > 0 and entry_cost(token) <= max_bytes:
                alive[token] = (serial, now + lifetime, kid)
        elif op[0] == "get":
            token = _TOKENS[op[1]]
            got = cache.get(b"Bearer " + token, now, 7) if op[2] else cache.get(token, now)
            if got is not None:
                assert token in alive
                value, expires_at, _ = alive[token]
                assert got == value
                assert now < expires_at
        elif op[0] == "evict":
            cache.evict_kid("i", op[1])
            alive = {t: v for t, v in alive.items() if v[2] != op[1]}
        elif op[0] == "retain":
            cache.retain_kids("i", op[1])
            alive = {t: v for t, v in alive.items() if v[2] in op[1]}
        elif op[0] == "tick":
            now += op[1]
        else:
            cache.clear()
            alive.clear()
        _check_invariants(cache)


def test_concurrent_writers_and_lock_free_readers(fast_switching: None) -> None:
    """Readers never get another token's value; the counts are exact once the writers stop."""
    cache: VerifiedTokenCache[bytes] = VerifiedTokenCache(max_entries=8, max_bytes=20_000)
    tokens = [b"%03d." % i + _TAIL for i in range(6)] + [b"t%02d" % i * 20 for i in range(10)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(body: Any) -> None:
        try:
            rng = random.Random()
            while not stop.is_set():
                body(rng)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def reader(rng: random.Random) -> None:
        token = rng.choice(tokens)
        got = cache.get(b"Bearer " + token, 1.0, 7) if rng.random() < 0.5 else cache.get(token, 1.0)
        assert got is None or got == token

    def writer(rng: random.Random) -> None:
        token = rng.choice(tokens)
        kid = rng.choice("abc")
        cache.put(token, token, expires_at=rng.choice((1.0, 2.0)), issuer="i", kid=kid, now=0)

    def evictor(rng: random.Random) -> None:
        if rng.random() < 0.5:
            cache.evict_kid("i", rng.choice("abc"))
        else:
            cache.retain_kids("i", rng.sample("abc", 2))

    threads = [threading.Thread(target=run, args=(f,)) for f in (reader, reader, writer, evictor)]
    for thread in threads:
        thread.start()
    time.sleep(0.4)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    _check_invariants(cache)


def test_no_hit_once_revoke_kid_has_returned(
    verifier: AccessTokenVerifier, issuer_server: IssuerServer, key: Any, fast_switching: None
) -> None:
    """Hits race revoke_kid and racing puts; none is served after revoke_kid returned."""
    token = mint(key, issuer=issuer_server.issuer, lifetime=3600)
    claims = verifier.verify(token)
    header = b"Bearer " + token.encode()
    cache = verifier.cache
    assert cache is not None
    revoked, stop = threading.Event(), threading.Event()
    late: list[str] = []

    def hits() -> None:
        while not stop.is_set():
            after = revoked.is_set()
            if verifier.cached_header(header) is not None and after:
                late.append("cached_header")
            after = revoked.is_set()
            if verifier.cached(token) is not None and after:
                late.append("cached")

    def racing_puts() -> None:  # verifications that passed their revocation check just before
        while not stop.is_set():
            cache.put(
                token.encode(), claims, expires_at=claims.exp, issuer=claims.iss, kid="k1", now=T0
            )

    threads = [threading.Thread(target=f) for f in (hits, hits, racing_puts)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    verifier.revoke_kid(issuer_server.issuer, "k1")
    revoked.set()
    time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join()
    assert not late, late[:5]


# -- ECDSA: the DER fast path -------------------------------------------------------------


@pytest.mark.parametrize("crv", sorted(CURVES))
def test_der_fast_path_is_the_canonical_encoding(crv: str) -> None:
    """The precomputed headers give the encoding cryptography's own encoder gives, for every
    pair of leading octets the fast path takes (neither zero)."""
    size = CURVES[crv].size
    rng = random.Random(crv)
    for r0 in range(1, 256):
        for s0 in (1, 0x7F, 0x80, 0xFF, r0):
            r = bytes((r0,)) + rng.randbytes(size - 1)
            s = bytes((s0,)) + rng.randbytes(size - 1)
            outer, r_tag, s_tag = _der_prefixes(size, r0 >> 7, s0 >> 7)
            fast = b"".join((outer, r_tag, r, s_tag, s))
            expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            assert fast == expected == _der_signature(r, s), (r0, s0)
    # The slow path (a leading zero octet) also matches.
    for r, s in ((b"\0" * (size - 1) + b"\x01", b"\x80" + b"\0" * (size - 1)),):
        assert _der_signature(r, s) == encode_dss_signature(
            int.from_bytes(r, "big"), int.from_bytes(s, "big")
        )


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_ecdsa_verify_agrees_with_cryptography(alg: str) -> None:
    """Valid, malleated (n - s), bit-flipped and out-of-range signatures: accepted exactly when
    cryptography accepts the same (r, s)."""
    algorithm = ALGORITHMS[alg]
    curve = CURVES[algorithm.crv or ""]
    size, order = curve.size, curve.order
    private = ec.generate_private_key(curve.curve)
    verify = algorithm.bind(private.public_key())
    rng = random.Random(alg)
    seen_tops: set[tuple[bool, bool]] = set()
    for i in range(60):
        data = b"message %d" % i
        raw = algorithm.sign(private, data)
        r = int.from_bytes(raw[:size], "big")
        s = int.from_bytes(raw[size:], "big")
        assert (r, s) == decode_dss_signature(encode_dss_signature(r, s))
        candidates = [
            (r, s, True),
            (r, order - s, True),  # ECDSA malleability: cryptography accepts it, so do we
            (r, s ^ (1 << rng.randrange(8 * size - 8)), False),
            (r ^ (1 << rng.randrange(8 * size - 8)), s, False),
            (r + order, s, False) if r + order < 256**size else (r, s + 1, False),
            (r, 0, False),
            (0, s, False),
        ]
        for cr, cs, _ in candidates:
            signature = cr.to_bytes(size, "big") + cs.to_bytes(size, "big")
            seen_tops.add((signature[0] >= 0x80, signature[size] >= 0x80))
            try:
                private.public_key().verify(encode_dss_signature(cr, cs), data, _ecdsa_of(alg))
                accepted_by_cryptography = 0 < cr < order and 0 < cs < order
            except CryptoInvalidSignature:
                accepted_by_cryptography = False
            try:
                verify(signature, data)
                ours = True
            except InvalidSignature:
                ours = False
            assert ours == accepted_by_cryptography, (cr, cs)
        with pytest.raises(InvalidSignature):
            verify(raw, data + b"!")
        with pytest.raises(InvalidSignature):
            verify(raw[:-1], data)
        with pytest.raises(InvalidSignature):
            verify(encode_dss_signature(r, s), data)  # DER is not a JWS signature form
    if alg != "ES512":  # P-521's top octet is 0 or 1: its top bit is never set
        assert seen_tops == {(False, False), (False, True), (True, False), (True, True)}


def _ecdsa_of(alg: str) -> ec.ECDSA:
    hash_alg = ALGORITHMS[alg].hash
    return ec.ECDSA(hash_alg if hash_alg is not None else SHA256())
