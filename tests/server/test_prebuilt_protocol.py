"""The prebuilt answers written by the HTTP protocol are the bytes the ASGI path sends.

Two servers on one database: one with the protocol ``sealring serve`` runs
(:class:`PrebuiltHttpToolsProtocol`), one with uvicorn's plain httptools protocol; raw HTTP/1.1
over a socket, so every byte counts, header order and framing included (only the ``Date`` value
and the server's own URL in the metadata differ between two servers). A spy on the ASGI entry
tells which requests the protocol answered itself and which went the normal way.
"""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sealring.server.http.middleware import MAX_HEADER_BYTES, RequestContext
from tests.helpers.raw_http import access_entries, port_of, read_response
from tests.helpers.server import LiveServer, access_log_lines, running_server

PREFIX = "/tenant"
# Every path whose GET answer is prebuilt, for an issuer with a path.
PREBUILT_PATHS = [
    "/jwks.json",
    PREFIX + "/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration" + PREFIX,
    "/.well-known/oauth-authorization-server" + PREFIX,
    PREFIX + "/.well-known/openid-configuration",
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('prebuilt') / 'sealring.db'}"
    with (
        running_server(url, PREFIX) as fast,
        running_server(url, PREFIX, http=HttpToolsProtocol) as plain,
    ):
        yield fast, plain


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    with access_log_lines() as stream:
        yield stream


def exchange(server: LiveServer, *requests: bytes) -> list[bytes]:
    """Send ``requests`` in one write on one connection; their responses, normalised (the
    ``Date`` value, and the server's port where the metadata names its URLs)."""
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as sock:
        sock.sendall(b"".join(requests))
        buffer = bytearray()
        answers = [read_response(sock, buffer) for _ in requests]
    return [normalise(server, answer) for answer in answers]


def normalise(server: LiveServer, answer: bytes) -> bytes:
    answer = re.sub(rb"\r\ndate: [^\r]+\r\n", b"\r\ndate: -\r\n", answer)
    return answer.replace(f"127.0.0.1:{port_of(server)}".encode(), b"HOST")


def get(path: str, *headers: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


@pytest.mark.parametrize("path", PREBUILT_PATHS)
def test_the_protocol_answers_a_prebuilt_path_with_the_asgi_paths_bytes(
    servers: tuple[LiveServer, LiveServer], asgi_calls: list[str], path: str
) -> None:
    fast, plain = servers
    request = get(path, "X-Request-ID: rid-prebuilt")
    [a] = exchange(fast, request)
    assert asgi_calls == []  # answered by the protocol
    [b] = exchange(plain, request)
    assert asgi_calls == [f"GET {path}"]  # the same request, through ASGI
    assert a == b
    head = a.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert head[0] == b"HTTP/1.1 200 OK"
    assert head[1] == b"date: -"
    assert b"x-request-id: rid-prebuilt" in head
    assert b"x-content-type-options: nosniff" in head
    assert b"content-type: application/json" in head
    assert any(line.startswith(b"cache-control: public, max-age=") for line in head)
    assert any(line.startswith(b"etag: ") for line in head) == path.endswith("jwks.json")


def test_a_request_id_is_made_when_none_or_a_malformed_one_is_sent(
    servers: tuple[LiveServer, LiveServer], asgi_calls: list[str]
) -> None:
    fast, _ = servers
    bad = "X-Request-ID: " + "a" * 65
    first, second, third = exchange(
        fast, get("/jwks.json"), get("/jwks.json"), get("/jwks.json", bad)
    )
    ids = [re.search(rb"\r\nx-request-id: ([^\r]+)\r\n", r)[1] for r in (first, second, third)]  # type: ignore[index]
    assert len(set(ids)) == 3
    assert b"a" * 65 not in third
    assert asgi_calls == []


# Requests the protocol must leave to the ASGI path, each with what proves the answer right.
FALL_BACK: list[tuple[str, bytes, bytes]] = [
    ("HEAD", get("/jwks.json", method="HEAD"), b"HTTP/1.1 200 OK"),
    ("query", get("/jwks.json?x=1"), b"HTTP/1.1 200 OK"),
    ("percent-encoded", get("/jwks%2Ejson"), b"HTTP/1.1 200 OK"),
    ("trailing slash", get("/jwks.json/"), b"HTTP/1.1 307"),
    ("other method", get("/jwks.json", "Content-Length: 0", method="POST"), b"HTTP/1.1 405"),
    ("a body", get("/jwks.json", "Content-Length: 2") + b"{}", b"HTTP/1.1 200 OK"),
    ("If-None-Match", get("/jwks.json", 'If-None-Match: "x"'), b"HTTP/1.1 200 OK"),
    ("HTTP/1.0", get("/jwks.json", version="1.0"), b"HTTP/1.1 200 OK"),
    ("Connection: close", get("/jwks.json", "Connection: close"), b"HTTP/1.1 200 OK"),
    ("Expect", get("/jwks.json", "Expect: 100-continue"), b"HTTP/1.1 200 OK"),
    (
        "oversized headers",
        get("/jwks.json", "X-Padding: " + "p" * MAX_HEADER_BYTES),
        b"HTTP/1.1 431",
    ),
]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [(request, status) for _, request, status in FALL_BACK],
    ids=[name for name, _, _ in FALL_BACK],
)
def test_anything_but_a_plain_get_goes_through_asgi_and_answers_as_before(
    servers: tuple[LiveServer, LiveServer],
    asgi_calls: list[str],
    request_bytes: bytes,
    status: bytes,
) -> None:
    answers = []
    for server in servers:
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as sock:
            sock.sendall(request_bytes)
            received = bytearray()
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and (
                    b"connection: close" in received or len(received) > 64
                ):
                    sock.settimeout(0.3)
                    try:
                        while more := sock.recv(65536):
                            received += more
                    except TimeoutError:
                        pass
                    break
        answers.append(normalise(server, re.sub(rb"x-request-id: [^\r]+", b"rid", received)))
    assert answers[0] == answers[1]
    assert answers[0].startswith(status)
    assert len(asgi_calls) == 2  # neither server answered it below ASGI


