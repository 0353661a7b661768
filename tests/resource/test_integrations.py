"""FastAPI, Starlette (the example API) and Flask: each through its test client and a real server.

Every app exposes ``GET /api/hello`` (any token), ``GET /api/items`` (items:read) and
``POST /api/items`` (items:write); one table of RFC 6750 expectations runs against each app
(FastAPI, the Starlette example API with its middleware, Starlette routes guarded by the
decorator alone, Flask), each through its test client and a real server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Security
from flask import Flask, jsonify
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from werkzeug.serving import make_server

from sealring.errors import ErrorResponse
from sealring.resource import AccessTokenClaims, AccessTokenVerifier, bearer
from sealring.resource.bearer import error_response
from sealring.resource.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    KeySetUnavailable,
    MissingToken,
)
from sealring.resource.example_api import create_app as example_app
from sealring.resource.integrations import fastapi as sr_fastapi
from sealring.resource.integrations import flask as sr_flask
from sealring.resource.integrations.starlette import (
    BearerTokenMiddleware,
    claims_of,
    requires_token,
)
from tests.helpers.clock import FakeClock
from tests.helpers.issuer import IssuerServer
from tests.helpers.servers import ThreadedUvicorn
from tests.helpers.tokens import AUDIENCE, mint, new_key

with warnings.catch_warnings():
    # Starlette 1.x nudges its test client toward the httpx2 package, which this project does not
    # install; the client itself works the same on httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

REALM = "api"

# (status, headers, json body)
Answer = tuple[int, dict[str, str], Any]
Call = Callable[..., Answer]


def fastapi_app(verifier: AccessTokenVerifier, **options: Any) -> FastAPI:
    app = FastAPI()
    auth = sr_fastapi.TokenAuth(
        verifier,
        realm=REALM,
        token_url="https://as.example/token",
        scopes={"items:read": "read items", "items:write": "write items"},
        **options,
    )
    items: list[str] = []

    @app.get("/api/hello")
    async def hello(claims: AccessTokenClaims = Security(auth.require_token())) -> dict[str, Any]:
        return {"sub": claims.sub, "scopes": sorted(claims.scopes)}

    @app.get("/api/items")
    async def list_items(
        claims: AccessTokenClaims = Security(auth.require_token(scopes=["items:read"])),
    ) -> dict[str, Any]:
        return {"items": items}

    @app.post("/api/items", status_code=201)
    def create_item(
        claims: AccessTokenClaims = Security(auth.require_token(scopes=["items:write"])),
    ) -> dict[str, Any]:
        items.append(claims.sub)
        return {"id": len(items)}

    return app


def flask_app(verifier: AccessTokenVerifier) -> Flask:
    app = Flask(__name__)
    auth = sr_flask.TokenAuth(verifier, realm=REALM, allow_query=True)
    items: list[str] = []

    @app.get("/api/hello")
    @auth.require_token()
    def hello() -> Any:
        claims = sr_flask.current_claims()
        return jsonify(sub=claims.sub, scopes=sorted(claims.scopes))

    @app.get("/api/items")
    @auth.require_token(scopes=["items:read"])
    def list_items() -> Any:
        return jsonify(items=items)

    @app.post("/api/items")
    @auth.require_token(scopes=["items:write"])
    def create_item() -> Any:
        items.append(sr_flask.current_claims().sub)
        return jsonify(id=len(items)), 201

    return app


def starlette_decorator_app(verifier: AccessTokenVerifier) -> Starlette:
    """The example API's routes protected by ``requires_token(verifier=...)``, no middleware."""
    items: list[str] = []

    def guard(*scopes: str) -> Any:
        return requires_token(scopes, realm=REALM, verifier=verifier)

    @guard()
    async def hello(request: Request) -> Response:
        claims = claims_of(request)
        assert claims is not None
        return JSONResponse({"sub": claims.sub, "scopes": sorted(claims.scopes)})

    @guard("items:read")
    async def list_items(request: Request) -> Response:
        return JSONResponse({"items": items})

    @guard("items:write")
    async def create_item(request: Request) -> Response:
        claims = claims_of(request)
        assert claims is not None
        items.append(claims.sub)
        return JSONResponse({"id": len(items)}, 201)

    return Starlette(
        routes=[
            Route("/api/hello", hello),
            Route("/api/items", list_items, methods=["GET"]),
            Route("/api/items", create_item, methods=["POST"]),
        ]
    )


