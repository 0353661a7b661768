"""RFC conformance and hostile requests, over real HTTP (RFC 6749, 6750, 7009, 7662, 8414, 8707,
9068, 8725).  Each test names the rule it checks; docs/server.md says what the server does."""

from __future__ import annotations

import base64
import dataclasses
import socket
import uuid
from urllib.parse import quote, quote_plus

import httpx
import pytest

from sealring.db import make_engine
from sealring.jose.jws import parse_compact
from sealring.jose.jwt import decode_payload
from sealring.server.clients import SecretHasher, new_client
from sealring.server.settings import Settings, SettingsError
from sealring.server.stores.clients import ClientRepository
from tests.helpers.server import (
    API,
    OTHER,
    SERVER_SECRET,
    LiveServer,
    access_token,
    no_store,
    oauth_error,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GRANT = "grant_type=client_credentials"
POST_ONLY = ("/token", "/introspect", "/revoke")


def _post(http: httpx.Client, path: str, body: str, auth: tuple[str, str]) -> httpx.Response:
    return http.post(path, content=body.encode(), headers=FORM, auth=auth)


def _basic(client_id: str, secret: str, *, encode: bool = True) -> dict[str, str]:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}" if encode else f"{client_id}:{secret}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


# -- RFC 6749 §3.2, §3.1: parameters -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/token", f"{GRANT}&{GRANT}"),
        ("/token", f"{GRANT}&scope=read&scope=read"),
        ("/token", f"{GRANT}&client_id=a&client_id=a"),
        ("/introspect", "token=a&token=b"),
        ("/revoke", "token=a&token=a"),
    ],
)
def test_repeated_parameters(
    http: httpx.Client, client: tuple[str, str], path: str, body: str
) -> None:
    """§3.2: "Request and response parameters MUST NOT be included more than once"."""
    body_json = oauth_error(_post(http, path, body, client), 400, "invalid_request")
    assert "repeated" in body_json["error_description"]


def test_repeated_resource_is_allowed(http: httpx.Client, client: tuple[str, str]) -> None:
    """RFC 8707 §2: ``resource`` may repeat; the audience is the list of distinct values."""
    body = f"{GRANT}&resource={quote(API)}&resource={quote(OTHER)}&resource={quote(API)}"
    response = _post(http, "/token", body, client)
    assert response.status_code == 200
    claims = decode_payload(parse_compact(response.json()["access_token"]))
    assert claims["aud"] == [API, OTHER]


@pytest.mark.parametrize(
    "body",
    [f"{GRANT}&scope=%zz", f"{GRANT}&scope=%2", f"{GRANT}&scope=%ff", f"{GRANT}&x=%C3%28"],
)
def test_percent_encoding_errors(http: httpx.Client, client: tuple[str, str], body: str) -> None:
    """A malformed escape, or one that does not decode to UTF-8 (Appendix B), is refused."""
    oauth_error(_post(http, "/token", body, client), 400, "invalid_request")


def test_non_utf8_body(http: httpx.Client, client: tuple[str, str]) -> None:
    response = http.post("/token", content=b"grant_type=client_credentials&x=\xe9", headers=FORM)
    oauth_error(response, 400, "invalid_request")


# -- RFC 6749 §2.3: client authentication ------------------------------------------------------


def _client_with(live: LiveServer, client_id: str, secret: str, **kwargs: object) -> None:
    client = new_client(name="odd", scope="read", audiences=[API], **kwargs)  # type: ignore[arg-type]
    engine = make_engine(live.settings.database_url)
    try:
        ClientRepository(engine).add(
            dataclasses.replace(client, client_id=client_id),
            SecretHasher(SERVER_SECRET).hash(secret),
        )
    finally:
        engine.dispose()


def test_basic_credentials_are_form_urlencoded(live: LiveServer, http: httpx.Client) -> None:
    """§2.3.1: id and secret are application/x-www-form-urlencoded, then joined by ':'."""
    client_id = f"c:%+é {uuid.uuid4().hex[:8]}"
    secret = "s:e%c+r é/t=?&ü"
    _client_with(live, client_id, secret)
    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers=_basic(client_id, secret)
    )
    assert response.status_code == 200, response.text
    assert decode_payload(parse_compact(response.json()["access_token"]))["sub"] == client_id
    # The same values not encoded: the first ':' splits elsewhere, '+' reads as a space.
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers=_basic(client_id, secret, encode=False),
    )
    oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic  x",
        "Basic !!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xe9\xff:\xfe").decode(),  # not UTF-8
        "Basic " + base64.b64encode(b"%ZZ:%ff").decode(),  # escape decodes to no UTF-8
        "Basic " + base64.b64encode(b":").decode(),
        "basic " + base64.b64encode(b"a:b").decode(),  # scheme is case-insensitive
        "Basic " + "A" * 8000,
        "Bearer abc",  # not client authentication, and the body has none either
    ],
)
def test_malformed_basic_header(http: httpx.Client, header: str) -> None:
    """§5.2: invalid_client, 401, and a challenge naming the scheme the client used."""
    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header}
    )
    oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith('Basic realm="sealring"')


