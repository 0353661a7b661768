"""RFC conformance and hostile requests, over real HTTP (RFC 6749, 6750, 7009, 7662, 8414, 8707,
9068, 8725).  Each test names the rule it checks; docs/server.md says what the server does."""

from __future__ import annotations

import base64
import dataclasses
import socket
import time
import uuid
from urllib.parse import quote, quote_plus

import httpx
import pytest

from sealring.db import make_engine
from sealring.jose.jws import parse_compact
from sealring.jose.jwt import decode_payload, encode_jwt
from sealring.server.clients import SecretHasher, new_client
from sealring.server.settings import Settings, SettingsError
from sealring.server.stores.clients import ClientRepository
from tests.server.conftest import SERVER_SECRET, LiveServer

API = "https://api.example.test"
OTHER = "https://other.example.test"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GRANT = "grant_type=client_credentials"
POST_ONLY = ("/token", "/introspect", "/revoke")


@pytest.fixture(scope="module")
def client(live: LiveServer) -> tuple[str, str]:
    client_id, secret = live.create_client(scope="read write", audiences=[API, OTHER])
    assert secret is not None
    return client_id, secret


def _no_store(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def _error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    _no_store(response)
    body: dict[str, str] = response.json()
    assert body["error"] == code
    # RFC 6749 §5.2: error_description is printable ASCII without '"' and '\'.
    for char in body.get("error_description", ""):
        assert 0x20 <= ord(char) <= 0x7E, body
        assert char not in '"\\', body
    return body


def _post(http: httpx.Client, path: str, body: str, auth: tuple[str, str]) -> httpx.Response:
    return http.post(path, content=body.encode(), headers=FORM, auth=auth)


def _token(http: httpx.Client, client: tuple[str, str], **form: str) -> str:
    response = http.post("/token", data={"grant_type": "client_credentials", **form}, auth=client)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


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
    _error(_post(http, path, body, client), 400, "invalid_request")


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
    _error(_post(http, "/token", body, client), 400, "invalid_request")


def test_non_utf8_body(http: httpx.Client, client: tuple[str, str]) -> None:
    response = http.post("/token", content=b"grant_type=client_credentials&x=\xe9", headers=FORM)
    _error(response, 400, "invalid_request")


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
    _error(response, 401, "invalid_client")


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
    ],
)
def test_malformed_basic_header(http: httpx.Client, header: str) -> None:
    """§5.2: invalid_client, 401, and a challenge naming the scheme the client used."""
    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header}
    )
    _error(response, 401, "invalid_client")
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
            _error(http.post(path, data=data, auth=client), 400, "invalid_request")
    post = {"client_id": client[0], "client_secret": client[1], **assertion}
    _error(
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
            _error(response, 400, "invalid_request")


def test_body_client_id_must_match_basic(http: httpx.Client, client: tuple[str, str]) -> None:
    data = {"grant_type": "client_credentials", "client_id": client[0]}
    assert http.post("/token", data=data, auth=client).status_code == 200
    data["client_id"] = client[0] + "x"
    _error(http.post("/token", data=data, auth=client), 400, "invalid_request")


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
    _error(response, 401, "invalid_client")


# -- grant_type, scope, resource ----------------------------------------------------------------


def test_grant_type_semantics(
    live: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    """Missing: invalid_request; not implemented here: unsupported_grant_type; implemented but
    not registered for this client: unauthorized_client (§5.2)."""
    _error(_post(http, "/token", "scope=read", client), 400, "invalid_request")
    for grant in ("password", "authorization_code", "refresh_token", 'é"\\', "x" * 300):
        body = _error(
            http.post("/token", data={"grant_type": grant}, auth=client),
            400,
            "unsupported_grant_type",
        )
        assert grant not in body.get("error_description", "")
    no_grant_id, no_grant_secret = live.create_client(grant_types=[], audiences=[API])
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(no_grant_id, no_grant_secret or ""),
    )
    _error(response, 400, "unauthorized_client")
    # Authentication comes first: an unknown client learns nothing about grant support.
    _error(
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
    _error(_post(http, "/token", f"{GRANT}&scope={scope}", client), 400, "invalid_scope")


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
    _error(
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
        _no_store(response)


def test_json_and_multipart_are_refused_with_400(
    http: httpx.Client, client: tuple[str, str]
) -> None:
    """§3.2 requires application/x-www-form-urlencoded; §5.2 makes that a 400 invalid_request."""
    for path in POST_ONLY:
        _error(
            http.post(path, json={"grant_type": "client_credentials", "token": "x"}, auth=client),
            400,
            "invalid_request",
        )
        _error(http.post(path, files={"token": (None, "x")}, auth=client), 400, "invalid_request")


def test_oversized_headers(live: LiveServer, http: httpx.Client, client: tuple[str, str]) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"X-Pad": "a" * 20000},
        auth=client,
    )
    assert response.status_code == 431
    _no_store(response)
    assert response.json()["error"] == "invalid_request"
    assert "headers exceed" in response.json()["error_description"]
    assert response.headers["x-request-id"]


def test_no_store_on_every_oauth_response(
    live: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    """RFC 6749 §5.1/§5.2, RFC 7662 §2.2, RFC 7009 §2.2: success and error alike."""
    token = _token(http, client)
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
        _no_store(response)


# -- RFC 7662 introspection ----------------------------------------------------------------------


def _own_token(live: LiveServer, **claims: object) -> str:
    now = int(time.time())
    body: dict[str, object] = {
        "iss": live.url, "sub": "someone", "client_id": "someone", "aud": API,
        "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex,
    }  # fmt: skip
    body.update(claims)
    typ = str(body.pop("typ", "at+jwt"))
    signer = live.state.keys.signer(live.settings.signing_alg)
    return encode_jwt({k: v for k, v in body.items() if v is not None}, signer, typ=typ)


def test_introspection_inactive_is_only_active_false(
    live: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    """§2.2: for a token that is not active, only ``{"active": false}``."""
    now = int(time.time())
    revoked = _token(http, client)
    assert http.post("/revoke", data={"token": revoked}, auth=client).status_code == 200
    inactive = [
        "garbage",
        "a.b.c",
        revoked,
        _own_token(live, exp=now - 120, iat=now - 200),  # expired
        _own_token(live, iss="https://elsewhere.example"),  # another issuer
        _own_token(live, typ="JWT"),  # not an RFC 9068 access token
        _own_token(live, jti=None),  # missing a required claim
        _token(http, client)[:-4] + "AAAA",  # signature broken
    ]
    for token in inactive:
        response = http.post(
            "/introspect", data={"token": token, "token_type_hint": "access_token"}, auth=client
        )
        assert response.status_code == 200
        assert response.text == '{"active":false}', token
        _no_store(response)


def test_introspection_active_claims(http: httpx.Client, client: tuple[str, str]) -> None:
    token = _token(http, client, scope="read", resource=OTHER)
    body = http.post("/introspect", data={"token": token}, auth=client).json()
    claims = decode_payload(parse_compact(token))
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti"):
        assert body[name] == claims[name]
    assert body["scope"] == "read"
    assert body["aud"] == OTHER


# -- RFC 7009 revocation -------------------------------------------------------------------------


def test_revocation_outcomes(live: LiveServer, http: httpx.Client, client: tuple[str, str]) -> None:
    """§2.2: 200 for an unknown or invalid token; §2.1: the token must be the caller's."""
    for token in ("unknown", _own_token(live, exp=int(time.time()) - 120)):
        response = http.post("/revoke", data={"token": token}, auth=client)
        assert response.status_code == 200
        assert response.content == b""
    other_id, other_secret = live.create_client(scope="read", audiences=[API])
    token = _token(http, (other_id, other_secret or ""))
    _error(http.post("/revoke", data={"token": token}, auth=client), 400, "unauthorized_client")
    # Revoking twice is fine (idempotent).
    for _ in range(2):
        assert (
            http.post(
                "/revoke", data={"token": token}, auth=(other_id, other_secret or "")
            ).status_code
            == 200
        )


# -- RFC 8414 discovery --------------------------------------------------------------------------


def test_metadata_members_are_all_supported(live: LiveServer, http: httpx.Client) -> None:
    response = http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["issuer"] == live.url
    assert not doc["issuer"].endswith("/")
    for member in ("issuer", "token_endpoint", "jwks_uri", "response_types_supported"):
        assert member in doc
    assert "authorization_endpoint" not in doc
    assert doc["grant_types_supported"] == ["client_credentials"]
    for name in ("token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"):
        assert doc[name].startswith(live.url + "/")
    assert "none" not in doc["token_endpoint_auth_signing_alg_values_supported"]
    assert not any(
        a.startswith("HS") for a in doc["token_endpoint_auth_signing_alg_values_supported"]
    )
    # Every advertised endpoint answers; every advertised method is usable (see
    # test_third_party.py for the three methods with real clients).
    assert http.get(doc["jwks_uri"]).status_code == 200
    for name in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert http.post(doc[name], data={}).status_code in (400, 401)
    # The same document where gateways and resource-server libraries look for jwks_uri; it
    # claims no OpenID Provider feature that is not there.
    assert http.get("/.well-known/openid-configuration").json() == doc
    assert "authorization_endpoint" not in doc
    assert "id_token_signing_alg_values_supported" not in doc


def test_issuer_with_path(tenant: LiveServer) -> None:
    """RFC 8414 §3.1: /.well-known/oauth-authorization-server/tenant; endpoints under /tenant."""
    assert tenant.url.endswith("/tenant")
    root = tenant.url.removesuffix("/tenant")
    with httpx.Client(timeout=10) as http:
        doc = http.get(root + "/.well-known/oauth-authorization-server/tenant").json()
        assert doc["issuer"] == tenant.url
        assert doc["token_endpoint"] == tenant.url + "/token"
        assert http.get(doc["jwks_uri"]).status_code == 200
        client_id, secret = tenant.create_client(scope="read", audiences=[API])
        response = http.post(
            doc["token_endpoint"],
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret or ""),
        )
        assert response.status_code == 200, response.text
        assert decode_payload(parse_compact(response.json()["access_token"]))["iss"] == tenant.url
        # OpenID Connect Discovery §4 appends the well-known path to the issuer; the RFC 8414
        # form of the OpenID name is tried by some clients too.
        for openid in ("/tenant/.well-known/openid-configuration",
                       "/.well-known/openid-configuration/tenant"):  # fmt: skip
            assert http.get(root + openid).json() == doc
        assert http.get(root + "/.well-known/openid-configuration/other").status_code == 404


# -- JWKS ----------------------------------------------------------------------------------------


def test_jwks_conditional_requests(http: httpx.Client) -> None:
    """RFC 9110 §13.1.2: If-None-Match uses weak comparison; ``*`` matches; lists are lists."""
    first = http.get("/jwks.json")
    assert first.headers["content-type"] in ("application/json", "application/jwk-set+json")
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    for value in (etag, "W/" + etag, "*", f'"nope", {etag}', f'W/"x",W/{etag}'):
        response = http.get("/jwks.json", headers={"If-None-Match": value})
        assert response.status_code == 304, value
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert "max-age=" in response.headers["cache-control"]
    for value in ('"nope"', 'W/"nope"', etag[1:-1], etag[:-1], ", ,"):
        assert http.get("/jwks.json", headers={"If-None-Match": value}).status_code == 200, value
    assert http.head("/jwks.json").status_code == 200


# -- RFC 9068 and RFC 8725 -----------------------------------------------------------------------


def test_rfc9068_access_token(
    live: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    tokens = [_token(http, client, scope="read write", resource=API) for _ in range(3)]
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
