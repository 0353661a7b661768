"""The token endpoint answered by the HTTP protocol is the token endpoint answered through ASGI.

Two servers on one database, as in test_prebuilt_protocol.py: one with the protocol ``sealring
serve`` runs (:class:`PrebuiltHttpToolsProtocol`, which answers a plain ``client_credentials``
request itself through :class:`~sealring.server.endpoints.token.DirectToken`), one with
uvicorn's plain httptools protocol. Raw HTTP/1.1 over a socket; a spy on the ASGI entry tells
which requests the protocol answered itself. A client is answered directly only once the
client cache holds it, so each test first warms the cache with one request.
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sealring.keys.errors import HSMError
from sealring.server.http.middleware import RequestContext
from sealring.server.logging import access_log
from tests.helpers.raw_http import access_entries, port_of, read_response
from tests.helpers.server import (
    API,
    LiveServer,
    access_log_lines,
    running_server,
)

PREFIX = "/tenant"
TOKEN_PATHS = ["/token", PREFIX + "/token"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('direct') / 'sealring.db'}"
    with (
        running_server(url, PREFIX, client_cache_ttl=3600.0) as fast,
        running_server(url, PREFIX, http=HttpToolsProtocol, client_cache_ttl=3600.0) as plain,
    ):
        yield fast, plain


@pytest.fixture(scope="module")
def clients(servers: tuple[LiveServer, LiveServer]) -> dict[str, tuple[str, str]]:
    """``kind -> (client_id, secret)`` registered once for the module (the secret of a public
    or assertion client is empty)."""
    fast, _ = servers
    made = {}
    for kind, kwargs in {
        "basic": {"scope": "read write", "audiences": [API]},
        "post": {"auth_method": "client_secret_post", "audiences": [API]},
        "no_cc": {"grant_types": ["authorization_code"], "redirect_uris": ["https://c.test/cb"]},
        "public": {
            "public": True,
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://c.test/cb"],
        },
    }.items():
        client_id, secret = fast.create_client(**kwargs)
        made[kind] = (client_id, secret or "")
    return made


def basic(client: tuple[str, str]) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()


def post(
    body: str,
    *headers: str,
    path: str = "/token",
    version: str = "1.1",
    content_type: str | None = "application/x-www-form-urlencoded",
) -> bytes:
    lines = [f"POST {path} HTTP/{version}", "Host: 127.0.0.1"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += [*headers, f"Content-Length: {len(body.encode())}", "", body]
    return "\r\n".join(lines).encode()


CC = "grant_type=client_credentials"


def exchange(
    server: LiveServer, *parts: bytes, responses: int = 1, pause: float = 0
) -> list[bytes]:
    """Send ``parts`` on one connection (one write each, ``pause`` seconds apart); read
    ``responses`` responses (a ``100 Continue`` counts as one)."""
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as sock:
        for part in parts:
            sock.sendall(part)
            if pause:
                time.sleep(pause)
        buffer = bytearray()
        return [read_response(sock, buffer) for _ in range(responses)]


def normalise(server: LiveServer, answer: bytes) -> bytes:
    """The parts that differ between two answers to one request: ``Date``, the access token
    (another ``jti`` and ``iat``, another issuer port) and so the length, the server's URL."""
    answer = re.sub(rb"\r\ndate: [^\r]+\r\n", b"\r\ndate: -\r\n", answer)
    answer = re.sub(rb'"access_token":"[^"]+"', b'"access_token":"T"', answer)
    answer = re.sub(rb"\r\ncontent-length: \d+\r\n", b"\r\ncontent-length: N\r\n", answer)
    return answer.replace(f"127.0.0.1:{port_of(server)}".encode(), b"HOST")


def token_of(answer: bytes) -> str:
    token: str = json.loads(answer.split(b"\r\n\r\n", 1)[1])["access_token"]
    return token


def warm(servers: tuple[LiveServer, LiveServer], *clients: tuple[str, str]) -> None:
    """Put ``clients`` into both servers' client caches (a request through ASGI each)."""
    for server in servers:
        for client in clients:
            server.context.clients.get(client[0])