def test_two_methods_at_once(live: LiveServer, http: httpx.Client, client: tuple[str, str]) -> None:
    """§2.3: "The client MUST NOT use more than one authentication method in each request"."""
    assertion = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "a.b.c",
    }
    for extra in ({"client_secret": client[1]}, assertion):
        for path in POST_ONLY:
            data = {"grant_type": "client_credentials", "token": "x", **extra}
            oauth_error(http.post(path, data=data, auth=client), 400, "invalid_request")
    post = {"client_id": client[0], "client_secret": client[1], **assertion}
    oauth_error(
        http.post("/token", data={"grant_type": "client_credentials", **post}),
        400,
        "invalid_request",
    )


def test_two_authorization_headers(live: LiveServer, client: tuple[str, str]) -> None:
    other_id, other_secret = live.create_client(scope="read", audiences=[API])
    headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        *(
            ("Authorization", _basic(*c)["Authorization"])
            for c in (client, (other_id, other_secret or ""))
        ),
    ]
    with httpx.Client(base_url=live.url, timeout=10) as http:
        for path in POST_ONLY:
            response = http.post(path, content=f"{GRANT}&token=x", headers=headers)
            oauth_error(response, 400, "invalid_request")


def test_body_client_id_must_match_basic(http: httpx.Client, client: tuple[str, str]) -> None:
    data = {"grant_type": "client_credentials", "client_id": client[0]}
    assert http.post("/token", data=data, auth=client).status_code == 200
    data["client_id"] = client[0] + "x"
    oauth_error(http.post("/token", data=data, auth=client), 400, "invalid_request")


def test_bearer_header_is_not_client_authentication(live: LiveServer, http: httpx.Client) -> None:
    """A client library may attach its access token to every request (requests-oauthlib)."""
    client_id, secret = live.create_client(
        scope="read", audiences=[API], auth_method="client_secret_post"
    )
    creds = {"client_id": client_id, "client_secret": secret or ""}
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", **creds},
        headers={"Authorization": "Bearer something"},
    )
    assert response.status_code == 200, response.text
    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Bearer x"}
    )
    oauth_error(response, 401, "invalid_client")


# -- grant_type, scope, resource ----------------------------------------------------------------


def test_grant_type_semantics(
    live: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    """Missing: invalid_request; not implemented here: unsupported_grant_type; implemented but
    not registered for this client: unauthorized_client (§5.2)."""
    oauth_error(_post(http, "/token", "scope=read", client), 400, "invalid_request")
    for grant in ("password", "implicit", 'é"\\', "x" * 300):
        body = oauth_error(
            http.post("/token", data={"grant_type": grant}, auth=client),
            400,
            "unsupported_grant_type",
        )
        assert grant not in body.get("error_description", "")
    # the user grants exist, but this client is not registered for them
    for grant in ("authorization_code", "refresh_token"):
        response = http.post("/token", data={"grant_type": grant}, auth=client)
        oauth_error(response, 400, "unauthorized_client")
    no_grant_id, no_grant_secret = live.create_client(grant_types=[], audiences=[API])
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(no_grant_id, no_grant_secret or ""),
    )
    oauth_error(response, 400, "unauthorized_client")
    # Authentication comes first: an unknown client learns nothing about grant support.
    oauth_error(
        http.post("/token", data={"grant_type": "password"}, auth=("nobody", "x")),
        401,
        "invalid_client",
    )


@pytest.mark.parametrize(
    "scope",
    [
        "%20",
        "read%20%20write",
        "%20read",
        "read%20",
        "read%09write",
        "r%22ad",
        "r%5Cad",
        "r%C3%A9ad",
        "r%7Fad",
    ],
)
def test_malformed_scope(http: httpx.Client, client: tuple[str, str], scope: str) -> None:
    """§3.3: scope = scope-token *( SP scope-token ), scope-token = 1*NQCHAR."""
    oauth_error(_post(http, "/token", f"{GRANT}&scope={scope}", client), 400, "invalid_scope")


def test_empty_scope_is_absent(http: httpx.Client, client: tuple[str, str]) -> None:
    """§3.1: a parameter sent without a value is treated as omitted: all the client's scopes."""
    response = _post(http, "/token", f"{GRANT}&scope=", client)
    assert response.json()["scope"] == "read write"


