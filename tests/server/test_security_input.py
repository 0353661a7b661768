"""Hostile text reaches PostgreSQL, not just SQLite: never a 5xx (issue 10, item 5).

SQLite stores a NUL byte in a string; PostgreSQL refuses one ("A string literal cannot contain
NUL (0x00) characters") and the driver raises.  So a value that travels from the request to a
query is checked before it gets there, and these tests run on PostgreSQL, where the difference
shows.  A ``client_id`` with a control character in it (RFC 6749 Appendix A.1 allows only
VSCHAR) names no client: ``invalid_client``.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealring.jose.jwk import JWK
from tests.helpers.server import LiveServer

API = "https://api.example.test"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
POST_ENDPOINTS = ("/token", "/introspect", "/revoke")
GET_ENDPOINTS = (
    "/jwks.json", "/healthz", "/readyz", "/openapi.json", "/.well-known/oauth-authorization-server",
)  # fmt: skip
FIELDS = (
    "grant_type", "scope", "resource", "client_id", "client_secret", "client_assertion",
    "client_assertion_type", "token", "token_type_hint",
)  # fmt: skip
# Every Unicode scalar value but the surrogates (which UTF-8 cannot carry), NUL and C0 included.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
NUL_TEXT = st.builds(lambda a, b: a + "\0" + b, TEXT, TEXT)
ANY_TEXT = st.one_of(TEXT, NUL_TEXT)
HYPOTHESIS: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture],
}


@pytest.fixture(scope="module")
def jwt_client(pg_live: LiveServer) -> tuple[str, JWK]:
    return pg_live.create_jwt_client(scope="read", audiences=[API])


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: each part form-urlencoded, then base64.
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _invalid_client(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("path", POST_ENDPOINTS)
def test_nul_in_client_id_is_invalid_client(pg_live: LiveServer, path: str) -> None:
    extra = {"grant_type": "client_credentials"} if path == "/token" else {"token": "x"}
    with httpx.Client(base_url=pg_live.url, timeout=10) as http:
        # client_secret_post, client_secret_basic and the bare client_id of a public client.
        _invalid_client(http.post(path, data={"client_id": "a\0b", "client_secret": "s", **extra}))
        _invalid_client(http.post(path, data=extra, headers={"Authorization": _basic("a\0b", "s")}))
        _invalid_client(http.post(path, data={"client_id": "\0", **extra}))
        # Another control character: a client id that cannot exist either.
        _invalid_client(http.post(path, data={"client_id": "a\nb", "client_secret": "s", **extra}))


def test_nul_in_signed_assertion_claims_is_invalid_client(
    pg_live: LiveServer, jwt_client: tuple[str, JWK]
) -> None:
    """A client's own signed assertion is input too: its ``sub`` and ``jti`` reach queries."""
    client_id, key = jwt_client
    with httpx.Client(base_url=pg_live.url, timeout=10) as http:
        for claims in ({"jti": "j\0"}, {"sub": client_id + "\0", "iss": client_id + "\0"}):
            assertion = pg_live.assertion(client_id, key, **claims)
            form = {"client_assertion_type": JWT_BEARER, "client_assertion": assertion}
            _invalid_client(http.post("/token", data={"grant_type": "client_credentials", **form}))


@given(
    path=st.sampled_from(POST_ENDPOINTS),
    fields=st.dictionaries(st.sampled_from(FIELDS), ANY_TEXT, max_size=len(FIELDS)),
    basic=st.one_of(st.none(), st.tuples(ANY_TEXT, ANY_TEXT)),
    claims=st.one_of(
        st.none(),
        st.dictionaries(st.sampled_from(["sub", "iss", "jti", "aud"]), ANY_TEXT, max_size=4),
    ),
)
@settings(max_examples=200, **HYPOTHESIS)
def test_arbitrary_text_in_every_field_never_5xx(
    pg_live: LiveServer,
    jwt_client: tuple[str, JWK],
    path: str,
    fields: dict[str, str],
    basic: tuple[str, str] | None,
    claims: dict[str, str] | None,
) -> None:
    """Every form field of /token, /introspect and /revoke, the two halves of a Basic header and
    the claims of a validly signed client assertion, each any text (NUL included), on
    PostgreSQL: the answer is an OAuth response, never a 5xx."""
    headers = {"Authorization": _basic(*basic)} if basic is not None else {}
    if claims is not None:
        fields["client_assertion_type"] = JWT_BEARER
        fields["client_assertion"] = pg_live.assertion(*jwt_client, **claims)
    with httpx.Client(base_url=pg_live.url, timeout=10) as http:
        response = http.post(path, data=fields, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text)
    if response.content:  # RFC 7009 §2.2: a successful revocation may have an empty body
        assert response.headers["content-type"] == "application/json"


@given(path=st.sampled_from(GET_ENDPOINTS), query=st.lists(st.tuples(ANY_TEXT, ANY_TEXT)))
@settings(max_examples=100, **HYPOTHESIS)
def test_arbitrary_query_on_every_get_endpoint_never_5xx(
    pg_live: LiveServer, path: str, query: list[tuple[str, str]]
) -> None:
    with httpx.Client(base_url=pg_live.url, timeout=10) as http:
        response = http.get(path, params=query)
    assert response.status_code < 500, (response.status_code, response.text)