@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_the_protocol_answers_client_credentials_as_the_asgi_path_does(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
    path: str,
) -> None:
    fast, plain = servers
    warm(servers, clients["basic"])
    request = post(CC + "&scope=read", basic(clients["basic"]), "X-Request-ID: rid-t", path=path)
    [a] = exchange(fast, request)
    assert asgi_calls == []  # answered by the protocol
    [b] = exchange(plain, request)
    assert asgi_calls == [f"POST {path}"]
    assert normalise(fast, a) == normalise(plain, b)
    head, body = a.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[1].startswith(b"date: ")
    assert lines[:1] + lines[2:] == [
        b"HTTP/1.1 200 OK",
        b"server: uvicorn",  # the test server's default header, after the date
        b"cache-control: no-store",
        b"pragma: no-cache",
        f"content-length: {len(body)}".encode(),
        b"content-type: application/json",
        b"x-request-id: rid-t",
        b"x-content-type-options: nosniff",
    ]
    answer = json.loads(body)
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope"}
    assert answer["scope"] == "read"
    verified = fast.context.verifier.verify(answer["access_token"])
    assert verified.claims["client_id"] == clients["basic"][0]
    assert verified.claims["aud"] == API
    assert verified.claims["scope"] == "read"
    assert abs(verified.claims["iat"] - time.time()) < 5  # type: ignore[operator]


def test_client_secret_post_is_answered_directly_too(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
) -> None:
    fast, plain = servers
    client_id, secret = clients["post"]
    warm(servers, clients["post"])
    request = post(f"{CC}&client_id={client_id}&client_secret={secret}", "X-Request-ID: rid-p")
    [a] = exchange(fast, request)
    [b] = exchange(plain, request)
    assert asgi_calls == ["POST /token"]  # the plain server's only
    assert normalise(fast, a) == normalise(plain, b)
    assert fast.context.verifier.verify(token_of(a)).claims["sub"] == client_id


def _sample(server: LiveServer, name: str, labels: dict[str, str]) -> float:
    return server.context.metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_direct_answer_is_logged_and_counted_once_like_the_asgi_paths(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
) -> None:
    client_id = clients["basic"][0]
    warm(servers, clients["basic"])
    with access_log_lines() as stream:
        for server, rid in zip(servers, ("rid-fast", "rid-plain"), strict=True):
            issued = ("sealring_tokens_issued_total", {"grant_type": "client_credentials",
                                                       "client_id": client_id})  # fmt: skip
            timed = ("sealring_request_duration_seconds_count", {"endpoint": "token"})
            before = _sample(server, *issued), _sample(server, *timed)
            exchange(server, post(CC, basic(clients["basic"]), f"X-Request-ID: {rid}"))
            assert (_sample(server, *issued), _sample(server, *timed)) == (
                before[0] + 1,
                before[1] + 1,
            )
        entries = access_entries(stream)
    assert asgi_calls == ["POST /token"]
    common = {"level": "info", "logger": "sealring.server", "msg": "request", "method": "POST",
              "path": "/token", "status": 200, "client_id": client_id}  # fmt: skip
    assert entries == [
        {**common, "request_id": "rid-fast"},
        {**common, "request_id": "rid-plain"},
    ]


def test_a_refused_request_has_its_side_effects_once(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
) -> None:
    """Declining costs the direct path nothing: one access-log line, one error counted, no
    token counted, whatever way the request went."""
    fast, _ = servers
    client_id = clients["basic"][0]
    warm(servers, clients["basic"])
    error = ("sealring_oauth_errors_total", {"endpoint": "token", "error": "invalid_client"})
    issued = ("sealring_tokens_issued_total", {"grant_type": "client_credentials",
                                               "client_id": client_id})  # fmt: skip
    before = _sample(fast, *error), _sample(fast, *issued)
    with access_log_lines() as stream:
        [answer] = exchange(fast, post(CC, basic((client_id, "wrong")), "X-Request-ID: rid-x"))
        access_log.flush()
        lines = stream.getvalue().splitlines()
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert (_sample(fast, *error), _sample(fast, *issued)) == (before[0] + 1, before[1])
    assert [json.loads(line)["request_id"] for line in lines] == ["rid-x"]
    assert asgi_calls == ["POST /token"]