@pytest.mark.parametrize(
    "resource",
    [
        "/relative",
        "api.example.test",
        "https://api.example.test#frag",
        "https://api.example.test/a b",
        "#",
    ],
)
def test_resource_must_be_absolute_without_fragment(
    http: httpx.Client, client: tuple[str, str], resource: str
) -> None:
    """RFC 8707 §2: an absolute URI, no fragment; otherwise invalid_target."""
    oauth_error(
        http.post(
            "/token", data={"grant_type": "client_credentials", "resource": resource}, auth=client
        ),
        400,
        "invalid_target",
    )


# -- HTTP: methods, media types, sizes, caching ---------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH"])
def test_post_only_endpoints(http: httpx.Client, method: str) -> None:
    for path in POST_ONLY:
        response = http.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == "POST"
        no_store(response)


def test_json_and_multipart_are_refused_with_400(
    http: httpx.Client, client: tuple[str, str]
) -> None:
    """§3.2 requires application/x-www-form-urlencoded; §5.2 makes that a 400 invalid_request."""
    for path in POST_ONLY:
        oauth_error(
            http.post(path, json={"grant_type": "client_credentials", "token": "x"}, auth=client),
            400,
            "invalid_request",
        )
        oauth_error(
            http.post(path, files={"token": (None, "x")}, auth=client), 400, "invalid_request"
        )


def test_oversized_headers(live: LiveServer, http: httpx.Client, client: tuple[str, str]) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"X-Pad": "a" * 20000},
        auth=client,
    )
    assert response.status_code == 431
    no_store(response)
    assert response.json()["error"] == "invalid_request"
    assert "headers exceed" in response.json()["error_description"]
    assert response.headers["x-request-id"]


def test_no_store_on_every_oauth_response(
    live: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    """RFC 6749 §5.1/§5.2, RFC 7662 §2.2, RFC 7009 §2.2: success and error alike."""
    token = access_token(http, client)
    responses = [
        http.post("/token", data={"grant_type": "client_credentials"}, auth=client),
        http.post("/token", data={"grant_type": "client_credentials"}, auth=(client[0], "bad")),
        http.post("/token", data={"grant_type": "password"}, auth=client),
        http.post("/token", content=b"x" * 20000, headers=FORM, auth=client),
        http.post("/introspect", data={"token": token}, auth=client),
        http.post("/introspect", data={"token": "garbage"}, auth=client),
        http.post("/introspect", data={}, auth=client),
        http.post("/revoke", data={"token": "garbage"}, auth=client),
        http.post("/revoke", data={"token": token}, auth=client),
    ]
    for response in responses:
        no_store(response)


# -- RFC 9068 and RFC 8725 -----------------------------------------------------------------------


def test_rfc9068_access_token(
    live: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    tokens = [access_token(http, client, scope="read write", resource=API) for _ in range(3)]
    jtis = set()
    for token in tokens:
        jws = parse_compact(token)
        assert jws.header["typ"] == "at+jwt"
        assert jws.header["alg"] == "ES256"
        assert isinstance(jws.header["kid"], str)
        claims = decode_payload(jws)
        for name in ("iss", "exp", "aud", "sub", "client_id", "iat", "jti"):
            assert name in claims
        assert claims["iss"] == live.url
        assert claims["aud"] == API
        assert claims["scope"] == "read write"
        assert isinstance(claims["iat"], int)
        assert isinstance(claims["exp"], int)
        jtis.add(claims["jti"])
    assert len(jtis) == len(tokens)


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "hs256", ""])
def test_no_symmetric_or_none_signing(alg: str, tmp_path: object) -> None:
    """RFC 8725 §3.1/§3.2: the server refuses to be configured for ``none`` or HMAC."""
    with pytest.raises(SettingsError):
        Settings.load({"signing_alg": alg, "database_url": "sqlite:///x.db"}, environ={})


def test_raw_protocol_abuse_never_500(live: LiveServer) -> None:
    host, port = live.sock.getsockname()
    requests = [
        b"POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xff\xfe\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n"
        b"Connection: close\r\n\r\ngrant_type=client_credentials",
        b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\xff\r\n"
        b"Content-Length: 4\r\nConnection: close\r\n\r\na=%1",
        b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\na=%1\r\n0\r\n\r\n",
        b"POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100000\r\nConnection: close\r\n\r\ntoken=",
    ]
    for raw in requests:
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(raw)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        status = int(reply.split(b" ", 2)[1])
        assert 400 <= status < 500, reply[:200]


def test_every_operation_documents_what_any_path_can_answer(
    live: LiveServer, http: httpx.Client
) -> None:
    """405 and 431 come before any endpoint runs; openapi.json says so for every operation, and
    a wrong method gets the documented 405 body and Allow header."""
    doc = http.get("/openapi.json").json()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert {"405", "431"} <= set(operation["responses"]), (path, method)
        wrong = "DELETE"
        response = http.request(wrong, path)
        assert response.status_code == 405, path
        assert response.json() == {"error": "method_not_allowed"}
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert {m.upper() for m in operations} <= allowed, path
