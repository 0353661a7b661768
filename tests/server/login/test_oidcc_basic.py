"""The OpenID conformance suite's Basic OP plan, one test per module, against a live server.

Each test is named after its module of ``oidcc-basic-certification-test-plan``
(``OIDCCBasicTestPlan.java`` of the OpenID conformance suite), plus the
Dynamic OP plan's ``oidcc-ensure-redirect-uri-in-authorization-request`` and the RP-initiated
logout plan's core modules.  Where the suite drives a browser we drive ``UserAgent``: it reads
the login and consent forms from the page.  Where the suite shows a screenshot of an error page,
the test asserts an HTML page with status 400 and no ``Location``.  The suite's "wait" steps
move the server's clock forward instead of sleeping.  Modules about features Sealring does not
serve (request objects, ``alg=none``) assert the documented refusal.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers.login import (
    USERNAME,
    LoginWorld,
    Pkce,
    UserAgent,
    auth_params,
    check_id_token,
    error_page,
    error_redirect,
    jwt_claims,
    parse_forms,
    redeem,
    refresh,
    start_flow,
    token_request,
    tokens,
    unsigned_jwt,
    userinfo,
)
from tests.helpers.login_fixtures import agent, login_world, session_cookies, signed_in

__all__ = ["agent", "login_world", "session_cookies", "signed_in"]

pytestmark = pytest.mark.timeout(120)


# -- 1-4: the happy flow and the ID token -------------------------------------------------------


def test_oidcc_server(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    jwks = world.provider.jwks()["keys"]
    kids = [key["kid"] for key in jwks]
    assert all(kids)
    assert len(set(kids)) == len(kids)
    flow, body = tokens(world, agent, world.confidential)
    assert flow.authorization.pages[:1] == ["login"]
    assert flow.authorization.callback is not None
    assert flow.authorization.callback["iss"] == world.issuer
    claims = check_id_token(
        world.provider, body["id_token"], world.confidential.client_id, nonce=flow.nonce
    )
    assert claims["sub"] == world.sub
    info = userinfo(world, body["access_token"])
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == world.sub


def test_oidcc_response_type_missing(login_world: LoginWorld, agent: UserAgent) -> None:
    flow = start_flow(login_world, agent, login_world.confidential, response_type=None)
    error = error_redirect(login_world.provider, flow.authorization, flow.state)
    assert error in {"invalid_request", "unsupported_response_type"}
    assert flow.authorization.pages == []


def test_oidcc_idtoken_signature(login_world: LoginWorld, signed_in: UserAgent) -> None:
    _, body = tokens(login_world, signed_in, login_world.confidential)
    header = json.loads(base64.urlsafe_b64decode(body["id_token"].split(".")[0] + "=="))
    assert header["alg"] in login_world.provider.metadata["id_token_signing_alg_values_supported"]
    key = next(k for k in login_world.provider.jwks()["keys"] if k["kid"] == header["kid"])
    assert key.get("alg", header["alg"]) == header["alg"]
    # A flipped signature bit must fail the same check that passed above.
    head, payload, signature = body["id_token"].split(".")
    forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    with pytest.raises(AssertionError, match="does not verify"):
        check_id_token(login_world.provider, forged, login_world.confidential.client_id)
    # The suite's default is RS256: a client registered for it gets RS256 with an RSA key.
    assert "RS256" in login_world.provider.metadata["id_token_signing_alg_values_supported"]
    rs256 = login_world.create_client(
        name="RS256 Party", redirect_uris=["https://rs.example.test/cb"], id_token_alg="RS256"
    )
    _, body = tokens(login_world, signed_in, rs256)
    header = json.loads(base64.urlsafe_b64decode(body["id_token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    key = next(k for k in login_world.provider.jwks()["keys"] if k["kid"] == header["kid"])
    assert key["kty"] == "RSA"


def test_oidcc_idtoken_unsigned(login_world: LoginWorld, signed_in: UserAgent) -> None:
    # Sealring never signs with "none": it is not advertised, and a client cannot get it.
    assert "none" not in login_world.provider.metadata["id_token_signing_alg_values_supported"]
    _, body = tokens(login_world, signed_in, login_world.confidential)
    header = json.loads(base64.urlsafe_b64decode(body["id_token"].split(".")[0] + "=="))
    assert header["alg"] != "none"
    assert body["id_token"].split(".")[2]


# -- 5-7: userinfo --------------------------------------------------------------------------


def test_oidcc_userinfo_get(login_world: LoginWorld, signed_in: UserAgent) -> None:
    _, body = tokens(login_world, signed_in, login_world.confidential)
    response = userinfo(login_world, body["access_token"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["sub"] == login_world.sub
    # The same request without the token is an RFC 6750 §3 challenge, not data.
    bare = httpx.get(login_world.provider.userinfo_endpoint, timeout=10)
    assert bare.status_code == 401
    assert bare.headers["www-authenticate"].lower().startswith("bearer")


def test_oidcc_userinfo_post_header(login_world: LoginWorld, signed_in: UserAgent) -> None:
    _, body = tokens(login_world, signed_in, login_world.confidential)
    response = httpx.post(
        login_world.provider.userinfo_endpoint,
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == login_world.sub


def test_oidcc_userinfo_post_body(login_world: LoginWorld, signed_in: UserAgent) -> None:
    # RFC 6750 §2.2: a form-encoded body parameter; the suite only warns when it is refused, so a
    # refusal must at least be a proper RFC 6750 error, never a 500 or someone's claims.
    _, body = tokens(login_world, signed_in, login_world.confidential)
    response = httpx.post(
        login_world.provider.userinfo_endpoint,
        data={"access_token": body["access_token"]},
        timeout=10,
    )
    if response.status_code == 200:
        assert response.json()["sub"] == login_world.sub
    else:
        assert response.status_code in {400, 401}, response.text
        assert "www-authenticate" in response.headers
    forged = httpx.post(
        login_world.provider.userinfo_endpoint,
        data={"access_token": body["access_token"][:-2] + "AA"},
        timeout=10,
    )
    assert forged.status_code in {400, 401}


# -- 8-14: nonce, scopes, parameter order ---------------------------------------------------


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    flow, body = tokens(login_world, signed_in, login_world.confidential, nonce=None)
    claims = check_id_token(
        login_world.provider, body["id_token"], login_world.confidential.client_id, nonce=None
    )
    assert "nonce" not in claims
    assert flow.nonce is None


def _claims_for(
    world: LoginWorld, signed_in: UserAgent, scope: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """ID token claims (already checked by ``tokens``), userinfo and the token response."""
    _, body = tokens(world, signed_in, world.confidential, scope=scope)
    info = userinfo(world, body["access_token"])
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == world.sub
    return jwt_claims(body["id_token"]), info.json(), body


def test_oidcc_scope_profile(login_world: LoginWorld, signed_in: UserAgent) -> None:
    id_claims, info, _ = _claims_for(login_world, signed_in, "openid profile")
    assert info["name"] == "Alice Liddell"
    assert "email" not in info
    # OIDC Core §5.4: for response_type=code the scope claims come from userinfo.
    assert "name" not in id_claims


def test_oidcc_scope_email(login_world: LoginWorld, signed_in: UserAgent) -> None:
    id_claims, info, _ = _claims_for(login_world, signed_in, "openid email")
    assert info["email"] == "alice@example.com"
    assert "name" not in info
    assert "email" not in id_claims


def test_oidcc_scope_address(login_world: LoginWorld, signed_in: UserAgent) -> None:
    # The client is not registered for `address`: it is dropped, the flow still succeeds.
    _, info, body = _claims_for(login_world, signed_in, "openid address")
    assert "address" not in body.get("scope", "").split()
    assert "address" not in info


def test_oidcc_scope_phone(login_world: LoginWorld, signed_in: UserAgent) -> None:
    _, info, body = _claims_for(login_world, signed_in, "openid phone")
    assert "phone" not in body.get("scope", "").split()
    assert "phone_number" not in info


def test_oidcc_scope_all(login_world: LoginWorld, signed_in: UserAgent) -> None:
    _, info, body = _claims_for(login_world, signed_in, "openid profile email address phone")
    assert info["name"] == "Alice Liddell"
    assert info["email"] == "alice@example.com"
    assert set(body["scope"].split()) == {"openid", "profile", "email"}


def test_oidcc_alternate_happy_flow(login_world: LoginWorld, signed_in: UserAgent) -> None:
    world = login_world
    pkce = Pkce.new()
    params = auth_params(
        world.confidential, pkce, state="alt-state", nonce="alt-nonce", scope="email profile openid"
    )
    random.Random(7).shuffle(params)
    auth = signed_in.authorize(world.provider.authorization_endpoint, params)
    assert auth.callback is not None
    assert auth.callback["state"] == "alt-state"
    response = token_request(
        world,
        world.confidential,
        {
            "code_verifier": pkce.verifier,
            "redirect_uri": world.confidential.redirect_uri,
            "code": auth.code,
            "grant_type": "authorization_code",
        },
    )
    assert response.status_code == 200, response.text
    check_id_token(
        world.provider, response.json()["id_token"], world.confidential.client_id, nonce="alt-nonce"
    )


# -- 15-27: display, prompt, max_age, hints, locales, acr ------------------------------------


@pytest.mark.parametrize("display", ["page", "popup"])
def test_oidcc_display(login_world: LoginWorld, agent: UserAgent, display: str) -> None:
    """oidcc-display-page and oidcc-display-popup."""
    flow, _ = tokens(login_world, agent, login_world.confidential, display=display)
    assert flow.authorization.pages[:1] == ["login"]


def test_oidcc_prompt_login(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    _, first = tokens(world, agent, world.confidential)
    world.clock.advance(2)
    flow, second = tokens(world, agent, world.confidential, prompt="login")
    assert flow.authorization.pages[0] == "login"
    before, after = jwt_claims(first["id_token"]), jwt_claims(second["id_token"])
    assert after["sub"] == before["sub"]
    assert after["auth_time"] > before["auth_time"]


def test_oidcc_prompt_none_not_logged_in(login_world: LoginWorld, agent: UserAgent) -> None:
    flow = start_flow(login_world, agent, login_world.confidential, prompt="none")
    assert flow.authorization.pages == []
    assert error_redirect(login_world.provider, flow.authorization, flow.state) == "login_required"


def test_oidcc_prompt_none_logged_in(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    _, first = tokens(world, agent, world.confidential)
    world.clock.advance(1)
    flow, second = tokens(world, agent, world.confidential, prompt="none")
    assert flow.authorization.pages == []
    before, after = jwt_claims(first["id_token"]), jwt_claims(second["id_token"])
    assert after["sub"] == before["sub"]
    assert after["auth_time"] == before["auth_time"]


def test_oidcc_max_age_1(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    _, first = tokens(world, agent, world.confidential)
    world.clock.advance(2)
    flow, second = tokens(world, agent, world.confidential, max_age="1")
    assert flow.authorization.pages[0] == "login"
    assert jwt_claims(second["id_token"])["auth_time"] > jwt_claims(first["id_token"])["auth_time"]


def test_oidcc_max_age_10000(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    _, first = tokens(world, agent, world.confidential)
    world.clock.advance(2)
    flow, second = tokens(world, agent, world.confidential, max_age="10000")
    assert "login" not in flow.authorization.pages
    before, after = jwt_claims(first["id_token"]), jwt_claims(second["id_token"])
    assert (after["sub"], after["auth_time"]) == (before["sub"], before["auth_time"])


def test_oidcc_ensure_request_with_unknown_parameter_succeeds(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    flow, _ = tokens(login_world, signed_in, login_world.confidential, extra="foobar")
    # Signed in earlier, consent remembered: straight back to the client.
    assert flow.authorization.pages == []


def test_oidcc_id_token_hint(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    _, first = tokens(world, agent, world.confidential)
    flow, second = tokens(
        world, agent, world.confidential, prompt="none", id_token_hint=first["id_token"]
    )
    assert flow.authorization.pages == []
    before, after = jwt_claims(first["id_token"]), jwt_claims(second["id_token"])
    assert (after["sub"], after["auth_time"]) == (before["sub"], before["auth_time"])


def test_oidcc_login_hint(login_world: LoginWorld, agent: UserAgent) -> None:
    flow = start_flow(
        login_world, agent, login_world.confidential, login_hint=USERNAME, username=None
    )
    assert flow.authorization.pages == ["login"]
    page = flow.authorization.page
    assert page is not None
    assert page.status_code == 200
    assert f'value="{USERNAME}"' in page.text


def test_oidcc_ui_locales(login_world: LoginWorld, agent: UserAgent) -> None:
    flow, _ = tokens(login_world, agent, login_world.confidential, ui_locales="se")
    assert flow.authorization.pages[:1] == ["login"]


def test_oidcc_claims_locales(login_world: LoginWorld, signed_in: UserAgent) -> None:
    flow, _ = tokens(login_world, signed_in, login_world.confidential, claims_locales="se")
    # Signed in earlier, consent remembered: straight back to the client.
    assert flow.authorization.pages == []


def test_oidcc_ensure_request_with_acr_values_succeeds(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    _, body = tokens(login_world, signed_in, login_world.confidential, acr_values="1 2")
    assert body["id_token"]


# -- 28-30: code reuse and redirect URIs -----------------------------------------------------


def test_oidcc_codereuse(login_world: LoginWorld, signed_in: UserAgent) -> None:
    flow = start_flow(login_world, signed_in, login_world.confidential)
    first = redeem(login_world, flow)
    assert first.status_code == 200, first.text
    second = redeem(login_world, flow)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"


def test_oidcc_codereuse_30seconds(login_world: LoginWorld, signed_in: UserAgent) -> None:
    flow = start_flow(login_world, signed_in, login_world.confidential, scope="openid offline_access",
                      prompt="consent")  # fmt: skip
    first = redeem(login_world, flow)
    assert first.status_code == 200, first.text
    assert userinfo(login_world, first.json()["access_token"]).status_code == 200
    login_world.clock.advance(30)
    second = redeem(login_world, flow)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: the tokens issued from the replayed code are revoked.
    revoked = userinfo(login_world, first.json()["access_token"])
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]
    if "refresh_token" in first.json():
        again = refresh(login_world, login_world.confidential, first.json()["refresh_token"])
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"


def test_oidcc_ensure_registered_redirect_uri(login_world: LoginWorld, agent: UserAgent) -> None:
    client = login_world.confidential
    flow = start_flow(login_world, agent, client, redirect_uri=client.redirect_uri + "/appended")
    error_page(flow.authorization)


def test_oidcc_ensure_redirect_uri_in_authorization_request(
    login_world: LoginWorld, agent: UserAgent
) -> None:
    # Dynamic OP plan: two URIs registered, none sent -> error page (OAuth 2.1 §2.3.2).
    flow = start_flow(login_world, agent, login_world.confidential, redirect_uri=None)
    error_page(flow.authorization)


# -- 31-38 ------------------------------------------------------------------------------------


def test_oidcc_ensure_post_request_succeeds(login_world: LoginWorld, signed_in: UserAgent) -> None:
    flow, body = tokens(login_world, signed_in, login_world.confidential, method="POST")
    # Signed in earlier, consent remembered: straight back to the client.
    assert flow.authorization.pages == []
    assert body["id_token"]


def test_oidcc_server_client_secret_post(login_world: LoginWorld, signed_in: UserAgent) -> None:
    _, body = tokens(login_world, signed_in, login_world.post_client)
    assert userinfo(login_world, body["access_token"]).json()["sub"] == login_world.sub
    # The same client authenticating with Basic is refused: it registered client_secret_post.
    flow = start_flow(login_world, signed_in, login_world.post_client)
    client = login_world.post_client
    assert client.secret is not None
    wrong = httpx.post(
        login_world.provider.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": flow.authorization.code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": flow.pkce.verifier,
        },
        auth=(client.client_id, client.secret),
        timeout=10,
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


def test_oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(
    login_world: LoginWorld, agent: UserAgent
) -> None:
    assert login_world.provider.metadata.get("request_uri_parameter_supported") is False
    flow = start_flow(
        login_world, agent, login_world.confidential, request_uri="https://rp.example.test/req"
    )
    assert flow.authorization.pages == []
    error = error_redirect(login_world.provider, flow.authorization, flow.state)
    assert error == "request_uri_not_supported"


def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(
    login_world: LoginWorld, agent: UserAgent
) -> None:
    assert login_world.provider.metadata.get("request_parameter_supported") is False
    client = login_world.confidential
    request = unsigned_jwt({"client_id": client.client_id, "response_type": "code"})
    flow = start_flow(login_world, agent, client, request=request)
    assert flow.authorization.pages == []
    assert (
        error_redirect(login_world.provider, flow.authorization, flow.state)
        == "request_not_supported"
    )


def test_oidcc_claims_essential(login_world: LoginWorld, signed_in: UserAgent) -> None:
    claims = json.dumps({"userinfo": {"name": {"essential": True}}})
    _, body = tokens(
        login_world, signed_in, login_world.confidential, scope="openid", claims=claims
    )
    info = userinfo(login_world, body["access_token"])
    assert info.status_code == 200
    if login_world.provider.metadata.get("claims_parameter_supported"):
        assert info.json()["name"] == "Alice Liddell"
    else:
        # Not served yet (docs/login.md): ignored, so only the scope's claims come back.
        assert set(info.json()) == {"sub"}


def test_oidcc_ensure_request_object_with_redirect_uri(
    login_world: LoginWorld, agent: UserAgent
) -> None:
    client = login_world.confidential
    request = unsigned_jwt({"client_id": client.client_id, "redirect_uri": RP_OTHER})
    flow = start_flow(login_world, agent, client, request=request)
    assert flow.authorization.location is not None
    # Never the request object's URI: the refusal goes to the validated query redirect_uri.
    assert flow.authorization.location.startswith(client.redirect_uri + "?")
    assert (
        error_redirect(login_world.provider, flow.authorization, flow.state)
        == "request_not_supported"
    )


RP_OTHER = "https://evil.example.test/cb"


def test_oidcc_refresh_token(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    _, first = tokens(
        world, agent, world.confidential, scope="openid email offline_access", prompt="consent"
    )
    assert "refresh_token" in first
    world.clock.advance(1)
    response = refresh(world, world.confidential, first["refresh_token"], scope="openid email")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["access_token"] != first["access_token"]
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int)
    assert body["expires_in"] > 0
    assert len(body["refresh_token"]) >= 43
    assert body["refresh_token"] != first["refresh_token"]
    assert userinfo(world, body["access_token"]).status_code == 200
    if "id_token" in body:
        # CompareIdTokenClaims: same iss, sub, aud, azp, auth_time; a newer iat.
        before = jwt_claims(first["id_token"])
        after = check_id_token(
            world.provider,
            body["id_token"],
            world.confidential.client_id,
            nonce=jwt_claims(body["id_token"]).get("nonce"),
        )
        for name in ("iss", "sub", "aud", "azp", "auth_time"):
            assert after.get(name) == before.get(name), name
        assert after["iat"] > before["iat"]
    # Client 2's refresh token is refused for client 1 (400 invalid_grant).
    agent.http.cookies.clear()
    _, other = tokens(world, agent, world.second, scope="openid offline_access", prompt="consent")
    stolen = refresh(world, world.confidential, other["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    # ... and did not burn it for its owner.
    assert refresh(world, world.second, other["refresh_token"]).status_code == 200


def test_oidcc_ensure_request_with_valid_pkce_succeeds(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    flow = start_flow(login_world, signed_in, login_world.confidential)
    assert redeem(login_world, flow, code_verifier=Pkce.new().verifier).status_code == 400
    # The failed attempt did not burn the code: the right verifier still redeems it.
    assert redeem(login_world, flow).status_code == 200


# -- RP-initiated logout (OIDCCRpInitiatedLogoutTestPlan, the core modules) -------------------


def _logout(world: LoginWorld, agent: UserAgent, **params: str) -> httpx.Response:
    return agent.http.get(world.provider.end_session_endpoint, params=params)


def _follow_to_client(world: LoginWorld, agent: UserAgent, response: httpx.Response,
                      decision: bool = True) -> httpx.Response:  # fmt: skip
    """Follow the server's own redirects and confirm a logout page if one is shown."""
    for _ in range(10):
        if response.is_redirect:
            location = response.headers["location"]
            if urlsplit(location).netloc and not location.startswith(world.issuer):
                return response
            response = agent.http.get(httpx.URL(str(response.url)).join(location))
            continue
        forms = parse_forms(response.text) if response.status_code == 200 else []
        if not forms or not decision:
            return response
        # The user presses the page's first button (the confirmation).
        button = dict(forms[0].buttons[:1])
        response = agent.submit(response, forms[0], button)
    raise AssertionError("logout did not end")


