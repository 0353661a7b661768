"""Findings of the adversarial review of the resource toolkit, each pinned by a test."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

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
    InvalidToken,
    JWKSClient,
    JWKSSettings,
)
from sealring.resource.errors import DiscoveryError, JWKSFetchError
from sealring.resource.jwks_client import freshness_lifetime

from .conftest import AUDIENCE, T0, FakeClock, IssuerServer, Route, mint, new_key

ISSUER = "https://as.example"


def _jwks(key) -> bytes:  # type: ignore[no-untyped-def]
    return json.dumps({"keys": [key.public().to_dict()]}).encode()


@contextlib.contextmanager
def raw_server(respond: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server that reads one request per connection and lets ``respond`` answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            respond(conn)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/jwks"
    finally:
        stop.set()
        listener.close()


def _dribble(body: bytes, pause: float) -> Callable[[socket.socket], None]:
    def respond(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(len(body)):
            conn.sendall(body[i : i + 1])
            time.sleep(pause)

    return respond


# -- JWKS fetching -------------------------------------------------------------------------


def test_slow_body_is_cut_off_by_a_total_deadline(key) -> None:  # type: ignore[no-untyped-def]
    # One byte every 50 ms never trips a 0.5 s per-read timeout; the body took ~30 s before.
    with raw_server(_dribble(_jwks(key), 0.05)) as url:
        started = time.monotonic()
        client = JWKSClient(url, settings=JWKSSettings(timeout=0.5))
        with client, pytest.raises(JWKSFetchError, match="longer than the timeout"):
            client.get_key_set()
        assert time.monotonic() - started < 1.5


def test_slow_body_async(key) -> None:  # type: ignore[no-untyped-def]
    async def main(url: str) -> None:
        async with AsyncJWKSClient(url, settings=JWKSSettings(timeout=0.5)) as client:
            with pytest.raises(JWKSFetchError, match="longer than the timeout"):
                await client.get_key_set()

    with raw_server(_dribble(_jwks(key), 0.05)) as url:
        started = time.monotonic()
        asyncio.run(main(url))
        assert time.monotonic() - started < 1.5


def test_slow_headers_async_hit_the_same_deadline() -> None:
    def respond(conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
            conn.sendall(bytes((byte,)))
            time.sleep(0.05)

    async def main(url: str) -> None:
        async with AsyncJWKSClient(url, settings=JWKSSettings(timeout=0.5)) as client:
            with pytest.raises(JWKSFetchError):
                await client.get_key_set()

    with raw_server(respond) as url:
        started = time.monotonic()
        asyncio.run(main(url))
        assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_bomb_is_bounded_while_decoding(
    issuer_server: IssuerServer, encoding: str
) -> None:
    # 64 MiB of spaces compress to ~64 KiB. httpx inflated each network chunk whole before the
    # cap was checked (~150 MB peak for a 200 KB body); now the output is bounded as it is made.
    expanded = b" " * (64 * 1024 * 1024)
    body = gzip.compress(expanded, 9) if encoding == "gzip" else zlib.compress(expanded, 9)
    del expanded
    issuer_server.routes["/jwks"] = Route(200, body, {"Content-Encoding": encoding})
    tracemalloc.start()
    try:
        client = JWKSClient(issuer_server.jwks_uri)
        with client, pytest.raises(JWKSFetchError) as info:
            client.get_key_set()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == "jwks_too_large"
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity"])
def test_encoded_jwks_still_accepted(issuer_server: IssuerServer, key, encoding: str) -> None:  # type: ignore[no-untyped-def]
    plain = _jwks(key)
    body = {"gzip": gzip.compress, "deflate": zlib.compress}.get(encoding, bytes)(plain)
    issuer_server.routes["/jwks"] = Route(200, body, {"Content-Encoding": encoding})
    with JWKSClient(issuer_server.jwks_uri) as client:
        assert "k1" in client.get_key_set()
    sent = issuer_server.jwks_fetches()[-1].headers
    assert sent["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("br", b"\x00"), ("gzip", b"not gzip"), ("gzip", gzip.compress(b"{")[:-4])],
)
def test_unknown_corrupt_or_truncated_encodings_are_fetch_errors(
    issuer_server: IssuerServer, encoding: str, body: bytes
) -> None:
    issuer_server.routes["/jwks"] = Route(200, body, {"Content-Encoding": encoding})
    with JWKSClient(issuer_server.jwks_uri) as client, pytest.raises(JWKSFetchError):
        client.get_key_set()


@pytest.mark.parametrize("etag", ['"\xe9t\xe9"', '"a\x7fb"', 'W/"\xff"'])
def test_non_ascii_etag_is_not_sent_back(
    issuer_server: IssuerServer,
    clock: FakeClock,
    key,
    etag: str,  # type: ignore[no-untyped-def]
) -> None:
    # Sent back in If-None-Match it made every later refresh raise UnicodeEncodeError.
    issuer_server.publish(key, max_age=60, etag=etag.encode("latin-1").decode("latin-1"))
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        assert "k1" in client.get_key_set()
        clock.advance(61)
        assert "k1" in client.get_key_set()
    fetches = issuer_server.jwks_fetches()
    assert len(fetches) == 2
    assert "if-none-match" not in fetches[1].headers


def test_valid_etag_is_still_revalidated(
    issuer_server: IssuerServer, clock: FakeClock, key
) -> None:  # type: ignore[no-untyped-def]
    issuer_server.publish(key, max_age=60, etag='W/"v1-abc"')
    with JWKSClient(issuer_server.jwks_uri, clock=clock) as client:
        client.get_key_set()
        clock.advance(61)
        client.get_key_set()
    assert issuer_server.jwks_fetches()[1].headers["if-none-match"] == 'W/"v1-abc"'


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
    issuer_server: IssuerServer, metadata: bytes
) -> None:
    body = metadata.replace(b"ISS", issuer_server.issuer.encode())
    issuer_server.routes["/.well-known/oauth-authorization-server"] = Route(200, body)
    with JWKSClient(issuer=issuer_server.issuer) as client, pytest.raises(DiscoveryError):
        client.get_key_set()


# -- the verifier ----------------------------------------------------------------------------


@pytest.fixture
def static_verifier(key, clock: FakeClock) -> AccessTokenVerifier:  # type: ignore[no-untyped-def]
    return AccessTokenVerifier(ISSUER, audience=AUDIENCE, keys=KeySet.of(key), clock=clock)


@pytest.mark.parametrize("token", [["a.b.c"], {"t": 1}, bytearray(b"a.b.c"), None, 3])
def test_non_string_tokens_are_invalid_token(
    static_verifier: AccessTokenVerifier, token: object
) -> None:
    # A list or bytearray used to reach the cache lookup and raise TypeError (unhashable).
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
    # RFC 6749 §3.3: a tab or a no-break space used to split one scope into two grants.
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


@pytest.mark.parametrize(
    ("cache_control", "age", "expected"),
    [
        ("max-age=600", "1" + "0" * 400, 30),  # OverflowError before
        ("max-age=1" + "0" * 400, "0", 86400),  # OverflowError before
        ("max-age=1" + "0" * 5000, "0", 86400),
        ("max-age=\u0666\u0660\u0660", "0", 600),  # not ASCII digits: as if absent
        ('max-age="120"', "junk", 120),
        ("max-age=-1", "0", 30),  # negative: not fresh, so the floor
        ("max-age=300", "-5", 300),
    ],
    ids=["huge-age", "huge-max-age", "over-int-limit", "arabic-digits", "quoted", "neg", "neg-age"],
)
def test_cache_control_numbers_are_parsed_strictly(
    cache_control: str, age: str, expected: float
) -> None:
    headers = {"cache-control": cache_control, "age": age}
    assert freshness_lifetime(headers, JWKSSettings()) == expected


def test_slow_headers_sync_hit_the_same_deadline() -> None:
    # A status line and headers sent a byte at a time never trip a per-read timeout.
    def respond(conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
            conn.sendall(bytes((byte,)))
            time.sleep(0.05)

    with raw_server(respond) as url:
        started = time.monotonic()
        client = JWKSClient(url, settings=JWKSSettings(timeout=0.5))
        with client, pytest.raises(JWKSFetchError, match="longer than the timeout"):
            client.get_key_set()
        assert time.monotonic() - started < 1.5


def test_rsa_key_without_alg_verifies_only_rs256_by_default(clock: FakeClock) -> None:
    # The default allow-list used to be every algorithm, so an RSA key that declares no alg
    # accepted RS384/RS512/PS256/... too: the token header widened what the key is bound to.
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
@example(header={}, claims={"exp": 10**400})  # the findings above, always tried first
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
