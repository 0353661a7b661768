"""AccessTokenVerifier over each kind of key source: a static set, JWKSClient, AsyncJWKSClient.

A token signed by a key the issuer has just published is verified after a refetch (the token's
kid asks for it, RFC 7517 §4.5 and the JWKS cooldown permitting), whichever source and whichever
of verify/averify; a cache hit trusts the issuer's fresh key-id snapshot only while it is the
current one.
"""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from sealring.jose import JWK, KeySet, LocalSigner, encode_jwt
from sealring.resource import AccessTokenVerifier, AsyncJWKSClient, JWKSClient
from sealring.resource.errors import InvalidToken

NOW = 1_800_000_000.0
ISSUER = "https://as.example"
AUDIENCE = "https://api.example"
JWKS_URI = "https://as.example/jwks"
OLD = JWK.generate("ES256")
NEW = JWK.generate("ES256")


class World:
    """An issuer publishing ``published`` at JWKS_URI, and a clock to move."""

    def __init__(self) -> None:
        self.now = NOW
        self.published = [OLD]
        self.fetches = 0
        # One function object: a verifier trusts a client's deadlines only on the same clock.
        self.clock = lambda: self.now

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        body = json.dumps(KeySet.of(*self.published).to_dict()).encode()
        return httpx.Response(200, content=body, headers={"Cache-Control": "max-age=600"})

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        return self.handler(request)

    def sync_client(self) -> JWKSClient:
        return JWKSClient(JWKS_URI, transport=httpx.MockTransport(self.handler), clock=self.clock)

    def async_client(self) -> AsyncJWKSClient:
        return AsyncJWKSClient(
            JWKS_URI, transport=httpx.MockTransport(self.async_handler), clock=self.clock
        )

    def verifier(self, source: object) -> AccessTokenVerifier:
        return AccessTokenVerifier(
            ISSUER,
            keys=source,  # type: ignore[arg-type]
            audience=AUDIENCE,
            clock=self.clock,
        )


def token(key: JWK) -> str:
    claims = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "client_id": "c",
        "iat": NOW,
        "exp": NOW + 3000,
        "jti": "j",
    }
    return encode_jwt(claims, LocalSigner(key), typ="at+jwt")


def test_averify_works_with_a_static_key_set() -> None:
    world = World()
    v = world.verifier(KeySet.of(OLD))
    assert anyio.run(v.averify, token(OLD)).sub == "alice"


@pytest.mark.parametrize("mode", ["sync-verify", "sync-averify", "async-averify"])
def test_a_newly_published_key_is_fetched_for_its_first_token(mode: str) -> None:
    world = World()
    source = world.async_client() if mode.startswith("async") else world.sync_client()
    v = world.verifier(source)

    def check(raw: str) -> str:
        if mode.endswith("averify"):
            return anyio.run(v.averify, raw).sub
        return v.verify(raw).sub

    assert check(token(OLD)) == "alice"
    assert world.fetches == 1
    world.published = [OLD, NEW]
    world.now = NOW + 31  # past the 30 s cooldown, well within max-age
    assert check(token(NEW)) == "alice"
    assert world.fetches == 2


def test_sync_verify_with_an_async_client_asks_for_averify_when_a_fetch_is_due() -> None:
    world = World()
    v = world.verifier(world.async_client())
    anyio.run(v.averify, token(OLD))
    assert v.verify(token(OLD)).sub == "alice"  # a fresh set serves without I/O
    world.published = [OLD, NEW]
    world.now = NOW + 31
    with pytest.raises(TypeError, match="averify"):
        v.verify(token(NEW))


def test_revoking_a_kid_evicts_its_tokens_from_the_cache() -> None:
    v = World().verifier(KeySet.of(OLD, NEW))
    v.verify(token(OLD))
    v.verify(token(NEW))
    assert v.cache is not None
    assert len(v.cache) == 2
    v.revoke_kid(ISSUER, OLD.kid)
    assert len(v.cache) == 1
    v.revoke_kid("https://other.example", NEW.kid)
    assert len(v.cache) == 1
    with pytest.raises(InvalidToken):
        v.verify(token(OLD))


def test_closing_the_verifier_leaves_a_client_it_was_given_open() -> None:
    world = World()
    source = world.sync_client()
    v = world.verifier(source)
    v.verify(token(OLD))
    v.close()
    assert source.refresh().kids == frozenset({OLD.kid})  # still usable
    source.close()


def test_closing_the_verifier_closes_a_client_it_made() -> None:
    v = AccessTokenVerifier(ISSUER, jwks_uri=JWKS_URI, audience=AUDIENCE)
    made = v._issuers[ISSUER].keys
    assert isinstance(made, JWKSClient)
    v.close()
    with pytest.raises(RuntimeError):
        made.refresh()


class CountingClient(JWKSClient):
    """A JWKSClient that counts how often a cache hit has to ask it about a kid."""

    asked = 0

    def has_usable_key(self, kid: str) -> bool:
        self.asked += 1
        return super().has_usable_key(kid)


class RacingClient(CountingClient):
    """Its fresh snapshot changes between two reads, as when a fetch lands in between."""

    reads = 0

    def fresh_kids(self) -> tuple[frozenset[str], float] | None:
        self.reads += 1
        snapshot = super().fresh_kids()
        if snapshot is None or self.reads % 2:
            return snapshot
        return snapshot[0] | {"landed"}, snapshot[1] + 1


def _client(world: World, kind: type[CountingClient]) -> CountingClient:
    return kind(JWKS_URI, transport=httpx.MockTransport(world.handler), clock=world.clock)


def test_a_cache_hit_trusts_a_stable_fresh_snapshot_without_asking_again() -> None:
    world = World()
    source = _client(world, CountingClient)
    v = world.verifier(source)
    raw = token(OLD)
    first = v.verify(raw)
    # A fetch of a changed key set resets the snapshot; the next hit asks the client once.
    world.published = [OLD, NEW]
    source.refresh()
    header = b"Bearer " + raw.encode()
    assert v.cached_header(header) is first
    assert source.asked == 1
    assert v.cached_header(header) is first
    assert v.cached(raw) is first
    assert source.asked == 1


def test_a_snapshot_that_changed_while_it_was_read_is_not_trusted() -> None:
    world = World()
    source = _client(world, RacingClient)
    v = world.verifier(source)
    raw = token(OLD)
    first = v.verify(raw)
    world.published = [OLD, NEW]
    source.refresh()
    header = b"Bearer " + raw.encode()
    assert v.cached_header(header) is first
    assert v.cached_header(header) is first
    assert source.asked == 2  # every hit asks again: no snapshot was kept
