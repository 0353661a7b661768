"""The hot endpoints answered without Starlette's router answer exactly as through it.

Two servers on one database, one with the direct dispatch of ``http/middleware.py`` and one
without (``create_app(direct=False)``), get the same requests; status, header list (in order),
body, access-log line and metrics must not tell them apart.
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from sealring.server.app import _direct_routes, _routes
from sealring.server.logging import access_log
from sealring.server.settings import Settings
from tests.helpers.server import LiveServer, access_log_lines, running_server

API = "https://api.example.test"
PREFIX = "/tenant"


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, LiveServer]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('direct') / 'sealring.db'}"
    with (
        running_server(url, PREFIX) as direct,
        running_server(url, PREFIX, direct=False) as routed,
    ):
        yield direct, routed


@pytest.fixture(scope="module")
def client(servers: tuple[LiveServer, LiveServer]) -> tuple[str, str]:
    client_id, secret = servers[0].create_client(scope="read", audiences=[API])
    assert secret is not None
    return client_id, secret


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    with access_log_lines() as stream:
        yield stream


def origin(server: LiveServer) -> str:
    return server.url.removesuffix(PREFIX)


def exchange(
    server: LiveServer, method: str, path: str, rid: str, **kwargs: Any
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, every response header in order (``date`` without its value), body with the
    server's own URL replaced; checks ``content-length`` against the body it came with."""
    headers = {"X-Request-ID": rid, **kwargs.pop("headers", {})}
    response = httpx.request(method, origin(server) + path, headers=headers, **kwargs)
    body = response.content.replace(origin(server).encode(), b"ORIGIN")
    listed = []
    for name, value in response.headers.raw:
        name_s, value_s = name.decode().lower(), value.decode()
        if name_s == "date":
            value_s = "-"
        elif name_s == "content-length":
            assert int(value_s) == len(response.content)
            value_s = "n"
        listed.append((name_s, value_s))
    return response.status_code, listed, body


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/jwks.json", {}),
    ("GET", PREFIX + "/jwks.json", {}),
    ("GET", "/jwks.json", {"headers": {"If-None-Match": '"not-this-one"'}}),
    ("GET", "/.well-known/openid-configuration", {}),
    ("GET", "/.well-known/oauth-authorization-server" + PREFIX, {}),
    ("GET", PREFIX + "/.well-known/openid-configuration", {}),
    ("POST", "/token", {"data": {"grant_type": "client_credentials"}, "auth": ("x", "y")}),
    ("POST", "/token", {"data": {"scope": "read"}}),
    ("POST", PREFIX + "/token", {"content": b"{}", "headers": {"Content-Type": "text/json"}}),
    ("POST", "/token", {"data": {"grant_type": "password"}, "auth": ("x", "y")}),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    REQUESTS,
    ids=[f"{m} {p} {i}" for i, (m, p, _) in enumerate(REQUESTS)],
)
def test_direct_and_routed_answers_are_identical(
    servers: tuple[LiveServer, LiveServer], method: str, path: str, kwargs: dict[str, Any]
) -> None:
    direct, routed = servers
    a = exchange(direct, method, path, "rid-1", **kwargs)
    b = exchange(routed, method, path, "rid-1", **kwargs)
    assert a == b
    assert ("x-content-type-options", "nosniff") in a[1]
    assert ("x-request-id", "rid-1") in a[1]


def test_a_conditional_jwks_request_is_identical(servers: tuple[LiveServer, LiveServer]) -> None:
    direct, routed = servers
    etag = httpx.get(direct.url + "/jwks.json").headers["etag"]
    for tag in (etag, "W/" + etag, f'"other", {etag}', "*"):
        a = exchange(direct, "GET", "/jwks.json", "rid-2", headers={"If-None-Match": tag})
        b = exchange(routed, "GET", "/jwks.json", "rid-2", headers={"If-None-Match": tag})
        assert a == b
        assert a[0] == 304
        assert a[2] == b""
        assert ("etag", etag) in a[1]


