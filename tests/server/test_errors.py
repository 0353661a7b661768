"""Every RFC 6749 §5.2 (and RFC 7009 / RFC 8707) error the server produces, over real HTTP.

``invalid_grant`` has no trigger: the client_credentials grant carries no grant to be invalid
(RFC 6749 §4.4), so the server never sends it.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sealring.jose.jwk import JWK
from tests.helpers.server import LiveServer, oauth_error, running_server

API = "https://api.example.test"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def client(live: LiveServer) -> tuple[str, str]:
    client_id, secret = live.create_client(scope="read write", audiences=[API])
    assert secret is not None
    return client_id, secret


def _request_token(http: httpx.Client, auth: tuple[str, str] | None, **form: str) -> httpx.Response:
    form.setdefault("grant_type", "client_credentials")
    return http.post("/token", data=form, auth=auth)


# -- invalid_request ----------------------------------------------------------------------------


def test_missing_grant_type(http: httpx.Client, client: tuple[str, str]) -> None:
    response = http.post("/token", data={"scope": "read"}, auth=client)
    oauth_error(response, 400, "invalid_request")


def test_client_secret_without_client_id(http: httpx.Client) -> None:
    oauth_error(_request_token(http, None, client_secret="x"), 400, "invalid_request")


def test_wrong_assertion_type(http: httpx.Client) -> None:
    response = _request_token(http, None, client_assertion_type="urn:x", client_assertion="a.b.c")
    oauth_error(response, 400, "invalid_request")


def test_wrong_content_type(http: httpx.Client, client: tuple[str, str]) -> None:
    # RFC 6749 §3.2 fixes the media type; §5.2 answers with 400 invalid_request, not HTTP's 415.
    response = http.post("/token", json={"grant_type": "client_credentials"}, auth=client)
    oauth_error(response, 400, "invalid_request")
    response = http.post("/token", content=b"", auth=client)
    oauth_error(response, 400, "invalid_request")
    files = {"grant_type": (None, "client_credentials")}
    oauth_error(http.post("/token", files=files, auth=client), 400, "invalid_request")
    latin1 = {"Content-Type": "application/x-www-form-urlencoded; charset=ISO-8859-1"}
    body = b"grant_type=client_credentials"
    oauth_error(
        http.post("/token", content=body, headers=latin1, auth=client), 400, "invalid_request"
    )
    for ctype in ("application/x-www-form-urlencoded; charset=UTF-8",
                  'Application/X-WWW-Form-Urlencoded;charset="utf-8"'):  # fmt: skip
        response = http.post("/token", content=body, headers={"Content-Type": ctype}, auth=client)
        assert response.status_code == 200, response.text


def test_malformed_bodies(http: httpx.Client, client: tuple[str, str]) -> None:
    for body in (b"\xff\xfe\x00garbage", b"%%%=&&&", b"=" * 100, b"a=" + b"&b=1" * 200):
        response = http.post("/token", content=body, headers=FORM, auth=client)
        assert response.status_code in (400, 401), body
        assert response.json()["error"] in ("invalid_request", "invalid_client")


def test_oversized_body(http: httpx.Client, client: tuple[str, str]) -> None:
    response = http.post("/token", content=b"a=" + b"x" * 20_000, headers=FORM, auth=client)
    oauth_error(response, 413, "invalid_request")

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 1000

    streamed = http.post("/token", content=chunks(), headers=FORM, auth=client)
    oauth_error(streamed, 413, "invalid_request")


def test_unknown_token_parameters_are_ignored(http: httpx.Client, client: tuple[str, str]) -> None:
    response = _request_token(http, client, unknown="1", another_one="x")
    assert response.status_code == 200


def test_introspection_and_revocation_need_token(
    http: httpx.Client, client: tuple[str, str]
) -> None:
    oauth_error(http.post("/introspect", data={"x": "1"}, auth=client), 400, "invalid_request")
    oauth_error(http.post("/revoke", data={"x": "1"}, auth=client), 400, "invalid_request")


# -- invalid_client -----------------------------------------------------------------------------


def _invalid_client(response: httpx.Response) -> None:
    oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_wrong_secret(http: httpx.Client, client: tuple[str, str]) -> None:
    _invalid_client(_request_token(http, (client[0], client[1] + "x")))


def test_unknown_client(http: httpx.Client) -> None:
    _invalid_client(_request_token(http, ("nobody", "nothing")))


def test_no_authentication(http: httpx.Client) -> None:
    _invalid_client(_request_token(http, None))


def test_registered_method_is_enforced(http: httpx.Client, client: tuple[str, str]) -> None:
    # Registered for client_secret_basic; the same secret in the body is refused.
    _invalid_client(_request_token(http, None, client_id=client[0], client_secret=client[1]))


def test_public_client_cannot_introspect(live: LiveServer, http: httpx.Client) -> None:
    public_id, _ = live.create_client(public=True)
    _invalid_client(http.post("/introspect", data={"token": "x", "client_id": public_id}))


def test_introspection_without_credentials(http: httpx.Client) -> None:
    _invalid_client(http.post("/introspect", data={"token": "x"}))


@pytest.fixture(scope="module")
def jwt_client(live: LiveServer) -> tuple[str, JWK]:
    return live.create_jwt_client(scope="read", audiences=[API])


def _assert_with(
    live: LiveServer, http: httpx.Client, client_id: str, key: JWK, **claims: object
) -> httpx.Response:
    assertion = live.assertion(client_id, key, **claims)
    return _request_token(http, None, client_assertion_type=JWT_BEARER, client_assertion=assertion)


def test_assertion_accepted_with_issuer_audience(
    live: LiveServer, http: httpx.Client, jwt_client: tuple[str, JWK]
) -> None:
    assert _assert_with(live, http, *jwt_client, aud=live.url).status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "https://elsewhere.example"},
        {"exp": int(time.time()) - 120},
        {"exp": int(time.time()) + 2 * 86400},
        {"exp": None},
        {"jti": None},
        {"iss": "someone-else"},
        {"sub": "nobody"},
        {"iat": int(time.time()) + 3600},
        # draft-ietf-oauth-rfc7523bis §4 (the audience-injection class of CVE-2025-27370):
        # aud is the issuer identifier alone, as a string; iat is required and bounded.
        {"aud": ["https://evil.example/token", "TOKEN_ENDPOINT"]},
        {"aud": ["https://evil.example/token", "ISSUER"]},
        {"aud": ["ISSUER"]},
        {"aud": "TOKEN_ENDPOINT"},
        {"aud": "INTROSPECTION_ENDPOINT"},
        {"aud": "ISSUER/"},
        {"iat": None},
        {"iat": int(time.time()) - 3600 - 120},
        {"iat": "ISSUED_NOW_AS_STRING"},
    ],
    ids=[
        "aud",
        "expired",
        "too-long",
        "no-exp",
        "no-jti",
        "iss",
        "sub",
        "future-iat",
        "aud-array-with-foreign-party",
        "aud-array-with-issuer",
        "aud-array-issuer-only",
        "aud-token-endpoint",
        "aud-introspection-endpoint",
        "aud-issuer-trailing-slash",
        "no-iat",
        "iat-too-old",
        "iat-string",
    ],
)
def test_bad_assertions(
    live: LiveServer, http: httpx.Client, jwt_client: tuple[str, JWK], claims: dict[str, object]
) -> None:
    _invalid_client(_assert_with(live, http, *jwt_client, **_placeholders(live, claims)))


def _placeholders(live: LiveServer, claims: dict[str, object]) -> dict[str, object]:
    """Claims with the server's URLs put in (the parameter list is built before the server)."""
    names = {
        "TOKEN_ENDPOINT": live.settings.token_endpoint,
        "INTROSPECTION_ENDPOINT": live.settings.introspection_endpoint,
        "ISSUER/": live.url + "/",
        "ISSUER": live.url,
        "ISSUED_NOW_AS_STRING": str(int(time.time())),
    }

    def fill(value: object) -> object:
        if isinstance(value, list):
            return [fill(v) for v in value]
        return names.get(value, value) if isinstance(value, str) else value

    return {k: fill(v) for k, v in claims.items()}