def _httpx_caller(client: httpx.Client) -> Call:
    def call(method: str, path: str, headers: Any = None, **kw: Any) -> Answer:
        r = client.request(method, path, headers=headers, **kw)
        body = (
            r.json() if r.headers.get("content-type", "").startswith("application/json") else None
        )
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}, body

    return call


@contextmanager
def flask_test_client(app: Flask) -> Iterator[Call]:
    client = app.test_client()

    def call(method: str, path: str, headers: Any = None, **kw: Any) -> Answer:
        r = client.open(path, method=method, headers=headers, **kw)
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.get_json(silent=True)

    yield call


@contextmanager
def werkzeug_server(app: Flask) -> Iterator[Call]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}") as client:
            yield _httpx_caller(client)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def asgi_test_client(app: Any) -> Iterator[Call]:
    with TestClient(app) as client:
        yield _httpx_caller(client)


@contextmanager
def uvicorn_server(app: Any) -> Iterator[Call]:
    with ThreadedUvicorn(app) as server, httpx.Client(base_url=server.url) as client:
        yield _httpx_caller(client)


APPS: dict[str, Callable[[AccessTokenVerifier], Any]] = {
    "fastapi": fastapi_app,
    "starlette": lambda v: example_app(v, realm=REALM),
    "starlette-decorator": starlette_decorator_app,
    "flask": flask_app,
}
RUNNERS = {
    ("fastapi", "testclient"): asgi_test_client,
    ("fastapi", "server"): uvicorn_server,
    ("starlette", "testclient"): asgi_test_client,
    ("starlette", "server"): uvicorn_server,
    ("starlette-decorator", "testclient"): asgi_test_client,
    ("starlette-decorator", "server"): uvicorn_server,
    ("flask", "testclient"): flask_test_client,
    ("flask", "server"): werkzeug_server,
}


@pytest.fixture
def setup(
    issuer_server: IssuerServer, clock: FakeClock
) -> Iterator[tuple[Any, AccessTokenVerifier]]:
    key = new_key("ES256", kid="k1")
    issuer_server.publish(key)
    with AccessTokenVerifier(issuer_server.issuer, audience=AUDIENCE, clock=clock) as verifier:
        yield key, verifier


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("framework", "runner"), sorted(RUNNERS))
def test_rfc6750_behaviour(
    framework: str, runner: str, setup: tuple[Any, AccessTokenVerifier], issuer_server: IssuerServer
) -> None:
    key, verifier = setup
    iss = issuer_server.issuer
    reader = mint(key, issuer=iss, scope="items:read")
    writer = mint(key, issuer=iss, scope="items:write")
    with RUNNERS[framework, runner](APPS[framework](verifier)) as call:
        status, headers, body = call("GET", "/api/hello", _bearer(reader))
        assert status == 200
        assert body["scopes"] == ["items:read"]
        assert call("GET", "/api/items", _bearer(reader))[0] == 200

        # no token at all: 401 and a bare challenge (RFC 6750 §3.1)
        status, headers, body = call("GET", "/api/hello")
        assert status == 401
        assert headers["www-authenticate"] == f'Bearer realm="{REALM}"'
        if framework == "fastapi":  # FastAPI's HTTPException convention wraps the body
            body = body["detail"]
        assert body == {"error_description": "this resource needs a bearer access token"}
        status, headers, _ = call("GET", "/api/hello", {"Authorization": "Basic dXNlcjpwdw=="})
        assert status == 401
        assert "error=" not in headers["www-authenticate"]

        # malformed Authorization header: 400 invalid_request
        for bad in ("Bearer", "Bearer a b", "Bearer a,b", "bearer to%ken"):
            status, headers, _ = call("GET", "/api/hello", {"Authorization": bad})
            assert status == 400, bad
            assert 'error="invalid_request"' in headers["www-authenticate"]

        # invalid and expired tokens: 401 invalid_token with a description
        for token in (
            "abc.def.ghi",
            mint(key, issuer=iss, now=0),
            mint(key, issuer=iss, typ="JWT"),
        ):
            status, headers, _ = call("GET", "/api/hello", _bearer(token))
            assert status == 401
            challenge = headers["www-authenticate"]
            assert challenge.startswith(
                f'Bearer realm="{REALM}", error="invalid_token", error_description="'
            )

        # insufficient scope: 403 naming the scope needed
        status, headers, _ = call("POST", "/api/items", _bearer(reader), json={"name": "x"})
        assert status == 403
        assert headers["www-authenticate"] == (
            f'Bearer realm="{REALM}", error="insufficient_scope", '
            'error_description="the token lacks a required scope", scope="items:write"'
        )
        assert call("GET", "/api/items", _bearer(writer))[0] == 403
        status, _, body = call("POST", "/api/items", _bearer(writer), json={"name": "x"})
        assert status == 201
        status, _, body = call("GET", "/api/items", _bearer(reader))
        assert len(body["items"]) == 1