# Requests the protocol must leave to the ASGI path: (name, request, status line start,
# number of responses).
def _fall_back(clients: dict[str, tuple[str, str]]) -> dict[str, tuple[bytes, bytes, int]]:
    good = basic(clients["basic"])
    public_id = clients["public"][0]
    return {
        "trailing slash": (post(CC, good, path="/token/"), b"HTTP/1.1 307", 1),
        "other path": (post(CC, good, path="/tokens"), b"HTTP/1.1 404", 1),
        "GET": (
            b"GET /token HTTP/1.1\r\nHost: x\r\n" + good.encode() + b"\r\n\r\n",
            b"HTTP/1.1 405",
            1,
        ),
        "query string": (post(CC, good, path="/token?x=1"), b"HTTP/1.1 200", 1),
        "chunked": (
            b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\n" + good.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"10\r\ngrant_type=clien\r\nd\r\nt_credentials\r\n0\r\n\r\n",
            b"HTTP/1.1 200",
            1,
        ),
        "Expect": (post(CC, good, "Expect: 100-continue"), b"HTTP/1.1 100", 2),
        "bad credentials": (post(CC, basic((clients["basic"][0], "nope"))), b"HTTP/1.1 401", 1),
        "malformed Basic": (post(CC, "Authorization: Basic !!"), b"HTTP/1.1 401", 1),
        "two Authorization headers": (post(CC, good, good), b"HTTP/1.1 400", 1),
        "unknown client": (post(CC, basic(("nobody", "x"))), b"HTTP/1.1 401", 1),
        "unknown grant_type": (post("grant_type=password", good), b"HTTP/1.1 400", 1),
        "missing grant_type": (post("scope=read", good), b"HTTP/1.1 400", 1),
        "repeated grant_type": (post(CC + "&" + CC, good), b"HTTP/1.1 400", 1),
        "repeated scope": (post(CC + "&scope=read&scope=read", good), b"HTTP/1.1 400", 1),
        "invalid scope": (post(CC + "&scope=admin", good), b"HTTP/1.1 400", 1),
        "invalid target": (post(CC + "&resource=https://x.test", good), b"HTTP/1.1 400", 1),
        "two methods": (post(CC + "&client_secret=x", good), b"HTTP/1.1 400", 1),
        "public client": (post(f"{CC}&client_id={public_id}"), b"HTTP/1.1 401", 1),
        "not registered for the grant": (post(CC, basic(clients["no_cc"])), b"HTTP/1.1 400", 1),
        "not a form": (post(CC, good, content_type="application/json"), b"HTTP/1.1 400", 1),
        "no Content-Type": (post(CC, good, content_type=None), b"HTTP/1.1 400", 1),
        "latin-1 charset": (
            post(CC, good, content_type="application/x-www-form-urlencoded; charset=latin-1"),
            b"HTTP/1.1 400",
            1,
        ),
        "bad escape": (post(CC + "&scope=%zz", good), b"HTTP/1.1 400", 1),
        "not UTF-8": (post(CC, good)[:-4] + b"\xff\xfe\xfd\xfc", b"HTTP/1.1 400", 1),
        "too large": (post(CC + "&x=" + "a" * 17000, good), b"HTTP/1.1 413", 1),
        "Connection: close": (post(CC, good, "Connection: close"), b"HTTP/1.1 200", 1),
        "HTTP/1.0": (post(CC, good, "Connection: keep-alive", version="1.0"), b"HTTP/1.1 200", 1),
        "X-Forwarded-For": (post(CC, good, "X-Forwarded-For: 192.0.2.7"), b"HTTP/1.1 200", 1),
    }


FALL_BACK_NAMES = list(_fall_back({k: ("id", "secret") for k in ("basic", "public", "no_cc")}))


