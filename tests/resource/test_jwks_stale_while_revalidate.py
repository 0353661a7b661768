"""Stale-while-revalidate (issue 12 item 5): a usable stale key set answers at once and is
refreshed in the background; only a cold cache, an unknown kid or a set past ``stale_if_error``
waits for a fetch, and never longer than the timeout.

The policy's rules are driven directly at their edges (fake clock, no I/O); the clients' are
run against a real loopback source that hangs or is down, once per client kind.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
from sealring.resource import JWKSSettings, KeySetUnavailable
from sealring.resource.errors import JWKSError, JWKSFetchError
from sealring.resource.jwks._policy import HTTPResponse, KeySetCache
from tests.helpers.clock import T0, FakeClock
from tests.helpers.issuer import IssuerServer
from tests.helpers.jwks_clients import Driver
from tests.helpers.tokens import new_key

URL = "https://as.example/jwks"
KEY = new_key("ES256", kid="k1").public()
BODY = json.dumps(KeySet.of(KEY).to_dict()).encode()
SETTINGS = JWKSSettings(cooldown=30, stale_if_error=100)
FRESH_UNTIL = T0 + 60  # a fetch at T0 with max-age 60

OpenJWKS = Callable[..., Driver]


# -- the policy ----------------------------------------------------------------------------------


def _loaded(settings: JWKSSettings = SETTINGS) -> KeySetCache:
    """A policy holding KEY, fetched at T0 with max-age 60."""
    cache = KeySetCache(URL, None, settings)
    flow = cache.refresh_flow(T0)
    next(flow)
    with pytest.raises(StopIteration):
        flow.send(HTTPResponse(200, {"cache-control": "max-age=60"}, BODY))
    return cache


def _fail(cache: KeySetCache, now: float) -> None:
    """A refresh at ``now`` whose transport fails."""
    flow = cache.refresh_flow(now)
    next(flow)
    with pytest.raises((StopIteration, JWKSError)):
        flow.throw(JWKSFetchError("connection refused"))


def test_a_known_kid_is_served_stale_until_the_bound_then_fetched() -> None:
    cache = _loaded()
    assert cache.lookup("k1", FRESH_UNTIL - 0.001) is cache.keys
    assert not cache.refresh_due(FRESH_UNTIL - 0.001)
    for now in (FRESH_UNTIL, FRESH_UNTIL + 99.999):
        assert cache.lookup("k1", now) is cache.keys
        assert cache.lookup(None, now) is cache.keys
        assert cache.refresh_due(now)  # served stale, and the client refreshes it aside
    assert cache.lookup("k1", FRESH_UNTIL + 100) is None  # too old to serve: fetch first
    # fresh_kids (the verifier's snapshot) is only ever the fresh set.
    assert cache.fresh_kids(FRESH_UNTIL - 0.001) == (frozenset({"k1"}), FRESH_UNTIL)
    assert cache.fresh_kids(FRESH_UNTIL) is None
    assert cache.serves("k1", FRESH_UNTIL + 99.999)
    assert not cache.serves("k1", FRESH_UNTIL + 100)


def test_without_a_stale_window_a_set_is_fetched_at_its_max_age() -> None:
    cache = _loaded(JWKSSettings(stale_if_error=0))
    assert cache.lookup("k1", FRESH_UNTIL - 0.001) is cache.keys
    assert cache.lookup("k1", FRESH_UNTIL) is None


def test_an_unknown_kid_in_a_stale_set_waits_for_a_fetch_unless_one_just_failed() -> None:
    cache = _loaded()
    # The last fetch succeeded (at T0): nothing holds back a fetch for a rotation's new key.
    assert cache.lookup("k2", FRESH_UNTIL) is None
    _fail(cache, FRESH_UNTIL)
    assert cache.lookup("k2", FRESH_UNTIL + 29.999) is cache.keys  # within the cooldown: 401
    assert cache.lookup("k2", FRESH_UNTIL + 30) is None  # once per cooldown it may try again


def test_a_failing_source_is_asked_in_the_background_once_per_cooldown() -> None:
    cache = _loaded()
    assert not _loaded().refresh_due(T0)
    _fail(cache, FRESH_UNTIL + 1)
    assert cache.lookup("k1", FRESH_UNTIL + 1) is cache.keys  # the failure changes nothing
    assert not cache.refresh_due(FRESH_UNTIL + 1)
    assert not cache.refresh_due(FRESH_UNTIL + 30.999)
    assert cache.refresh_due(FRESH_UNTIL + 31)


def _refresh_failing(cache: KeySetCache, now: float) -> KeySet:
    """What a refresh at ``now`` whose transport fails hands back (or raises)."""
    flow = cache.refresh_flow(now)
    next(flow)
    try:
        flow.throw(JWKSFetchError("connection refused"))
    except StopIteration as stop:
        result: KeySet = stop.value
        return result
    raise AssertionError("the flow asked for another request")


def test_a_failed_fetch_hands_back_the_last_good_set_until_the_bound() -> None:
    """What a request that fetched (an unknown kid) gets: the stale set, so a 401, not a 503."""
    for now in (T0 + 1, FRESH_UNTIL, FRESH_UNTIL + 99.999):
        cache = _loaded()
        assert _refresh_failing(cache, now) is cache.keys
    with pytest.raises(KeySetUnavailable):
        _refresh_failing(_loaded(), FRESH_UNTIL + 100)
    with pytest.raises(JWKSFetchError):
        _refresh_failing(KeySetCache(URL, None, SETTINGS), T0)  # nothing to fall back on


def test_the_cooldown_counts_from_the_end_of_a_failed_fetch() -> None:
    """A fetch that hung until the timeout: who waited for it must not start another at once."""
    cache = _loaded()
    _fail(cache, FRESH_UNTIL)  # began at FRESH_UNTIL ...
    cache.attempt_ended(FRESH_UNTIL + 5)  # ... and timed out 5 s later
    assert cache.lookup("k2", FRESH_UNTIL + 34.999) is cache.keys
    assert not cache.refresh_due(FRESH_UNTIL + 34.999)
    assert cache.lookup("k2", FRESH_UNTIL + 35) is None
    assert cache.refresh_due(FRESH_UNTIL + 35)
    cache.attempt_ended(FRESH_UNTIL)  # an end reported late never moves the cooldown back
    assert cache.lookup("k2", FRESH_UNTIL + 34.999) is cache.keys


def test_nothing_is_due_before_the_first_fetch() -> None:
    cache = KeySetCache(URL, None, SETTINGS)
    assert not cache.refresh_due(T0)
    assert cache.lookup("k1", T0) is None  # a cold cache fetches, in the foreground


def test_past_the_bound_a_recent_failure_fails_closed_without_a_fetch() -> None:
    cache = _loaded()
    _fail(cache, FRESH_UNTIL + 90)
    with pytest.raises(KeySetUnavailable):
        cache.lookup("k1", FRESH_UNTIL + 100)
    assert cache.lookup("k1", FRESH_UNTIL + 120) is None  # the cooldown is over: try again


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_stale_serving_and_failed_refreshes_are_counted() -> None:
    cache = _loaded()
    stale, failed = (
        _sample("sealring_resource_jwks_stale_served_total"),
        _sample("sealring_resource_jwks_refresh_failures_total", code="jwks_fetch_failed"),
    )
    cache.lookup("k1", FRESH_UNTIL - 1)  # fresh: not counted
    cache.lookup("k1", FRESH_UNTIL)
    cache.lookup("k1", FRESH_UNTIL + 1)
    assert _sample("sealring_resource_jwks_stale_served_total") == stale + 2
    _fail(cache, FRESH_UNTIL + 1)
    assert (
        _sample("sealring_resource_jwks_refresh_failures_total", code="jwks_fetch_failed")
        == failed + 1
    )


def test_an_outage_is_logged_once_then_its_end(caplog: pytest.LogCaptureFixture) -> None:
    cache = _loaded()
    with caplog.at_level(logging.INFO, logger="sealring.resource"):
        _fail(cache, FRESH_UNTIL + 1)
        _fail(cache, FRESH_UNTIL + 40)
        flow = cache.refresh_flow(FRESH_UNTIL + 80)
        next(flow)
        with pytest.raises(StopIteration):
            flow.send(HTTPResponse(200, {}, BODY))
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0][0] == "WARNING"
    assert lines[0][1].startswith(f"JWK Set refresh from {URL} failed (connection refused); ")
    assert "serving the cached set for up to 99 s past its freshness" in lines[0][1]
    assert lines[1] == ("WARNING", f"JWK Set from {URL} fetched again after a failure")


def test_a_failure_before_any_key_set_is_logged_at_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = KeySetCache(URL, None, SETTINGS)
    with caplog.at_level(logging.INFO, logger="sealring.resource"):
        _fail(cache, T0)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", f"no JWK Set from {URL} yet: connection refused")
    ]


def test_failing_closed_is_logged_at_error(caplog: pytest.LogCaptureFixture) -> None:
    cache = _loaded()
    with caplog.at_level(logging.INFO, logger="sealring.resource"):
        _fail(cache, FRESH_UNTIL + 100)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "ERROR",
            f"JWK Set from {URL} could not be refreshed and the cached one is too old: "
            "failing closed (connection refused)",
        )
    ]


# -- the clients against a source that hangs or is down -----------------------------------------

TIMEOUT = 1.0
#: What "answered at once" means here: far below the fetch timeout, with room for a loaded CI.
AT_ONCE = 0.3


def _timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.monotonic()
    result = call()
    return time.monotonic() - start, result


def _stale_client(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> Driver:
    """A client holding ``key`` from a source that then hangs, its set 1 s past max-age."""
    issuer_server.publish(key, max_age=60)
    settings = JWKSSettings(timeout=TIMEOUT, cooldown=30, stale_if_error=600)
    client = open_jwks(issuer_server.jwks_uri, clock=clock, settings=settings)
    client.get_key_set()
    issuer_server.delay = 60  # accepts the request and never answers
    clock.advance(61)
    return client


def test_a_hung_source_never_holds_up_a_known_kid(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    client = _stale_client(open_jwks, issuer_server, clock, key)
    good = client.key_set
    for _ in range(5):
        elapsed, keys = _timed(lambda: client.get_key_set("k1", settle=False))
        assert keys is good
        assert elapsed < AT_ONCE, elapsed
    assert client.has_usable_key("k1")
    assert client.cached_key_set("k1") is good
    # One refresh runs, in the background, and nothing waited for it.
    assert client.refreshing()
    client.settle()  # it times out ...
    assert len(issuer_server.jwks_fetches()) == 2
    elapsed, keys = _timed(lambda: client.get_key_set("k1", settle=False))
    assert keys is good
    assert elapsed < AT_ONCE
    assert not client.refreshing()  # ... and is not retried within the cooldown
    clock.advance(30)
    client.get_key_set("k1", settle=False)
    assert client.refreshing()
    client.settle()
    assert len(issuer_server.jwks_fetches()) == 3


def test_an_unknown_kid_waits_for_a_hung_source_at_most_the_timeout(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    client = _stale_client(open_jwks, issuer_server, clock, key)
    client.get_key_set("k1", settle=False)  # the background refresh hangs
    elapsed, keys = _timed(lambda: client.get_key_set("k2", settle=False))
    assert isinstance(keys, KeySet)
    assert keys.kids == {"k1"}
    assert elapsed < TIMEOUT + 0.5, elapsed
    # The refresh that failed holds back the next one: the next unknown kid is answered at once.
    elapsed, _ = _timed(lambda: client.get_key_set("k3", settle=False))
    assert elapsed < AT_ONCE, elapsed
    assert len(issuer_server.jwks_fetches()) == 2


def test_an_unknown_kid_waiting_for_a_hung_refresh_does_not_fetch_again(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, key: JWK
) -> None:
    """On the real clock, with a cooldown as long as the timeout: the waiter finds the fetch it
    waited for failed just now, and answers from the stale set instead of a second timeout."""
    issuer_server.publish(key, max_age=0)
    settings = JWKSSettings(
        min_max_age=0, default_max_age=0, timeout=TIMEOUT, cooldown=TIMEOUT, stale_if_error=600
    )
    client = open_jwks(issuer_server.jwks_uri, settings=settings)
    client.get_key_set()
    issuer_server.delay = 60
    client.get_key_set("k1", settle=False)  # stale at once: a background refresh, which hangs
    time.sleep(TIMEOUT / 2)
    elapsed, keys = _timed(lambda: client.get_key_set("k2", settle=False))
    assert isinstance(keys, KeySet)
    assert keys.kids == {"k1"}
    assert len(issuer_server.jwks_fetches()) == 2  # the first fetch and the hung refresh only
    assert elapsed < TIMEOUT + 0.2, elapsed


def test_a_source_that_is_down_serves_the_stale_set_then_fails_closed(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    client = _stale_client(open_jwks, issuer_server, clock, key)
    issuer_server.stop()
    good = client.key_set
    assert client.get_key_set("k1") is good
    clock.advance(598.9)  # 60 s fresh + 600 s stale-if-error: 0.1 s left
    assert client.get_key_set("k1") is good
    clock.advance(0.1)
    with pytest.raises(KeySetUnavailable):
        client.get_key_set("k1")
    assert not client.has_usable_key("k1")


def test_a_new_set_replaces_the_stale_one_in_the_background(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    issuer_server.publish(key, max_age=60)
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
    seen: list[KeySet] = []
    client.add_listener(seen.append)
    old = client.get_key_set()
    issuer_server.publish(key, new_key("ES256", kid="k2"), max_age=60)
    clock.advance(60)
    assert client.get_key_set("k1", settle=False) is old
    client.settle()
    assert client.key_set is not None
    assert client.key_set.kids == {"k1", "k2"}
    assert client.fresh_kids() == (frozenset({"k1", "k2"}), clock.now + 60)
    assert [s.kids for s in seen] == [{"k1"}, {"k1", "k2"}]


def test_closing_during_a_hung_background_refresh_is_bounded(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    client = _stale_client(open_jwks, issuer_server, clock, key)
    client.get_key_set("k1", settle=False)
    assert client.refreshing()
    elapsed, _ = _timed(client.close)
    assert elapsed < TIMEOUT + 1.5, elapsed