@pytest.mark.parametrize(("framework", "runner"), sorted(RUNNERS))
def test_repeated_authorization_header_is_400(
    framework: str, runner: str, setup: tuple[Any, AccessTokenVerifier], issuer_server: IssuerServer
) -> None:
    """RFC 6750 §2: one method, one token; two headers are refused even when both are valid,
    and even once the token is cached (the cache-hit path must not pick one of them)."""
    key, verifier = setup
    token = mint(key, issuer=issuer_server.issuer)
    twice = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    with RUNNERS[framework, runner](APPS[framework](verifier)) as call:
        assert call("GET", "/api/hello", _bearer(token))[0] == 200  # now cached
        status, headers, _ = call("GET", "/api/hello", twice)
    assert status == 400
    assert 'error="invalid_request"' in headers["www-authenticate"]


@pytest.mark.parametrize("framework", sorted(APPS))
def test_key_set_outage_is_503(
    framework: str, issuer_server: IssuerServer, clock: FakeClock
) -> None:
    key = new_key("ES256")
    issuer_server.routes["/jwks"] = issuer_server.routes.pop(
        "/.well-known/oauth-authorization-server"
    )
    issuer_server.stop()
    with AccessTokenVerifier(
        issuer_server.issuer, audience=AUDIENCE, jwks_uri=issuer_server.jwks_uri, clock=clock
    ) as verifier:
        runner = RUNNERS[framework, "testclient"]
        with runner(APPS[framework](verifier)) as call:
            status, headers, body = call(
                "GET", "/api/hello", _bearer(mint(key, issuer=issuer_server.issuer))
            )
    expected = KeySetUnavailable("any").response(REALM)
    assert status == expected.status == 503
    assert headers["retry-after"] == expected.headers["Retry-After"]
    assert headers["cache-control"] == "no-store"
    assert "www-authenticate" not in headers
    if framework == "fastapi":
        body = body["detail"]
    assert body == json.loads(expected.body)