def test_oidcc_rp_initiated_logout(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    client = world.confidential
    _, body = tokens(world, agent, client)
    response = _follow_to_client(world, agent, _logout(
        world, agent, id_token_hint=body["id_token"], state="bye",
        post_logout_redirect_uri=str(client.post_logout_redirect_uri),
    ))  # fmt: skip
    assert response.is_redirect
    location = response.headers["location"]
    assert location.startswith(f"{client.post_logout_redirect_uri}?")
    assert "state=bye" in urlsplit(location).query
    # Logged out: prompt=none now fails.
    flow = start_flow(world, agent, client, prompt="none")
    assert error_redirect(world.provider, flow.authorization, flow.state) == "login_required"


@pytest.mark.parametrize(
    "suffix", ["", "?added=1", "/other"], ids=["bad-uri", "query-added", "path-added"]
)
def test_oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(
    login_world: LoginWorld, agent: UserAgent, suffix: str
) -> None:
    world = login_world
    _, body = tokens(world, agent, world.confidential)
    target = (
        "https://evil.example.test/logged-out"
        if not suffix
        else (str(world.confidential.post_logout_redirect_uri) + suffix)
    )
    response = _logout(world, agent, id_token_hint=body["id_token"],
                       post_logout_redirect_uri=target)  # fmt: skip
    # Never redirected to an unregistered address: a page (an error, or a question).
    response = _follow_to_client(world, agent, response, decision=False)
    assert not response.is_redirect, response.headers["location"]
    assert response.status_code in {200, 400}


def test_oidcc_rp_initiated_logout_no_params(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    tokens(world, agent, world.confidential)
    response = _follow_to_client(world, agent, _logout(world, agent))
    assert response.status_code == 200, response.status_code
    flow = start_flow(world, agent, world.confidential, prompt="none")
    assert error_redirect(world.provider, flow.authorization, flow.state) == "login_required"


def test_oidcc_rp_initiated_logout_modified_id_token_hint(
    login_world: LoginWorld, agent: UserAgent
) -> None:
    world = login_world
    client = world.confidential
    _, body = tokens(world, agent, client)
    claims = jwt_claims(body["id_token"])
    response = _logout(world, agent, id_token_hint=unsigned_jwt(claims),
                       post_logout_redirect_uri=str(client.post_logout_redirect_uri))  # fmt: skip
    # Must not redirect on an unsigned hint: an error page, or a page asking the user.
    response = _follow_to_client(world, agent, response, decision=False)
    assert not response.is_redirect, response.headers["location"]
    assert response.status_code in {200, 400}
