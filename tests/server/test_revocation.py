"""Token revocation (RFC 7009) over HTTP: outcomes for unknown, foreign and repeated tokens."""

from __future__ import annotations

import time

import httpx

from tests.helpers.server import (
    API,
    LiveServer,
    access_token,
    oauth_error,
    own_token,
)


def test_revocation_outcomes(live: LiveServer, http: httpx.Client, client: tuple[str, str]) -> None:
    """§2.2: 200 for an unknown or invalid token; §2.1: the token must be the caller's."""
    for token in ("unknown", own_token(live, exp=int(time.time()) - 120)):
        response = http.post("/revoke", data={"token": token}, auth=client)
        assert response.status_code == 200
        assert response.content == b""
    other_id, other_secret = live.create_client(scope="read", audiences=[API])
    token = access_token(http, (other_id, other_secret or ""))
    oauth_error(
        http.post("/revoke", data={"token": token}, auth=client), 400, "unauthorized_client"
    )
    # Revoking twice is fine (idempotent).
    for _ in range(2):
        assert (
            http.post(
                "/revoke", data={"token": token}, auth=(other_id, other_secret or "")
            ).status_code
            == 200
        )
