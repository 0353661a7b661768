"""The verified-token cache's hit path: raw header lookups, the tail-keyed dict, the trust check.

A hit is the hot path of every protected request, so it takes shortcuts: the dict is keyed on the
token's last bytes, ASGI adapters look up the raw ``Authorization`` value, and the issuer's fresh
kids are kept as a snapshot. Each shortcut must answer exactly as a full verification would.
"""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sealring.jose.jwks import KeySet
from sealring.resource import (
    AccessTokenVerifier,
    InvalidToken,
    JWKSClient,
    JWKSSettings,
    TrustedIssuer,
)
from sealring.resource import verifier as verifier_module
from sealring.resource.cache import KEY_CHARS, entry_cost
from sealring.resource.example_api import create_app
from sealring.resource.integrations.starlette import requires_token
from tests.helpers.clock import T0, FakeClock
from tests.helpers.issuer import IssuerServer
from tests.helpers.issuer import Route as IssuerRoute
from tests.helpers.tokens import AUDIENCE, mint, new_key
from tests.helpers.waiting import eventually

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


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
    # Stale but usable: the hit is still served, and the set is refreshed in the background,
    # whose new set (without k1) evicts the token.
    assert verifier.cached_header(header) is not None
    eventually(lambda: verifier.cached_header(header) is None, what="k1 evicted")
    assert len(issuer_server.jwks_fetches()) == 2
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
        issuer_server.stop()
        # The client's key set is too old to serve (fresh 300 s, then stale-if-error 1 h) and
        # cannot be refreshed; by the verifier's clock nothing has happened.
        client_clock.advance(300 + 3600)
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


def _decorated_app(verifier: AccessTokenVerifier) -> Starlette:
    @requires_token(verifier=verifier)
    async def hello(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/api/hello", hello)])


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
        # Stale but usable: the hit is served and the set refreshed in the background, whose
        # new k1 evicts the tokens of the old one.
        assert verifier.cached(kept) is not None
        eventually(lambda: verifier.cached(stale) is None, what="the old k1's token evicted")
        verifier.verify(mint(new, issuer=issuer_server.issuer, now=clock.now))
        assert verifier.cached(stale) is None
        assert verifier.cached_header(b"Bearer " + stale.encode()) is None
        assert verifier.cached(kept) is not None  # an unchanged key keeps its tokens
        with pytest.raises(InvalidToken) as info:
            verifier.verify(stale)  # what the full path says
        assert info.value.reason == "bad_signature"


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
        # A's set is stale: served while refreshed in the background, then k1 is gone.
        assert verifier.cached(a) is not None
        eventually(lambda: verifier.cached(a) is None, what="A's k1 token evicted")
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