def test_one_assertion_is_good_for_one_request_at_any_endpoint(
    live: LiveServer, http: httpx.Client, jwt_client: tuple[str, JWK]
) -> None:
    """Spent at /token, the same assertion is refused at /introspect and /revoke."""
    assertion = live.assertion(*jwt_client)
    form = {"client_assertion_type": JWT_BEARER, "client_assertion": assertion}
    assert http.post("/token", data={"grant_type": "client_credentials", **form}).status_code == 200
    _invalid_client(http.post("/introspect", data={"token": "x", **form}))
    _invalid_client(http.post("/revoke", data={"token": "x", **form}))


def test_token_endpoint_audience_only_behind_the_compatibility_setting(
    module_database_url: str,
) -> None:
    with running_server(module_database_url, assertion_token_endpoint_audience=True) as server:
        client_id, key = server.create_jwt_client(scope="read", audiences=[API])
        with httpx.Client(base_url=server.url, timeout=10) as http:

            def send(aud: object) -> int:
                return _assert_with(server, http, client_id, key, aud=aud).status_code

            assert send(server.settings.token_endpoint) == 200
            assert send(server.url) == 200
            # Still one string naming this server: no array, no other endpoint.
            assert send([server.settings.token_endpoint]) == 401
            assert send(["https://evil.example/token", server.settings.token_endpoint]) == 401
            assert send(server.settings.introspection_endpoint) == 401