def test_fastapi_openapi_declares_the_scheme(setup: tuple[Any, AccessTokenVerifier]) -> None:
    _, verifier = setup
    with TestClient(fastapi_app(verifier)) as client:
        doc = client.get("/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["sealring"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "https://as.example/token"
    assert doc["paths"]["/api/items"]["get"]["security"] == [{"sealring": ["items:read"]}]
    assert doc["paths"]["/api/items"]["post"]["security"] == [{"sealring": ["items:write"]}]
    assert doc["paths"]["/api/hello"]["get"]["security"] == [{"sealring": []}]


def test_fastapi_bearer_scheme_and_query_token(
    setup: tuple[Any, AccessTokenVerifier], issuer_server: IssuerServer
) -> None:
    key, verifier = setup
    app = FastAPI()
    auth = sr_fastapi.TokenAuth(verifier, allow_query=True, allow_form=True)

    @app.get("/q")
    async def q(claims: AccessTokenClaims = Security(auth.require_token())) -> str:
        return claims.sub

    @app.post("/f")
    async def f(claims: AccessTokenClaims = Security(auth.require_token())) -> str:
        return claims.sub

    token = mint(key, issuer=issuer_server.issuer)
    with TestClient(app) as client:
        assert client.get("/openapi.json").json()["components"]["securitySchemes"]["sealring"] == {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
        }
        assert client.get("/q", params={"access_token": token}).status_code == 200
        both = client.get("/q", params={"access_token": token}, headers=_bearer(token))
        assert both.status_code == 400
        assert client.post("/f", data={"access_token": token}).status_code == 200


def test_query_token_is_off_by_default(
    setup: tuple[Any, AccessTokenVerifier], issuer_server: IssuerServer
) -> None:
    key, verifier = setup
    token = mint(key, issuer=issuer_server.issuer)
    with asgi_test_client(example_app(verifier, realm=REALM)) as call:
        assert call("GET", "/api/hello", params={"access_token": token})[0] == 401
    with flask_test_client(flask_app(verifier)) as call:  # this app enables it
        assert call("GET", "/api/hello", query_string={"access_token": token})[0] == 200


def test_starlette_middleware_required_and_exempt(
    setup: tuple[Any, AccessTokenVerifier], issuer_server: IssuerServer
) -> None:
    key, verifier = setup

    async def who(request: Request) -> Response:
        claims = claims_of(request)
        return JSONResponse({"sub": claims.sub if claims else None})

    app = Starlette(routes=[Route("/who", who), Route("/open", who)])
    app.add_middleware(
        BearerTokenMiddleware, verifier=verifier, required=True, exempt_paths=["/open"]
    )
    with TestClient(app) as client:
        assert client.get("/who").status_code == 401
        assert client.get("/open").json() == {"sub": None}
        token = mint(key, issuer=issuer_server.issuer)
        assert client.get("/who", headers=_bearer(token)).json() == {"sub": "client-1"}


def test_starlette_decorator_without_middleware_is_a_programming_error(
    setup: tuple[Any, AccessTokenVerifier],
) -> None:
    @requires_token()
    async def endpoint(request: Request) -> Response:
        return Response("no")

    app = Starlette(routes=[Route("/x", endpoint)])
    with TestClient(app, raise_server_exceptions=True) as client, pytest.raises(RuntimeError):
        client.get("/x")


def test_example_api_rejects_bad_items(
    setup: tuple[Any, AccessTokenVerifier], issuer_server: IssuerServer
) -> None:
    key, verifier = setup
    token = mint(key, issuer=issuer_server.issuer, scope="items:write")
    with asgi_test_client(example_app(verifier)) as call:
        assert call("POST", "/api/items", _bearer(token), content=b"nope")[0] == 400
        assert call("POST", "/api/items", _bearer(token), json={"name": ""})[0] == 400
        assert call("GET", "/healthz")[2] == {"status": "ok"}


def test_flask_form_token_and_fastapi_security_with_scopes(
    setup: tuple[Any, AccessTokenVerifier], issuer_server: IssuerServer
) -> None:
    key, verifier = setup
    token = mint(key, issuer=issuer_server.issuer, scope="items:read")
    flask = Flask(__name__)
    auth = sr_flask.TokenAuth(verifier, allow_form=True)

    @flask.post("/f")
    @auth.require_token()
    def form_view() -> Any:
        return jsonify(sub=sr_flask.current_claims().sub)

    with flask_test_client(flask) as call:
        assert call("POST", "/f", data={"access_token": token})[0] == 200
        assert call("POST", "/f", data={"access_token": "bad token"})[0] == 400

    api = FastAPI()
    scheme = sr_fastapi.TokenAuth(verifier)

    @api.get("/s")
    async def scoped(claims: AccessTokenClaims = Security(scheme, scopes=["items:write"])) -> str:
        return claims.sub

    with TestClient(api) as client:
        denied = client.get("/s", headers=_bearer(token))
        assert denied.status_code == 403
        assert 'scope="items:write"' in denied.headers["www-authenticate"]


def test_starlette_middleware_query_token(
    setup: tuple[Any, AccessTokenVerifier], issuer_server: IssuerServer
) -> None:
    key, verifier = setup

    @requires_token()
    async def who(request: Request) -> Response:
        claims = claims_of(request)
        assert claims is not None
        return JSONResponse({"sub": claims.sub})

    app = Starlette(routes=[Route("/who", who)])
    app.add_middleware(BearerTokenMiddleware, verifier=verifier, allow_query=True)
    token = mint(key, issuer=issuer_server.issuer)
    with TestClient(app) as client:
        assert client.get("/who", params={"access_token": token}).json() == {"sub": "client-1"}
        duplicate = [("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")]
        assert client.get("/who", headers=duplicate).status_code == 400


def test_single_flight_under_100_concurrent_requests(issuer_server: IssuerServer) -> None:
    """A cold API hit by 100 requests at once (distinct tokens) fetches the JWKS once.

    (The AsyncJWKSClient's single flight is tested with 100 tasks in test_jwks_client.)
    """
    key = new_key("ES256", kid="k1")
    issuer_server.publish(key)
    issuer_server.delay = 0.2
    now = time.time()
    tokens = [mint(key, issuer=issuer_server.issuer, now=now) for _ in range(100)]

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            replies = await asyncio.gather(
                *(http.get("/api/hello", headers=_bearer(t)) for t in tokens)
            )
        return [r.status_code for r in replies]

    with (
        AccessTokenVerifier(
            issuer_server.issuer, audience=AUDIENCE, jwks_uri=issuer_server.jwks_uri
        ) as verifier,
        ThreadedUvicorn(example_app(verifier)) as api,
    ):
        assert asyncio.run(burst(api.url)) == [200] * 100
    assert len(issuer_server.jwks_fetches()) == 1


# -- one error response, copied by every adapter (issue 13) ------------------------------------


def test_refusals_are_the_one_framework_free_error_response() -> None:
    for error in (
        MissingToken("this resource needs a bearer access token"),
        InvalidRequest("the Authorization header is not 'Bearer <token>'"),
        InvalidToken("token has expired", reason="token_expired"),
        InsufficientScope(["items:write"]),
        KeySetUnavailable("the key set is too old"),
    ):
        answer = error_response(error, REALM)
        assert type(answer) is ErrorResponse  # sealring.errors', not a copy of it
        assert answer == error.response(REALM)
    assert getattr(bearer, "ErrorResponse", ErrorResponse) is ErrorResponse
    with pytest.raises(ValueError, match="not a refusal"):
        error_response(ValueError("not a refusal"), REALM)  # type: ignore[arg-type]


@pytest.mark.parametrize("framework", sorted(APPS))
def test_every_adapter_copies_the_error_response_exactly(
    framework: str, setup: tuple[Any, AccessTokenVerifier], issuer_server: IssuerServer
) -> None:
    key, verifier = setup
    reader = mint(key, issuer=issuer_server.issuer, scope="items:read")
    cases = [
        (("GET", "/api/hello", None), MissingToken("this resource needs a bearer access token")),
        (
            ("GET", "/api/hello", {"Authorization": "Bearer a b"}),
            InvalidRequest("the Authorization header is not 'Bearer <token>'"),
        ),
        (
            ("GET", "/api/hello", _bearer(mint(key, issuer=issuer_server.issuer, now=0))),
            InvalidToken("token has expired"),
        ),
        (("POST", "/api/items", _bearer(reader)), InsufficientScope(["items:write"])),
    ]
    with RUNNERS[framework, "testclient"](APPS[framework](verifier)) as call:
        for (method, path, headers), error in cases:
            expected = error.response(REALM)
            status, got_headers, body = call(method, path, headers, json={"name": "x"})
            assert status == expected.status, error
            for name, value in expected.headers.items():
                assert got_headers[name.lower()] == value, (error, name)
            assert got_headers["content-type"].startswith(expected.media_type)
            if framework == "fastapi":  # FastAPI's HTTPException convention nests the body
                body = body["detail"]
            assert body == json.loads(expected.body), error
