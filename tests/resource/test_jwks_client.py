"""JWKSClient / AsyncJWKSClient against a real JWKS server on loopback, with an injected clock."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from sealring.jose.jwks import KeySet
from sealring.resource import (
    AsyncJWKSClient,
    DiscoveryError,
    JWKSClient,
    JWKSError,
    JWKSFetchError,
    JWKSSettings,
    KeySetUnavailable,
)
from sealring.resource.jwks_client import (
    _KeySetCache,
    freshness_lifetime,
    metadata_urls,
)

from .conftest import FakeClock, IssuerServer, Route, new_key


def failure(url: str | None = None, **kwargs: object) -> JWKSError:
    """The error of a first fetch that must fail."""
    with JWKSClient(url, **kwargs) as client:  # type: ignore[arg-type]
        try:
            client.get_key_set()
        except JWKSError as exc:
            return exc
    raise AssertionError("the fetch did not fail")


def test_max_age_is_honoured(issuer_server: IssuerServer, clock: FakeClock, key) -> None:
    issuer_server.publish(key, max_age=120)
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        assert "k1" in client.get_key_set()
        clock.advance(119)
        client.get_key_set()
        assert len(issuer_server.jwks_fetches()) == 1
        clock.advance(1)
        client.get_key_set()
        assert len(issuer_server.jwks_fetches()) == 2


def test_max_age_shorter_than_cooldown_still_refreshes_on_time(
    issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    """The cooldown bounds refetches after failures and unknown kids, not plain expiry."""
    issuer_server.publish(key, max_age=2)
    settings = JWKSSettings(min_max_age=1, default_max_age=1, cooldown=30)
    with JWKSClient(issuer_server.jwks_uri, clock=clock, settings=settings) as client:
        client.get_key_set()
        clock.advance(2)
        client.get_key_set()
        clock.advance(2)
        client.get_key_set()
        assert len(issuer_server.jwks_fetches()) == 3


@pytest.mark.parametrize(
    ("cache_control", "expected"),
    [
        ("max-age=120", 120),
        ("public, max-age=1", 30),  # floor
        ("max-age=999999999", 86400),  # ceiling
        ("", 600),  # default when absent
        ("no-cache", 30),
        ("max-age=nonsense", 600),
    ],
)
def test_freshness_lifetime_bounds(cache_control: str, expected: float) -> None:
    headers = {"cache-control": cache_control} if cache_control else {}
    assert freshness_lifetime(headers, JWKSSettings()) == expected


def test_age_header_is_subtracted() -> None:
    assert freshness_lifetime({"cache-control": "max-age=300", "age": "100"}, JWKSSettings()) == 200


def test_etag_revalidation(issuer_server: IssuerServer, clock: FakeClock, key) -> None:
    issuer_server.publish(key, max_age=60, etag='"v1"')
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        first = client.get_key_set()
        clock.advance(61)
        second = client.get_key_set()
        assert second is first
        fetches = issuer_server.jwks_fetches()
        assert len(fetches) == 2
        assert "if-none-match" not in fetches[0].headers
        assert fetches[1].headers["if-none-match"] == '"v1"'
        # the 304 renewed freshness: no fetch for another max-age
        clock.advance(59)
        client.get_key_set()
        assert len(issuer_server.jwks_fetches()) == 2


def test_unknown_kid_refetches_at_most_once_per_cooldown(
    issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    issuer_server.publish(key, max_age=3600)
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        client.get_key_set()
        for i in range(200):
            assert f"nope-{i}" not in client.get_key_set(f"nope-{i}")
        assert len(issuer_server.jwks_fetches()) == 1  # the first fetch is within the cooldown
        clock.advance(30)
        client.get_key_set("nope-x")
        client.get_key_set("nope-y")
        assert len(issuer_server.jwks_fetches()) == 2


def test_new_kid_is_picked_up_after_cooldown(
    issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    issuer_server.publish(key, max_age=3600)
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        client.get_key_set()
        k2 = new_key("ES256", kid="k2")
        issuer_server.publish(key, k2, max_age=3600)
        clock.advance(31)
        assert "k2" in client.get_key_set("k2")


def test_single_flight_threads(issuer_server: IssuerServer, key) -> None:
    issuer_server.publish(key)
    issuer_server.delay = 0.2
    barrier = threading.Barrier(100)
    results: list[KeySet] = []
    with JWKSClient(issuer_server.jwks_uri) as client:

        def worker() -> None:
            barrier.wait()
            results.append(client.get_key_set("k1"))

        threads = [threading.Thread(target=worker) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 100
    assert len({id(r) for r in results}) == 1
    assert len(issuer_server.jwks_fetches()) == 1


def test_single_flight_asyncio(issuer_server: IssuerServer, key) -> None:
    issuer_server.publish(key)
    issuer_server.delay = 0.2

    async def main() -> list[KeySet]:
        async with AsyncJWKSClient(issuer_server.jwks_uri) as client:
            return await asyncio.gather(*(client.get_key_set("k1") for _ in range(100)))

    results = asyncio.run(main())
    assert len({id(r) for r in results}) == 1
    assert len(issuer_server.jwks_fetches()) == 1


def test_stale_if_error_then_fail_closed(
    issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    issuer_server.publish(key, max_age=60)
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        good = client.get_key_set()
        issuer_server.stop()
        clock.advance(61)  # stale: the refresh fails, the last good set is served
        assert client.get_key_set() is good
        clock.advance(60 * 59)  # still inside the 1 h stale window (60 s fresh + 3600 s)
        assert client.get_key_set() is good
        clock.advance(60)  # 61 + 3600 s after the fetch: the window is over
        with pytest.raises(KeySetUnavailable) as info:
            client.get_key_set()
        assert info.value.code == "jwks_unavailable"
        # and it stays closed without hammering: within the cooldown no new attempt is made
        with pytest.raises(KeySetUnavailable):
            client.get_key_set()


def test_stale_window_recovers_when_server_returns(
    issuer_server: IssuerServer, clock: FakeClock, key
) -> None:
    issuer_server.publish(key, max_age=60)
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        client.get_key_set()
        issuer_server.routes["/jwks"] = Route(500, b"oops")
        clock.advance(61)
        assert "k1" in client.get_key_set()
        k2 = new_key("ES256", kid="k2")
        issuer_server.publish(k2, max_age=60)
        clock.advance(30)  # after the cooldown the next request retries and succeeds
        assert "k2" in client.get_key_set()


def test_first_fetch_failure_is_not_retried_within_cooldown(
    issuer_server: IssuerServer, clock: FakeClock
) -> None:
    issuer_server.routes["/jwks"] = Route(503, b"down")
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        with pytest.raises(JWKSFetchError) as info:
            client.get_key_set()
        assert info.value.code == "jwks_bad_status"
        with pytest.raises(KeySetUnavailable):
            client.get_key_set()
        assert len(issuer_server.jwks_fetches()) == 1


def test_redirect_is_refused(issuer_server: IssuerServer, key) -> None:
    issuer_server.publish(key)
    issuer_server.routes["/moved"] = Route(302, b"", {"Location": issuer_server.jwks_uri})
    error = failure(f"{issuer_server.issuer}/moved")
    assert isinstance(error, JWKSFetchError)
    assert error.code == "jwks_redirect_refused"
    assert issuer_server.jwks_fetches() == []


@pytest.mark.parametrize("send_length", [True, False])
def test_oversized_jwks_is_refused(issuer_server: IssuerServer, key, send_length: bool) -> None:
    body = json.dumps({"keys": [key.public().to_dict()], "pad": "x" * 20_000}).encode()
    issuer_server.routes["/jwks"] = Route(200, body, send_length=send_length)
    settings = JWKSSettings(max_size=10_000)
    error = failure(issuer_server.jwks_uri, settings=settings)
    assert isinstance(error, JWKSFetchError)
    assert error.code == "jwks_too_large"


def test_private_keys_in_jwks_are_refused(issuer_server: IssuerServer, key) -> None:
    body = json.dumps({"keys": [key.to_private_dict()]}).encode()
    issuer_server.routes["/jwks"] = Route(200, body)
    error = failure(issuer_server.jwks_uri)
    assert isinstance(error, JWKSFetchError)
    assert error.code == "jwks_invalid"


def test_timeout(issuer_server: IssuerServer, key) -> None:
    issuer_server.publish(key)
    issuer_server.delay = 0.5
    error = failure(issuer_server.jwks_uri, settings=JWKSSettings(timeout=0.1))
    assert isinstance(error, JWKSFetchError)
    assert error.code == "jwks_fetch_failed"


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/jwks",
        "ftp://127.0.0.1/jwks",
        "/relative",
        "https://example.com/jwks#frag",
        "http://10.0.0.1/jwks",
    ],
)
def test_https_required_except_loopback(url: str) -> None:
    with pytest.raises(ValueError):
        JWKSClient(url)


@pytest.mark.parametrize(
    "url",
    ["https://example.com/jwks", "http://127.0.0.1:1/jwks", "http://localhost/j", "http://[::1]/j"],
)
def test_accepted_urls(url: str) -> None:
    JWKSClient(url).close()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        JWKSSettings(min_max_age=100, max_max_age=10)
    with pytest.raises(ValueError):
        JWKSSettings(default_max_age=5)
    with pytest.raises(ValueError):
        JWKSSettings(timeout=0)
    with pytest.raises(ValueError):
        JWKSSettings(cooldown=float("nan"))
    with pytest.raises(ValueError):
        _KeySetCache(None, None, JWKSSettings())


def test_metadata_urls() -> None:
    assert metadata_urls("https://as.example") == (
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration",
    )
    assert metadata_urls("https://as.example/tenant/a") == (
        "https://as.example/.well-known/oauth-authorization-server/tenant/a",
        "https://as.example/tenant/a/.well-known/openid-configuration",
    )


def test_discovery_rfc8414(issuer_server: IssuerServer, key) -> None:
    issuer_server.publish(key)
    with JWKSClient(issuer=issuer_server.issuer) as client:
        assert client.jwks_uri is None
        assert "k1" in client.get_key_set()
        assert client.jwks_uri == issuer_server.jwks_uri
    paths = [s.path for s in issuer_server.seen]
    assert paths == ["/.well-known/oauth-authorization-server", "/jwks"]


def test_discovery_falls_back_to_openid_configuration(issuer_server: IssuerServer, key) -> None:
    issuer_server.publish(key)
    del issuer_server.routes["/.well-known/oauth-authorization-server"]
    issuer_server.metadata(path="/.well-known/openid-configuration")
    with JWKSClient(issuer=issuer_server.issuer) as client:
        assert "k1" in client.get_key_set()


def test_discovery_issuer_mismatch(issuer_server: IssuerServer, key) -> None:
    issuer_server.publish(key)
    issuer_server.metadata(issuer="https://evil.example")
    error = failure(issuer=issuer_server.issuer)
    assert isinstance(error, DiscoveryError)
    assert error.code == "issuer_mismatch"
    assert issuer_server.jwks_fetches() == []


def test_discovery_refuses_insecure_jwks_uri(issuer_server: IssuerServer) -> None:
    doc = {"issuer": issuer_server.issuer, "jwks_uri": "http://attacker.example/jwks"}
    issuer_server.routes["/.well-known/oauth-authorization-server"] = Route(
        200, json.dumps(doc).encode()
    )
    with JWKSClient(issuer=issuer_server.issuer) as client, pytest.raises(DiscoveryError):
        client.get_key_set()


def test_no_metadata(issuer_server: IssuerServer) -> None:
    issuer_server.routes.clear()
    with JWKSClient(issuer=issuer_server.issuer) as client, pytest.raises(DiscoveryError):
        client.get_key_set()


def test_listener_called_on_change_only(issuer_server: IssuerServer, clock: FakeClock, key) -> None:
    issuer_server.publish(key, max_age=60)
    seen: list[KeySet] = []
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        client.add_listener(seen.append)
        client.get_key_set()
        clock.advance(61)
        client.get_key_set()
        assert len(seen) == 1
        issuer_server.publish(new_key("ES256", kid="k2"), max_age=60)
        clock.advance(61)
        client.get_key_set()
        assert len(seen) == 2
        assert "k2" in seen[-1]


def test_injected_transport_and_async_refresh(key) -> None:
    body = json.dumps({"keys": [key.public().to_dict()]}).encode()
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=body, headers={"Cache-Control": "max-age=60"})

    async def main() -> None:
        client = AsyncJWKSClient("https://as.example/jwks", transport=httpx.MockTransport(handler))
        async with client:
            assert "k1" in await client.get_key_set()
            assert "k1" in await client.refresh()

    asyncio.run(main())
    assert len(calls) == 2
    with JWKSClient("https://as.example/jwks", transport=httpx.MockTransport(handler)) as sync:
        assert "k1" in sync.refresh()


def test_transport_errors_are_jwks_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    error = failure("https://as.example/jwks", transport=httpx.MockTransport(handler))
    assert isinstance(error, JWKSError)