def test_assertion_replay(
    live: LiveServer, http: httpx.Client, jwt_client: tuple[str, JWK]
) -> None:
    jti = uuid.uuid4().hex
    assert _assert_with(live, http, *jwt_client, jti=jti).status_code == 200
    _invalid_client(_assert_with(live, http, *jwt_client, jti=jti))


def test_assertion_signed_by_another_key(
    live: LiveServer, http: httpx.Client, jwt_client: tuple[str, JWK]
) -> None:
    other = JWK.from_key(
        ec.generate_private_key(ec.SECP256R1()), alg="ES256", kid=jwt_client[1].kid
    )
    _invalid_client(_assert_with(live, http, jwt_client[0], other))


def test_garbage_assertion(http: httpx.Client) -> None:
    for garbage in ("x", "a.b.c", "e30.e30.", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
        _invalid_client(
            _request_token(http, None, client_assertion_type=JWT_BEARER, client_assertion=garbage)
        )


# -- unauthorized_client, unsupported_grant_type, invalid_scope, invalid_target ---------------


def test_client_without_the_grant(live: LiveServer, http: httpx.Client) -> None:
    client_id, secret = live.create_client(scope="read", audiences=[API], grant_types=[])
    assert secret is not None
    oauth_error(_request_token(http, (client_id, secret)), 400, "unauthorized_client")


def test_public_client_cannot_use_client_credentials(live: LiveServer, http: httpx.Client) -> None:
    public_id, _ = live.create_client(public=True)
    _invalid_client(_request_token(http, None, client_id=public_id))


def test_revoking_another_clients_token(
    live: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    token = _request_token(http, client).json()["access_token"]
    other_id, other_secret = live.create_client(scope="read", audiences=[API])
    response = http.post("/revoke", data={"token": token}, auth=(other_id, other_secret or ""))
    oauth_error(response, 400, "unauthorized_client")
    assert http.post("/introspect", data={"token": token}, auth=client).json()["active"] is True


def test_unsupported_grant_type(http: httpx.Client, client: tuple[str, str]) -> None:
    for grant in ("password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer"):
        oauth_error(_request_token(http, client, grant_type=grant), 400, "unsupported_grant_type")


def test_scope_not_allowed_for_the_client(http: httpx.Client, client: tuple[str, str]) -> None:
    """RFC 6749 §3.3; a malformed scope: test_conformance.py::test_malformed_scope."""
    oauth_error(_request_token(http, client, scope="read admin"), 400, "invalid_scope")


def test_resource_not_allowed_for_the_client(
    live: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    """RFC 8707 §2; a malformed resource: test_conformance.py::test_resource_must_be_absolute..."""
    oauth_error(
        _request_token(http, client, resource="https://not-allowed.example"), 400, "invalid_target"
    )
    no_aud_id, no_aud_secret = live.create_client(scope="read")
    oauth_error(_request_token(http, (no_aud_id, no_aud_secret or "")), 400, "invalid_target")


def test_unknown_token_type_hint_is_ignored(http: httpx.Client, client: tuple[str, str]) -> None:
    """RFC 7009 §2.1: an invalid hint "is ignored ... and does not influence the response".

    ``unsupported_token_type`` is never sent: every token this server issues can be revoked.
    """
    token = _request_token(http, client).json()["access_token"]
    for hint in ("id_token", "refresh_token", "x"):
        data = {"token": token, "token_type_hint": hint}
        assert http.post("/introspect", data=data, auth=client).json()["active"] is True
    response = http.post(
        "/revoke", data={"token": token, "token_type_hint": "id_token"}, auth=client
    )
    assert response.status_code == 200
    assert http.post("/introspect", data={"token": token}, auth=client).json() == {"active": False}
    body = f"token={token}&token_type_hint=access_token&token_type_hint=access_token"
    response = http.post("/revoke", content=body, headers=FORM, auth=client)
    oauth_error(response, 400, "invalid_request")


# -- routing ------------------------------------------------------------------------------------


def test_unknown_path_and_method(http: httpx.Client) -> None:
    assert http.get("/nope").status_code == 404
    response = http.get("/token")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert response.json() == {"error": "method_not_allowed"}
