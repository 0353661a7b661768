"""The token endpoint's user grants over HTTP (RFC 6749 §4.1.3, §6; RFC 7009; RFC 7662).

Codes are issued straight into the store, as ``/authorize`` would, so these tests pin the token
endpoint alone; test_login_flow.py drives the whole flow through the pages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from sealring.jose.jws import parse_compact
from sealring.jose.jwt import decode_payload
from sealring.server.protocol.pkce import s256_challenge
from sealring.server.stores.authorization_codes import CodeGrant
from tests.helpers.server import LiveServer, access_token, oauth_error

VERIFIER = "dBjftJeZ4CVP-mJ0kFmVwsAkTvsB_jDqDSLsDsFnfFU"  # RFC 7636 appendix B
REDIRECT = "https://app.example.test/cb"
SCOPE = ("openid", "profile", "offline_access")


def claims(token: str) -> dict[str, Any]:
    return decode_payload(parse_compact(token))


@pytest.fixture(scope="module")
def public(live: LiveServer) -> str:
    client_id, _ = live.create_client(
        public=True,
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile offline_access",
        redirect_uris=[REDIRECT],
    )
    return client_id


@pytest.fixture(scope="module")
def confidential(live: LiveServer) -> tuple[str, str]:
    client_id, secret = live.create_client(
        grant_types=["authorization_code", "client_credentials"],
        scope="openid profile",
        audiences=["https://api.example.test"],
        redirect_uris=[REDIRECT],
        id_token_alg="RS256",
    )
    assert secret is not None
    return client_id, secret


@pytest.fixture(scope="module")
def issue_code(live: LiveServer) -> Callable[..., str]:
    """Codes for a real account and browser session, issued as ``/authorize`` would."""
    account = live.context.login.accounts.create("alice", "correct horse battery")
    _, session = live.context.login.sessions.create(account.subject, now=time.time())

    def issue(client_id: str, scope: tuple[str, ...] = SCOPE) -> str:
        return live.context.login.codes.issue(
            CodeGrant(
                client_id=client_id,
                subject=account.subject,
                session_id=session.session_id,
                redirect_uri=REDIRECT,
                redirect_uri_in_request=True,
                scope=scope,
                code_challenge=s256_challenge(VERIFIER),
                auth_time=time.time() - 5,
                nonce="n-0S6",
                amr=("pwd",),
            ),
            now=time.time(),
        )

    return issue


def exchange(http: httpx.Client, client_id: str, code: str, /, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": client_id,
        **extra,
    }
    return http.post("/token", data={k: v for k, v in form.items() if v})


def refresh(http: httpx.Client, client_id: str, token: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
    return http.post("/token", data={**form, **extra})


def introspect(http: httpx.Client, auth: tuple[str, str], token: str) -> dict[str, Any]:
    response = http.post("/introspect", data={"token": token}, auth=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_public_client_exchanges_its_code_for_the_users_tokens(
    live: LiveServer, issue_code: Callable[..., str], http: httpx.Client, public: str
) -> None:
    response = exchange(http, public, issue_code(public))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "openid profile offline_access"
    assert len(body["refresh_token"]) == 43
    access = claims(body["access_token"])
    assert access["sub"] == claims(body["id_token"])["sub"]
    assert access["client_id"] == public
    assert isinstance(access["sid"], str)
    assert isinstance(access["grant_id"], str)
    id_token = claims(body["id_token"])
    assert id_token["aud"] == public
    assert id_token["nonce"] == "n-0S6"
    assert id_token["sid"] == access["sid"]
    assert parse_compact(body["id_token"]).header["alg"] == "ES256"


def test_without_offline_access_an_openid_login_gets_no_refresh_token(
    live: LiveServer, issue_code: Callable[..., str], http: httpx.Client, public: str
) -> None:
    response = exchange(http, public, issue_code(public, ("openid", "profile")))
    assert response.status_code == 200, response.text
    assert "refresh_token" not in response.json()


def test_the_id_token_is_signed_with_the_clients_registered_algorithm(
    live: LiveServer,
    issue_code: Callable[..., str],
    http: httpx.Client,
    confidential: tuple[str, str],
) -> None:
    client_id, secret = confidential
    code = issue_code(client_id, ("openid",))
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER}  # fmt: skip
    response = http.post("/token", data=form, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    assert parse_compact(response.json()["id_token"]).header["alg"] == "RS256"
    assert parse_compact(response.json()["access_token"]).header["alg"] == "ES256"


def test_a_confidential_client_must_authenticate_for_its_code(
    live: LiveServer,
    issue_code: Callable[..., str],
    http: httpx.Client,
    confidential: tuple[str, str],
) -> None:
    client_id, _ = confidential
    response = exchange(http, client_id, issue_code(client_id, ("openid",)))
    oauth_error(response, 401, "invalid_client")


def test_a_public_client_may_not_use_client_credentials(http: httpx.Client, public: str) -> None:
    response = http.post("/token", data={"grant_type": "client_credentials", "client_id": public})
    oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"code_verifier": VERIFIER[:-1] + "A"}, 400, "invalid_grant"),
        ({"code_verifier": ""}, 400, "invalid_request"),
        ({"redirect_uri": REDIRECT + "x"}, 400, "invalid_grant"),
        ({"code": "A" * 43}, 400, "invalid_grant"),
        ({"code": ""}, 400, "invalid_request"),
    ],
    ids=["wrong-verifier", "no-verifier", "other-redirect", "unknown-code", "no-code"],
)
def test_a_code_with_a_wrong_parameter_is_refused_and_stays_usable(
    live: LiveServer, issue_code: Callable[..., str], http: httpx.Client, public: str, change: dict[str, str], status: int,
    error: str,
) -> None:  # fmt: skip
    code = issue_code(public)
    oauth_error(exchange(http, public, change.get("code", code), **change), status, error)
    assert exchange(http, public, code).status_code == 200


def test_a_replayed_code_revokes_the_tokens_it_produced(
    live: LiveServer,
    issue_code: Callable[..., str],
    http: httpx.Client,
    public: str,
    confidential: tuple[str, str],
) -> None:
    code = issue_code(public)
    first = exchange(http, public, code).json()
    oauth_error(exchange(http, public, code, code_verifier=VERIFIER[:-1] + "A"), 400,
                "invalid_grant")  # fmt: skip
    # a replay with a wrong verifier revokes nothing
    grant = claims(first["access_token"])["grant_id"]
    assert live.context.login.grant_active(grant, time.time())
    second = exchange(http, public, code)
    oauth_error(second, 400, "invalid_grant")
    # the right parameters prove the code leaked: its whole grant goes
    assert not live.context.login.grant_active(grant, time.time())
    oauth_error(refresh(http, public, first["refresh_token"]), 400, "invalid_grant")


def test_refresh_rotates_and_reuse_revokes_that_family_only(
    live: LiveServer, issue_code: Callable[..., str], http: httpx.Client, public: str
) -> None:
    one = exchange(http, public, issue_code(public)).json()
    other = exchange(http, public, issue_code(public)).json()
    rotated = refresh(http, public, one["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["refresh_token"] != one["refresh_token"]
    id_token = claims(body["id_token"])
    assert "nonce" not in id_token  # OIDC Core §12.2
    assert id_token["auth_time"] == claims(one["id_token"])["auth_time"]
    assert id_token["sid"] == claims(one["id_token"])["sid"]
    # reuse of the consumed token: refused, and the family (its successor too) is revoked
    oauth_error(refresh(http, public, one["refresh_token"]), 400, "invalid_grant")
    oauth_error(refresh(http, public, body["refresh_token"]), 400, "invalid_grant")
    # the user's other login is untouched
    assert refresh(http, public, other["refresh_token"]).status_code == 200


def test_refresh_may_narrow_the_scope_but_not_widen_it(
    live: LiveServer, issue_code: Callable[..., str], http: httpx.Client, public: str
) -> None:
    first = exchange(http, public, issue_code(public, ("openid", "offline_access"))).json()
    oauth_error(refresh(http, public, first["refresh_token"], scope="openid profile"), 400,
                "invalid_scope")  # fmt: skip
    narrowed = refresh(http, public, first["refresh_token"], scope="offline_access")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "offline_access"
    assert "id_token" not in narrowed.json()
    # RFC 6749 §6: only the access token was narrowed; the new refresh token keeps the scope
    widened = refresh(http, public, narrowed.json()["refresh_token"], scope="openid offline_access")
    assert widened.status_code == 200, widened.text
    assert widened.json()["scope"] == "openid offline_access"


def test_another_clients_refresh_token_is_refused(
    live: LiveServer, issue_code: Callable[..., str], http: httpx.Client, public: str
) -> None:
    other, _ = live.create_client(
        public=True, scope="openid offline_access", redirect_uris=[REDIRECT]
    )
    first = exchange(http, public, issue_code(public)).json()
    oauth_error(refresh(http, other, first["refresh_token"]), 400, "invalid_grant")
    assert refresh(http, public, first["refresh_token"]).status_code == 200


def test_revoking_a_refresh_token_revokes_its_grant(
    live: LiveServer,
    issue_code: Callable[..., str],
    http: httpx.Client,
    public: str,
    confidential: tuple[str, str],
) -> None:
    first = exchange(http, public, issue_code(public)).json()
    response = http.post("/revoke", data={"token": first["refresh_token"], "client_id": public})
    assert response.status_code == 200
    oauth_error(refresh(http, public, first["refresh_token"]), 400, "invalid_grant")
    grant = claims(first["access_token"])["grant_id"]
    assert not live.context.login.grant_active(grant, time.time())


def test_introspection_follows_the_grant(
    live: LiveServer,
    issue_code: Callable[..., str],
    http: httpx.Client,
    confidential: tuple[str, str],
) -> None:
    client_id, secret = confidential
    form = {"grant_type": "authorization_code", "code": issue_code(client_id, ("openid",)),
            "redirect_uri": REDIRECT, "code_verifier": VERIFIER}  # fmt: skip
    tokens = http.post("/token", data=form, auth=(client_id, secret)).json()
    assert introspect(http, (client_id, secret), tokens["access_token"])["active"] is True
    grant = claims(tokens["access_token"])["grant_id"]
    live.context.login.refresh_tokens.revoke_grant(grant, now=time.time(), reason="test")
    assert introspect(http, (client_id, secret), tokens["access_token"]) == {"active": False}
    # client_credentials tokens carry no grant and are unaffected
    token = access_token(http, (client_id, secret))
    assert "grant_id" not in claims(token)
    assert introspect(http, (client_id, secret), token)["active"] is True


def test_concurrent_uses_of_one_refresh_token_over_http(
    live: LiveServer, issue_code: Callable[..., str], public: str
) -> None:
    """20 requests with one refresh token at once: one rotation wins, the other 19 are
    invalid_grant, and the family (the winner's successor too) ends up revoked."""
    with httpx.Client(base_url=live.url, timeout=30) as http:
        first = exchange(http, public, issue_code(public)).json()
    barrier = threading.Barrier(20)

    def use() -> httpx.Response:
        with httpx.Client(base_url=live.url, timeout=30) as own:
            barrier.wait()
            return refresh(own, public, first["refresh_token"])

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: use(), range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [400] * 19, statuses
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code == 400)
    winner = next(a for a in answers if a.status_code == 200).json()
    with httpx.Client(base_url=live.url, timeout=30) as http:
        oauth_error(refresh(http, public, winner["refresh_token"]), 400, "invalid_grant")