def test_a_conditional_request_still_gets_its_304(
    servers: tuple[LiveServer, LiveServer], asgi_calls: list[str]
) -> None:
    fast, _ = servers
    [ok] = exchange(fast, get("/jwks.json"))
    etag = re.search(rb"\r\netag: ([^\r]+)\r\n", ok)[1].decode()  # type: ignore[index]
    [not_modified] = exchange(fast, get("/jwks.json", f"If-None-Match: {etag}"))
    assert not_modified.startswith(b"HTTP/1.1 304 Not Modified\r\n")
    assert asgi_calls == ["GET /jwks.json"]


def test_pipelined_requests_are_answered_in_order_whichever_way_each_goes(
    servers: tuple[LiveServer, LiveServer], asgi_calls: list[str]
) -> None:
    fast, plain = servers
    requests = [
        get("/healthz", "X-Request-ID: r1"),
        get("/jwks.json", "X-Request-ID: r2"),
        get("/.well-known/openid-configuration", "X-Request-ID: r3"),
        get("/jwks.json?q", "X-Request-ID: r4"),
        get("/jwks.json", "X-Request-ID: r5"),
    ]
    a = exchange(fast, *requests)
    b = exchange(plain, *requests)
    assert a == b
    assert [re.search(rb"x-request-id: (r\d)", r)[1] for r in a] == [  # type: ignore[index]
        b"r1",
        b"r2",
        b"r3",
        b"r4",
        b"r5",
    ]


def test_keep_alive_serves_many_answers_on_one_connection(
    servers: tuple[LiveServer, LiveServer], asgi_calls: list[str]
) -> None:
    fast, _ = servers
    with socket.create_connection(("127.0.0.1", port_of(fast)), timeout=10) as sock:
        buffer = bytearray()
        for i in range(20):
            sock.sendall(get("/jwks.json", f"X-Request-ID: k{i}"))
            assert f"x-request-id: k{i}\r\n".encode() in read_response(sock, buffer)
    assert asgi_calls == []


def _count(server: LiveServer, endpoint: str) -> float:
    value = server.context.metrics.registry.get_sample_value(
        "sealring_request_duration_seconds_count", {"endpoint": endpoint}
    )
    return value or 0.0


def test_the_protocols_answers_are_logged_and_measured_like_the_asgi_paths(
    servers: tuple[LiveServer, LiveServer], access_lines: io.StringIO, asgi_calls: list[str]
) -> None:
    lines = []
    for server, rid in zip(servers, ("rid-fast", "rid-plain"), strict=True):
        before = _count(server, "jwks"), _count(server, "discovery")
        exchange(
            server,
            get(PREFIX + "/jwks.json", f"X-Request-ID: {rid}"),
            get("/.well-known/openid-configuration", f"X-Request-ID: {rid}"),
        )
        assert (_count(server, "jwks"), _count(server, "discovery")) == (
            before[0] + 1,
            before[1] + 1,
        )
        lines += access_entries(access_lines)
    assert asgi_calls == [f"GET {PREFIX}/jwks.json", "GET /.well-known/openid-configuration"]
    common = {"level": "info", "logger": "sealring.server", "msg": "request", "method": "GET",
              "status": 200, "client_id": None}  # fmt: skip
    assert lines == [
        {**common, "request_id": "rid-fast", "path": PREFIX + "/jwks.json"},
        {**common, "request_id": "rid-fast", "path": "/.well-known/openid-configuration"},
        {**common, "request_id": "rid-plain", "path": PREFIX + "/jwks.json"},
        {**common, "request_id": "rid-plain", "path": "/.well-known/openid-configuration"},
    ]


def test_a_new_key_set_is_served_by_the_protocol_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    with running_server(url) as server:
        [before] = exchange(server, get("/jwks.json"))
        server.context.keys.rotate()  # type: ignore[attr-defined]
        [after] = exchange(server, get("/jwks.json"))
    etag = re.compile(rb"\r\netag: ([^\r]+)\r\n")
    assert etag.search(before)[1] != etag.search(after)[1]  # type: ignore[index]
    kids = [
        {k["kid"] for k in json.loads(r.split(b"\r\n\r\n", 1)[1])["keys"]} for r in (before, after)
    ]
    assert kids[0] < kids[1]


def test_a_failure_building_the_answer_falls_back_to_asgi(
    servers: tuple[LiveServer, LiveServer],
    asgi_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a 400 from the parser callback: the request is answered the normal way."""
    fast, plain = servers

    def broken(self: RequestContext, path: str, incoming: str | None) -> bytes | None:
        raise RuntimeError("metrics registry gone")

    monkeypatch.setattr(RequestContext, "prebuilt_answer", broken)
    request = get("/jwks.json", "X-Request-ID: rid-broken")
    [a] = exchange(fast, request)
    [b] = exchange(plain, request)
    assert a == b
    assert a.startswith(b"HTTP/1.1 200 OK\r\n")
    assert asgi_calls == ["GET /jwks.json", "GET /jwks.json"]