@pytest.mark.parametrize("name", FALL_BACK_NAMES)
def test_anything_else_goes_through_asgi_and_answers_as_before(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
    name: str,
) -> None:
    request, status, count = _fall_back(clients)[name]
    warm(servers, clients["basic"], clients["no_cc"], clients["public"])
    answers = []
    for server in servers:
        received = exchange(server, request, responses=count)
        text = b"".join(received)
        answers.append(normalise(server, re.sub(rb"x-request-id: [^\r]+", b"rid", text)))
    assert answers[0] == answers[1]
    assert answers[0].startswith(status), answers[0]
    assert len(asgi_calls) == 2  # neither server answered it below ASGI


def test_a_body_in_several_writes_is_answered_directly(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
) -> None:
    fast, _ = servers
    warm(servers, clients["basic"])
    request = post(CC + "&scope=write", basic(clients["basic"]))
    head_end = request.index(b"\r\n\r\n") + 4
    parts = [request[: head_end - 3], request[head_end - 3 : head_end + 5], request[head_end + 5 :]]
    [answer] = exchange(fast, *parts, pause=0.05)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert fast.context.verifier.verify(token_of(answer)).claims["scope"] == "write"
    assert asgi_calls == []


def test_pipelined_requests_are_answered_in_order_whichever_way_each_goes(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
) -> None:
    fast, plain = servers
    warm(servers, clients["basic"])
    good, bad = basic(clients["basic"]), basic((clients["basic"][0], "nope"))
    requests = [
        post(CC, good, "X-Request-ID: r1"),
        b"GET /jwks.json HTTP/1.1\r\nHost: x\r\nX-Request-ID: r2\r\n\r\n",
        post(CC, bad, "X-Request-ID: r3"),
        post(CC, good, "X-Request-ID: r4"),
        post(CC + "&scope=nope", good, "X-Request-ID: r5"),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: r6\r\n\r\n",
        post(CC, good, "X-Request-ID: r7"),
    ]
    a = exchange(fast, b"".join(requests), responses=len(requests))
    b = exchange(plain, b"".join(requests), responses=len(requests))
    assert [normalise(fast, r) for r in a] == [normalise(plain, r) for r in b]
    ids = [re.search(rb"x-request-id: (r\d)", r)[1].decode() for r in a]  # type: ignore[index]
    assert ids == ["r1", "r2", "r3", "r4", "r5", "r6", "r7"]
    assert [r[9:12] for r in a] == [b"200", b"200", b"401", b"200", b"400", b"200", b"200"]
    assert fast.context.verifier.verify(token_of(a[-1]))


def test_keep_alive_serves_many_direct_answers_on_one_connection(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
) -> None:
    fast, _ = servers
    warm(servers, clients["basic"])
    with socket.create_connection(("127.0.0.1", port_of(fast)), timeout=10) as sock:
        buffer = bytearray()
        for i in range(20):
            sock.sendall(post(CC, basic(clients["basic"]), f"X-Request-ID: k{i}"))
            assert f"x-request-id: k{i}\r\n".encode() in read_response(sock, buffer)
    assert asgi_calls == []


class _RefusingSigner:
    """A signer whose key is there but whose token refuses the operation (an HSM session lost
    between the key lookup and the signature)."""

    def __init__(self, real: Any) -> None:
        self.alg, self.kid = real.alg, real.kid

    def sign(self, signing_input: bytes) -> bytes:
        raise HSMError("the token refused to sign with key k: SessionHandleInvalid")


def _no_signer(alg: str) -> None:
    raise RuntimeError("HSM session lost")