def test_an_issued_token_response_is_identical_but_for_the_token(
    servers: tuple[LiveServer, LiveServer], client: tuple[str, str]
) -> None:
    answers = []
    for server in servers:
        status, headers, body = exchange(
            server, "POST", "/token", "rid-3",
            data={"grant_type": "client_credentials", "scope": "read"}, auth=client,
        )  # fmt: skip
        document = json.loads(body)
        assert document.pop("access_token").count(".") == 2
        answers.append((status, headers, document))
    assert answers[0] == answers[1]
    assert answers[0][0] == 200
    assert answers[0][2] == {"token_type": "Bearer", "expires_in": 600, "scope": "read"}


def _spy_router(
    server: LiveServer, seen: list[str]
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    original = server.app.router.middleware_stack

    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(f"{scope['method']} {scope['path']}")
        await original(scope, receive, send)

    server.app.router.middleware_stack = spy
    return original


def test_only_the_hot_endpoints_skip_the_router(
    servers: tuple[LiveServer, LiveServer], client: tuple[str, str]
) -> None:
    direct, _ = servers
    seen: list[str] = []
    original = _spy_router(direct, seen)
    try:
        with httpx.Client(base_url=origin(direct)) as http:
            assert http.get("/jwks.json").status_code == 200
            assert http.get(PREFIX + "/jwks.json").status_code == 200
            assert http.get("/.well-known/openid-configuration").status_code == 200
            form = {"grant_type": "client_credentials"}
            assert http.post("/token", data=form, auth=client).status_code == 200
            assert http.post(PREFIX + "/token", data=form, auth=client).status_code == 200
            assert seen == []
            # HEAD, other methods, a trailing slash and every other route: Starlette, as before.
            assert http.head("/jwks.json").status_code == 200
            assert http.get("/token").status_code == 405
            assert http.post("/jwks.json").status_code == 405
            assert http.get("/jwks.json/").status_code in (307, 404)
            assert http.get("/healthz").status_code == 200
    finally:
        direct.app.router.middleware_stack = original
    assert seen == [
        "HEAD /jwks.json",
        "GET /token",
        "POST /jwks.json",
        "GET /jwks.json/",
        "GET /healthz",
    ]


def _sample(server: LiveServer, name: str, labels: dict[str, str]) -> float:
    value = server.context.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def test_both_ways_log_and_measure_alike(
    servers: tuple[LiveServer, LiveServer], client: tuple[str, str], access_lines: io.StringIO
) -> None:
    requests: list[tuple[str, str, str, dict[str, Any]]] = [
        ("token", "POST", "/token", {"data": {"grant_type": "client_credentials"}, "auth": client}),
        ("token", "POST", "/token", {"data": {"grant_type": "client_credentials"}, "auth": ("x", "y")}),
        ("jwks", "GET", PREFIX + "/jwks.json", {}),
        ("discovery", "GET", "/.well-known/openid-configuration", {}),
    ]  # fmt: skip
    counted = "sealring_request_duration_seconds_count"
    for server, rid in zip(servers, ("rid-direct", "rid-routed"), strict=True):
        before = {
            name: _sample(server, counted, {"endpoint": name})
            for name in ("token", "jwks", "discovery")
        }
        issued = (
            "sealring_tokens_issued_total",
            {"grant_type": "client_credentials", "client_id": client[0]},
        )
        errors = ("sealring_oauth_errors_total", {"endpoint": "token", "error": "invalid_client"})
        issued_before, errors_before = _sample(server, *issued), _sample(server, *errors)
        for _, method, path, kwargs in requests:
            exchange(server, method, path, rid, **kwargs)
        after = {name: _sample(server, counted, {"endpoint": name}) for name in before}
        assert after == {"token": before["token"] + 2, "jwks": before["jwks"] + 1,
                         "discovery": before["discovery"] + 1}  # fmt: skip
        assert _sample(server, *issued) == issued_before + 1
        assert _sample(server, *errors) == errors_before + 1
    access_log.flush()
    lines = [json.loads(line) for line in access_lines.getvalue().splitlines()]
    by_id: dict[str, list[tuple[object, ...]]] = {"rid-direct": [], "rid-routed": []}
    for line in lines:
        assert line.pop("ts").endswith("Z")
        assert isinstance(line.pop("duration_ms"), float)
        assert line.pop("level") == "info"
        assert line.pop("msg") == "request"
        by_id[line.pop("request_id")].append(tuple(sorted(line.items())))
    assert by_id["rid-direct"] == by_id["rid-routed"]
    assert by_id["rid-direct"] == [
        (("client_id", client[0]), ("logger", "sealring.server"), ("method", "POST"),
         ("path", "/token"), ("status", 200)),
        (("client_id", None), ("logger", "sealring.server"), ("method", "POST"),
         ("path", "/token"), ("status", 401)),
        (("client_id", None), ("logger", "sealring.server"), ("method", "GET"),
         ("path", PREFIX + "/jwks.json"), ("status", 200)),
        (("client_id", None), ("logger", "sealring.server"), ("method", "GET"),
         ("path", "/.well-known/openid-configuration"), ("status", 200)),
    ]  # fmt: skip


class _BrokenKeys:
    def signer(self, alg: str) -> Any:
        raise RuntimeError("key store gone")

    def jwks(self) -> Any:
        raise RuntimeError("key store gone")


def test_an_unexpected_failure_is_the_same_opaque_500(
    servers: tuple[LiveServer, LiveServer], access_lines: io.StringIO
) -> None:
    answers = []
    for server in servers:
        keys = server.context.keys
        server.context.keys = _BrokenKeys()
        try:
            answers.append(exchange(server, "GET", "/jwks.json", "rid-500"))
        finally:
            server.context.keys = keys
    assert answers[0] == answers[1]
    status, headers, body = answers[0]
    assert (status, body) == (500, b'{"error":"server_error"}')
    assert ("x-content-type-options", "nosniff") in headers
    assert ("x-request-id", "rid-500") in headers
    access_log.flush()
    logged = [json.loads(line) for line in access_lines.getvalue().splitlines()]
    assert [(line["path"], line["status"]) for line in logged] == [("/jwks.json", 500)] * 2


async def _elsewhere(request: Request) -> Response:
    return Response(b"elsewhere")


def test_a_route_starlette_would_pick_first_is_never_bypassed() -> None:
    """Routes added later (login pages, a catch-all mount) keep what Starlette gives them."""
    routes = _routes(Settings.load({"issuer": "http://127.0.0.1:8000/t"}, environ={}).issuer)
    assert sorted(_direct_routes(routes)) == [
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/oauth-authorization-server/t"),
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/.well-known/openid-configuration/t"),
        ("GET", "/jwks.json"),
        ("GET", "/t/.well-known/openid-configuration"),
        ("GET", "/t/jwks.json"),
        ("POST", "/t/token"),
        ("POST", "/token"),
    ]
    shadowed = _direct_routes([Route("/jwks.json", _elsewhere), Mount("/t", routes=[]), *routes])
    assert sorted(shadowed) == [
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/oauth-authorization-server/t"),
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/.well-known/openid-configuration/t"),
        ("POST", "/token"),
    ]


def test_the_jwks_answers_follow_the_key_set(tmp_path: Path) -> None:
    """The prebuilt 200 and 304 are replaced when the key set changes (a rotation here)."""
    url = f"sqlite:///{tmp_path / 'own.db'}"
    with running_server(url) as server, httpx.Client(base_url=server.url) as http:
        before = http.get("/jwks.json")
        etag = before.headers["etag"]
        assert http.get("/jwks.json", headers={"If-None-Match": etag}).status_code == 304
        server.context.keys.rotate()  # type: ignore[attr-defined]
        after = http.get("/jwks.json")
        assert after.status_code == 200
        assert after.headers["etag"] != etag
        kids_before = {key["kid"] for key in before.json()["keys"]}
        kids_after = {key["kid"] for key in after.json()["keys"]}
        assert kids_before < kids_after  # each algorithm's new key is published beside the old
        stale = http.get("/jwks.json", headers={"If-None-Match": etag})
        assert stale.status_code == 200
        assert stale.content == after.content
        assert (
            http.get("/jwks.json", headers={"If-None-Match": after.headers["etag"]}).status_code
            == 304
        )
