"""Introspection tells a caller about a token only when the token is its business (RFC 7662 §4).

Issue 10, item 7: any confidential client used to get ``active: true`` and every claim of any
other client's token.  Now: the token's own client, or a client holding the ``introspect``
permission that is registered for one of the token's audiences; everyone else gets exactly
``{"active": false}``, the answer for a token that does not exist.
"""

from __future__ import annotations

import httpx
import pytest

from sealring.server.clients import ClientMetadataError, new_client
from tests.helpers.server import LiveServer, running_server

API = "https://api.example.test"
OTHER = "https://other.example.test"


def _token(http: httpx.Client, client: tuple[str, str], resource: str = API) -> str:
    response = http.post(
        "/token", data={"grant_type": "client_credentials", "resource": resource}, auth=client
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _introspect(http: httpx.Client, caller: tuple[str, str], token: str) -> dict[str, object]:
    response = http.post("/introspect", data={"token": token}, auth=caller)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _confidential(live: LiveServer, **kwargs: object) -> tuple[str, str]:
    client_id, secret = live.create_client(**kwargs)
    assert secret is not None
    return client_id, secret


def test_who_may_introspect_whose_token(live: LiveServer, http: httpx.Client) -> None:
    owner = _confidential(live, scope="read", audiences=[API, OTHER])
    token = _token(http, owner)  # aud: API
    # The token's own client sees it.
    assert _introspect(http, owner, token)["active"] is True
    # Another client, even one allowed to ask for tokens for the same audience: nothing.
    peer = _confidential(live, scope="read", audiences=[API])
    assert _introspect(http, peer, token) == {"active": False}
    # A resource server with the permission, registered for the token's audience: everything.
    api = _confidential(live, audiences=[API], introspect=True)
    body = _introspect(http, api, token)
    assert body["active"] is True
    assert body["client_id"] == owner[0]
    assert body["aud"] == API
    # The permission for another audience only: nothing.
    other_api = _confidential(live, audiences=[OTHER], introspect=True)
    assert _introspect(http, other_api, token) == {"active": False}
    # ...but that one sees a token issued for its audience.
    assert _introspect(http, other_api, _token(http, owner, OTHER))["active"] is True


def test_a_token_for_several_audiences_is_seen_by_each_permitted_one(
    live: LiveServer, http: httpx.Client
) -> None:
    owner = _confidential(live, scope="read", audiences=[API, OTHER])
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": [API, OTHER]},
        auth=owner,
    )
    token = response.json()["access_token"]
    for audience in (API, OTHER):
        rs = _confidential(live, audiences=[audience], introspect=True)
        assert _introspect(http, rs, token)["active"] is True
    stranger = _confidential(live, audiences=["https://third.example.test"], introspect=True)
    assert _introspect(http, stranger, token) == {"active": False}


def test_the_permission_needs_a_confidential_client_with_an_audience() -> None:
    with pytest.raises(ClientMetadataError, match="introspect"):
        new_client(name="rs", introspect=True)
    with pytest.raises(ClientMetadataError, match="introspect"):
        new_client(name="rs", public=True, audiences=[API], introspect=True)
    assert new_client(name="rs", audiences=[API], introspect=True).describe()["introspect"]


def test_introspection_is_rate_limited_per_client(module_database_url: str) -> None:
    with running_server(module_database_url, rate_limit=0.01, rate_burst=3) as server:
        client = _confidential(server, scope="read", audiences=[API])
        with httpx.Client(base_url=server.url, timeout=10) as http:
            codes = [
                http.post("/introspect", data={"token": "x"}, auth=client).status_code
                for _ in range(5)
            ]
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429]


def test_revoking_one_ecdsa_form_of_a_token_revokes_the_other(
    live: LiveServer, http: httpx.Client
) -> None:
    """Item 9: the server keys revocation on ``jti``, which both string forms share."""
    from tests.resource.test_ecdsa_malleability import _twin

    client_id, secret = live.create_client(scope="read", audiences=[API])
    client = (client_id, secret or "")
    token = _token(http, client)
    twin = _twin(token)
    assert http.post("/introspect", data={"token": twin}, auth=client).json()["active"] is True
    assert http.post("/revoke", data={"token": twin}, auth=client).status_code == 200
    for form in (token, twin):
        assert http.post("/introspect", data={"token": form}, auth=client).json() == {
            "active": False
        }