@pytest.mark.parametrize("failure", ["no signer", "signature refused"])
def test_a_signing_failure_is_a_503_answered_by_the_asgi_path(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    warm(servers, clients["basic"])
    answers = []
    for server in servers:
        real = server.context.keys.signer
        broken = _no_signer if failure == "no signer" else lambda alg: _RefusingSigner(real(alg))
        monkeypatch.setattr(server.context.keys, "signer", broken)
        [answer] = exchange(server, post(CC, basic(clients["basic"]), "X-Request-ID: rid-s"))
        answers.append(normalise(server, answer))
    assert answers[0] == answers[1]
    assert answers[0].startswith(b"HTTP/1.1 503 ")  # never the opaque 500
    assert b'"error":"temporarily_unavailable"' in answers[0]
    assert b"SessionHandleInvalid" not in answers[0]
    assert asgi_calls == ["POST /token", "POST /token"]


def test_a_failure_inside_the_direct_answer_falls_back_to_asgi(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a 400 from the parser callback: the request is answered the normal way."""
    fast, _ = servers
    warm(servers, clients["basic"])

    def broken(self: RequestContext, *args: object) -> bytes | None:
        raise RuntimeError("metrics registry gone")

    monkeypatch.setattr(RequestContext, "posted_answer", broken)
    [answer] = exchange(fast, post(CC, basic(clients["basic"])))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert fast.context.verifier.verify(token_of(answer))
    assert asgi_calls == ["POST /token"]


@pytest.mark.parametrize(
    ("limits", "statuses", "direct"),
    [
        # The client's bucket: 2 tokens. The first request goes through ASGI (the client is
        # not cached yet), the second directly; the third finds the bucket empty.
        ({"rate_limit": 0.001, "rate_burst": 2}, [200, 200, 429, 429], 1),
        # The caller address's bucket: 3 tokens.
        ({"ip_rate_limit": 0.001, "ip_rate_burst": 3}, [200, 200, 200, 429], 2),
        (
            {"rate_limit": 0.001, "rate_burst": 3, "ip_rate_limit": 0.001, "ip_rate_burst": 2},
            [200, 200, 429, 429],
            1,
        ),
    ],
)
def test_the_rate_limits_count_each_direct_answer_once(
    tmp_path_factory: pytest.TempPathFactory,
    asgi_calls: list[str],
    limits: dict[str, float],
    statuses: list[int],
    direct: int,
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'sealring.db'}"
    answers = []
    with (
        running_server(url, **limits) as fast,
        running_server(url, http=HttpToolsProtocol, **limits) as plain,
    ):
        client = fast.create_client(audiences=[API])
        for server in (fast, plain):
            request = post(CC, basic((client[0], client[1] or "")), "X-Request-ID: rid-l")
            got = [exchange(server, request)[0] for _ in statuses]
            assert [int(r[9:12]) for r in got] == statuses
            answers.append([normalise(server, r) for r in got])
        assert answers[0] == answers[1]
        assert b"retry-after: " in answers[0][-1]
    # The fast server answered the successes after the first itself, the refusals through ASGI.
    assert len(asgi_calls) == 2 * len(statuses) - direct


def test_a_rate_limit_in_redis_sends_every_request_through_asgi(
    tmp_path: Path, asgi_calls: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'sealring.db'}"
    with running_server(
        url, rate_limit=1000, redis_url="redis://127.0.0.1:6379/0", ip_rate_limit=0
    ) as server:
        client = server.create_client(audiences=[API])
        request = post(CC, basic((client[0], client[1] or "")))
        answers = [exchange(server, request)[0] for _ in range(3)]
    assert all(answer.startswith(b"HTTP/1.1 200 OK\r\n") for answer in answers)
    assert asgi_calls == ["POST /token"] * 3


def test_the_access_log_off_changes_nothing_but_the_log(
    servers: tuple[LiveServer, LiveServer],
    clients: dict[str, tuple[str, str]],
    asgi_calls: list[str],
) -> None:
    fast, _ = servers
    warm(servers, clients["basic"])
    stream = io.StringIO()
    old = access_log.stream, access_log.enabled
    access_log.flush()
    access_log.stream, access_log.enabled = stream, False
    try:
        [answer] = exchange(fast, post(CC, basic(clients["basic"])))
        access_log.flush()
    finally:
        access_log.stream, access_log.enabled = old
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert stream.getvalue() == ""
    assert asgi_calls == []
