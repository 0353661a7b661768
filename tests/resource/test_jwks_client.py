"""JWKSClient and AsyncJWKSClient against real servers on loopback, with an injected clock.

Every test takes ``open_jwks`` and so runs twice, once per client: the two drivers are
hand-written twins over one policy, and this suite is what keeps them answering alike.
The policy's pure parts (freshness, URLs) are tested without a client in test_jwks_policy.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
import tracemalloc
import zlib
from collections.abc import Callable

import httpx
import pytest

from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
from sealring.resource import (
    DiscoveryError,
    JWKSError,
    JWKSFetchError,
    JWKSSettings,
    KeySetUnavailable,
)
from tests.helpers.clock import FakeClock
from tests.helpers.issuer import IssuerServer, Route
from tests.helpers.jwks_clients import Driver, open_client
from tests.helpers.servers import raw_server
from tests.helpers.tokens import new_key

OpenJWKS = Callable[..., Driver]


def _jwks(key: JWK) -> bytes:
    return json.dumps({"keys": [key.public().to_dict()]}).encode()


def failure(open_jwks: OpenJWKS, url: str | None = None, **kwargs: object) -> JWKSError:
    """The error of a first fetch that must fail."""
    client = open_jwks(url, **kwargs)
    try:
        client.get_key_set()
    except JWKSError as exc:
        return exc
    raise AssertionError("the fetch did not fail")


def _dribble(body: bytes, pause: float) -> Callable[[socket.socket], None]:
    def respond(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(len(body)):
            conn.sendall(body[i : i + 1])
            time.sleep(pause)

    return respond


def _slow_headers(conn: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
        conn.sendall(bytes((byte,)))
        time.sleep(0.05)


# -- freshness: RFC 9111 max-age, ETag revalidation ------------------------------------------


def test_max_age_is_honoured(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    issuer_server.publish(key, max_age=120)
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
    assert "k1" in client.get_key_set()
    clock.advance(119)
    client.get_key_set()
    assert len(issuer_server.jwks_fetches()) == 1
    clock.advance(1)
    client.get_key_set()
    assert len(issuer_server.jwks_fetches()) == 2


def test_max_age_shorter_than_cooldown_still_refreshes_on_time(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    """The cooldown bounds refetches after failures and unknown kids, not plain expiry."""
    issuer_server.publish(key, max_age=2)
    settings = JWKSSettings(min_max_age=1, default_max_age=1, cooldown=30)
    client = open_jwks(issuer_server.jwks_uri, clock=clock, settings=settings)
    client.get_key_set()
    clock.advance(2)
    client.get_key_set()
    clock.advance(2)
    client.get_key_set()
    assert len(issuer_server.jwks_fetches()) == 3


def test_etag_revalidation(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    issuer_server.publish(key, max_age=60, etag='"v1"')
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
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


def test_weak_etag_is_revalidated_as_sent(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    issuer_server.publish(key, max_age=60, etag='W/"v1-abc"')
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
    client.get_key_set()
    clock.advance(61)
    client.get_key_set()
    assert issuer_server.jwks_fetches()[1].headers["if-none-match"] == 'W/"v1-abc"'


@pytest.mark.parametrize("etag", ['"\xe9t\xe9"', '"a\x7fb"', 'W/"\xff"'])
def test_non_ascii_etag_is_not_sent_back(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK, etag: str
) -> None:
    # Sent back in If-None-Match it made every later refresh raise UnicodeEncodeError.
    issuer_server.publish(key, max_age=60, etag=etag.encode("latin-1").decode("latin-1"))
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
    assert "k1" in client.get_key_set()
    clock.advance(61)
    assert "k1" in client.get_key_set()
    fetches = issuer_server.jwks_fetches()
    assert len(fetches) == 2
    assert "if-none-match" not in fetches[1].headers


def test_listener_called_on_change_only(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    issuer_server.publish(key, max_age=60)
    seen: list[KeySet] = []
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
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


# -- unknown kids and the cooldown -------------------------------------------------------------


def test_unknown_kid_refetches_at_most_once_per_cooldown(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    issuer_server.publish(key, max_age=3600)
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
    client.get_key_set()
    for i in range(200):
        assert f"nope-{i}" not in client.get_key_set(f"nope-{i}")
    assert len(issuer_server.jwks_fetches()) == 1  # the first fetch is within the cooldown
    clock.advance(30)
    client.get_key_set("nope-x")
    client.get_key_set("nope-y")
    assert len(issuer_server.jwks_fetches()) == 2


def test_new_kid_is_picked_up_after_cooldown(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    issuer_server.publish(key, max_age=3600)
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
    client.get_key_set()
    k2 = new_key("ES256", kid="k2")
    issuer_server.publish(key, k2, max_age=3600)
    clock.advance(31)
    assert "k2" in client.get_key_set("k2")


def test_single_flight(open_jwks: OpenJWKS, issuer_server: IssuerServer, key: JWK) -> None:
    """100 threads (sync) or 100 tasks (async) asking at once share one fetch."""
    issuer_server.publish(key)
    issuer_server.delay = 0.2
    client = open_jwks(issuer_server.jwks_uri)
    results = client.concurrently(100, "k1")
    assert len(results) == 100
    assert len({id(r) for r in results}) == 1
    assert len(issuer_server.jwks_fetches()) == 1


# -- failures: stale-if-error, then fail closed --------------------------------------------------


def test_stale_if_error_then_fail_closed(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    issuer_server.publish(key, max_age=60)
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
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
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> None:
    issuer_server.publish(key, max_age=60)
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
    client.get_key_set()
    issuer_server.routes["/jwks"] = Route(500, b"oops")
    clock.advance(61)
    assert "k1" in client.get_key_set()
    k2 = new_key("ES256", kid="k2")
    issuer_server.publish(k2, max_age=60)
    clock.advance(29)  # within the cooldown nothing asks the failing source again
    assert client.get_key_set("k2").kids == {"k1"}
    assert len(issuer_server.jwks_fetches()) == 2
    clock.advance(1)  # after the cooldown the next request refreshes the set, which succeeds
    client.get_key_set()
    assert len(issuer_server.jwks_fetches()) == 3
    assert client.get_key_set().kids == {"k2"}


def test_first_fetch_failure_is_not_retried_within_cooldown(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, clock: FakeClock
) -> None:
    issuer_server.routes["/jwks"] = Route(503, b"down")
    client = open_jwks(issuer_server.jwks_uri, clock=clock)
    with pytest.raises(JWKSFetchError) as info:
        client.get_key_set()
    assert info.value.code == "jwks_bad_status"
    with pytest.raises(KeySetUnavailable):
        client.get_key_set()
    assert len(issuer_server.jwks_fetches()) == 1


def test_redirect_is_refused(open_jwks: OpenJWKS, issuer_server: IssuerServer, key: JWK) -> None:
    issuer_server.publish(key)
    issuer_server.routes["/moved"] = Route(302, b"", {"Location": issuer_server.jwks_uri})
    error = failure(open_jwks, f"{issuer_server.issuer}/moved")
    assert isinstance(error, JWKSFetchError)
    assert error.code == "jwks_redirect_refused"
    assert issuer_server.jwks_fetches() == []


def test_private_keys_in_jwks_are_refused(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, key: JWK
) -> None:
    body = json.dumps({"keys": [key.to_private_dict()]}).encode()
    issuer_server.routes["/jwks"] = Route(200, body)
    error = failure(open_jwks, issuer_server.jwks_uri)
    assert isinstance(error, JWKSFetchError)
    assert error.code == "jwks_invalid"


def test_transport_errors_are_jwks_errors(open_jwks: OpenJWKS) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    error = failure(open_jwks, "https://as.example/jwks", transport=httpx.MockTransport(handler))
    assert isinstance(error, JWKSFetchError)
    assert error.code == "jwks_fetch_failed"
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_injected_transport_and_refresh(open_jwks: OpenJWKS, key: JWK) -> None:
    body = _jwks(key)
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=body, headers={"Cache-Control": "max-age=60"})

    client = open_jwks("https://as.example/jwks", transport=httpx.MockTransport(handler))
    assert "k1" in client.get_key_set()
    assert "k1" in client.refresh()  # fresh, yet refresh() fetches
    assert len(calls) == 2


# -- bounded fetches: size, encodings, deadlines ----------------------------------------------


@pytest.mark.parametrize("send_length", [True, False])
def test_oversized_jwks_is_refused(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, key: JWK, send_length: bool
) -> None:
    body = json.dumps({"keys": [key.public().to_dict()], "pad": "x" * 20_000}).encode()
    issuer_server.routes["/jwks"] = Route(200, body, send_length=send_length)
    error = failure(open_jwks, issuer_server.jwks_uri, settings=JWKSSettings(max_size=10_000))
    assert isinstance(error, JWKSFetchError)
    assert error.code == "jwks_too_large"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_bomb_is_bounded_while_decoding(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, encoding: str
) -> None:
    # 64 MiB of spaces compress to ~64 KiB. httpx would inflate each network chunk whole before
    # the cap is checked (~150 MB peak for a 200 KB body); the output is bounded as it is made.
    expanded = b" " * (64 * 1024 * 1024)
    body = gzip.compress(expanded, 9) if encoding == "gzip" else zlib.compress(expanded, 9)
    del expanded
    issuer_server.routes["/jwks"] = Route(200, body, {"Content-Encoding": encoding})
    tracemalloc.start()
    try:
        error = failure(open_jwks, issuer_server.jwks_uri)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(error, JWKSFetchError)
    assert error.code == "jwks_too_large"
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity"])
def test_encoded_jwks_still_accepted(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, key: JWK, encoding: str
) -> None:
    plain = _jwks(key)
    body = {"gzip": gzip.compress, "deflate": zlib.compress}.get(encoding, bytes)(plain)
    issuer_server.routes["/jwks"] = Route(200, body, {"Content-Encoding": encoding})
    assert "k1" in open_jwks(issuer_server.jwks_uri).get_key_set()
    sent = issuer_server.jwks_fetches()[-1].headers
    assert sent["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("br", b"\x00"), ("gzip", b"not gzip"), ("gzip", gzip.compress(b"{")[:-4])],
)
def test_unknown_corrupt_or_truncated_encodings_are_fetch_errors(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, encoding: str, body: bytes
) -> None:
    issuer_server.routes["/jwks"] = Route(200, body, {"Content-Encoding": encoding})
    assert isinstance(failure(open_jwks, issuer_server.jwks_uri), JWKSFetchError)


def test_timeout(open_jwks: OpenJWKS, issuer_server: IssuerServer, key: JWK) -> None:
    issuer_server.publish(key)
    issuer_server.delay = 0.5
    error = failure(open_jwks, issuer_server.jwks_uri, settings=JWKSSettings(timeout=0.1))
    assert isinstance(error, JWKSFetchError)
    assert error.code == "jwks_fetch_failed"


def test_slow_body_is_cut_off_by_a_total_deadline(open_jwks: OpenJWKS, key: JWK) -> None:
    # One byte every 50 ms never trips a 0.5 s per-read timeout; the body would take ~30 s.
    with raw_server(_dribble(_jwks(key), 0.05)) as url:
        started = time.monotonic()
        client = open_jwks(url, settings=JWKSSettings(timeout=0.5))
        with pytest.raises(JWKSFetchError, match="longer than the timeout"):
            client.get_key_set()
        assert time.monotonic() - started < 1.5


def test_slow_headers_hit_the_same_deadline(open_jwks: OpenJWKS) -> None:
    # A status line and headers sent a byte at a time never trip a per-read timeout.
    with raw_server(_slow_headers) as url:
        started = time.monotonic()
        client = open_jwks(url, settings=JWKSSettings(timeout=0.5))
        with pytest.raises(JWKSFetchError, match="longer than the timeout"):
            client.get_key_set()
        assert time.monotonic() - started < 1.5


# -- configuration: URLs and discovery (RFC 8414 §3) ---------------------------------------------


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
def test_https_required_except_loopback(client_kind: str, url: str) -> None:
    with pytest.raises(ValueError):
        open_client(client_kind, url)
    with pytest.raises(ValueError):
        open_client(client_kind, issuer=url)


@pytest.mark.parametrize(
    "url",
    ["https://example.com/jwks", "http://127.0.0.1:1/jwks", "http://localhost/j", "http://[::1]/j"],
)
def test_accepted_urls(open_jwks: OpenJWKS, url: str) -> None:
    assert open_jwks(url).jwks_uri == url


def test_a_client_needs_a_jwks_uri_or_an_issuer(client_kind: str) -> None:
    with pytest.raises(ValueError):
        open_client(client_kind)


def test_discovery_rfc8414(open_jwks: OpenJWKS, issuer_server: IssuerServer, key: JWK) -> None:
    issuer_server.publish(key)
    client = open_jwks(issuer=issuer_server.issuer)
    assert client.jwks_uri is None
    assert "k1" in client.get_key_set()
    assert client.jwks_uri == issuer_server.jwks_uri
    paths = [s.path for s in issuer_server.seen]
    assert paths == ["/.well-known/oauth-authorization-server", "/jwks"]


def test_discovery_falls_back_to_openid_configuration(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, key: JWK
) -> None:
    issuer_server.publish(key)
    del issuer_server.routes["/.well-known/oauth-authorization-server"]
    issuer_server.metadata(path="/.well-known/openid-configuration")
    assert "k1" in open_jwks(issuer=issuer_server.issuer).get_key_set()


def test_discovery_issuer_mismatch(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, key: JWK
) -> None:
    issuer_server.publish(key)
    issuer_server.metadata(issuer="https://evil.example")
    error = failure(open_jwks, issuer=issuer_server.issuer)
    assert isinstance(error, DiscoveryError)
    assert error.code == "issuer_mismatch"
    assert issuer_server.jwks_fetches() == []


def test_discovery_refuses_insecure_jwks_uri(
    open_jwks: OpenJWKS, issuer_server: IssuerServer
) -> None:
    doc = {"issuer": issuer_server.issuer, "jwks_uri": "http://attacker.example/jwks"}
    issuer_server.routes["/.well-known/oauth-authorization-server"] = Route(
        200, json.dumps(doc).encode()
    )
    assert isinstance(failure(open_jwks, issuer=issuer_server.issuer), DiscoveryError)


def test_no_metadata(open_jwks: OpenJWKS, issuer_server: IssuerServer) -> None:
    issuer_server.routes.clear()
    assert isinstance(failure(open_jwks, issuer=issuer_server.issuer), DiscoveryError)


@pytest.mark.parametrize(
    "metadata",
    [
        b"[" * 60_000,
        b'{"issuer":"ISS","issuer":"https://evil.example","jwks_uri":"ISS/jwks"}',
        b'{"issuer":"ISS","jwks_uri":"ISS/jwks","n":NaN}',
        b"\xff\xfe",
    ],
)
def test_hostile_metadata_is_a_discovery_error(
    open_jwks: OpenJWKS, issuer_server: IssuerServer, metadata: bytes
) -> None:
    body = metadata.replace(b"ISS", issuer_server.issuer.encode())
    issuer_server.routes["/.well-known/oauth-authorization-server"] = Route(200, body)
    assert isinstance(failure(open_jwks, issuer=issuer_server.issuer), DiscoveryError)
