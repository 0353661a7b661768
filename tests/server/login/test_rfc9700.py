"""RFC 9700 (OAuth 2.0 Security BCP) and OAuth 2.1 server MUSTs, one test per item T-1 to T-34.

The items are the server MUSTs of RFC 9700 and the OAuth 2.1 draft; each test is named after its item and
says which text it enforces.  Every error branch of ``/authorize`` and ``/token`` appears here:
errors before the client and redirect URI are known are pages, later ones are redirects with
``state`` and ``iss``.  The last tests cover the forms' CSRF protection.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from sealring.cli import app as cli_app
from tests.helpers.login import (
    PASSWORD,
    Authorization,
    LoginWorld,
    Pkce,
    RegisteredClient,
    UserAgent,
    auth_params,
    error_page,
    error_redirect,
    jwt_claims,
    parse_forms,
    redeem,
    refresh,
    start_flow,
    token_request,
    tokens,
    userinfo,
)
from tests.helpers.login_fixtures import agent, login_world, session_cookies, signed_in

__all__ = ["agent", "login_world", "session_cookies", "signed_in"]

pytestmark = pytest.mark.timeout(120)

FRAME_HEADERS = ("x-frame-options", "content-security-policy")


def no_framing(response: httpx.Response) -> None:
    """RFC 9700 §4.16: the page cannot be framed by another origin."""
    assert response.headers.get("x-frame-options", "").upper() == "DENY", response.headers
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", "")


def request_only(
    world: LoginWorld, agent: UserAgent, client: RegisteredClient, **extra: Any
) -> Authorization:
    """An authorization request where the user does nothing (stops at any page)."""
    params = auth_params(client, Pkce.new(), state="st-1", nonce=None, **extra)
    return agent.authorize(
        world.provider.authorization_endpoint, params, username=None, decision=None
    )


def offline(world: LoginWorld, agent: UserAgent, client: RegisteredClient,
            scope: str = "openid email offline_access") -> dict[str, Any]:  # fmt: skip
    """A token response with a refresh token."""
    _, body = tokens(world, agent, client, scope=scope, prompt="consent")
    assert "refresh_token" in body, body
    return body


# -- authorization endpoint and redirect URIs ---------------------------------------------------


def test_t01_redirect_uri_exact_string_match(login_world: LoginWorld, agent: UserAgent) -> None:
    registered = login_world.confidential.redirect_uri  # https://rp.example.test/cb
    variants = [
        registered + "/",
        registered + "/appended",
        registered.replace("rp.example", "RP.example"),
        registered.replace("/cb", "/CB"),
        registered.replace("/cb", "/c%62"),
        registered.replace("/cb", "/%2Fcb"),
        registered + "?added=1",
        registered.replace("https://", "https://user@"),
        registered.replace("https://", "https://evil.test@"),
        registered + "/..;/cb",
        registered.replace("rp.example.test", "rp.example.test:443"),
        registered.replace("rp.example.test", "rp.example.test.evil.test"),
        registered.replace("https://", "http://"),
        registered + "#fragment",
    ]
    for uri in variants:
        agent.http.cookies.clear()
        error_page(request_only(login_world, agent, login_world.confidential, redirect_uri=uri))
    # The registered string itself proceeds (to the login page), so the page above is the rule.
    assert request_only(login_world, agent, login_world.confidential).pages == ["login"]


def test_t02_loopback_redirect_any_port(login_world: LoginWorld, agent: UserAgent) -> None:
    native = login_world.create_client(
        name="Native App", public=True,
        redirect_uris=["http://127.0.0.1/callback", "http://[::1]:8080/callback"],
    )  # fmt: skip
    for uri in ("http://127.0.0.1:53123/callback", "http://127.0.0.1/callback",
                "http://[::1]:61000/callback", "http://[::1]/callback"):  # fmt: skip
        auth = request_only(login_world, agent, native, redirect_uri=uri, prompt="none")
        assert error_redirect(login_world.provider, auth, "st-1") == "login_required"
        assert auth.location is not None
        assert auth.location.startswith(uri + "?")
    for uri in ("http://localhost:53123/callback", "http://127.0.0.1:53123/other",
                "http://127.0.0.2:53123/callback", "https://127.0.0.1:53123/callback"):  # fmt: skip
        error_page(request_only(login_world, agent, native, redirect_uri=uri, prompt="none"))
    # The port rule is only for loopback redirects of native clients, never for https ones.
    https_port = login_world.confidential.redirect_uri.replace(".test/", ".test:8443/")
    error_page(request_only(login_world, agent, login_world.confidential, redirect_uri=https_port))


def test_t03_unverified_client_or_redirect_uri_shows_a_page(
    login_world: LoginWorld, agent: UserAgent
) -> None:
    client = login_world.confidential
    cases: list[dict[str, str | None]] = [
        {"client_id": "no-such-client"},
        {"client_id": None},
        {"redirect_uri": "https://evil.example.test/cb"},
        # Also with other errors in the request: the unverified redirect URI wins.
        {"redirect_uri": "https://evil.example.test/cb", "response_type": "token"},
        {"redirect_uri": "https://evil.example.test/cb", "prompt": "none"},
        {"client_id": "no-such-client", "code_challenge": None},
    ]
    for case in cases:
        page = error_page(request_only(login_world, agent, client, **case))
        assert "evil.example.test" not in page.text
        no_framing(page)
    # Another client's registered URI is not this client's.
    error_page(
        request_only(login_world, agent, client, redirect_uri=login_world.second.redirect_uri)
    )


def test_t04_redirect_uri_required_when_ambiguous_or_openid(
    login_world: LoginWorld, agent: UserAgent
) -> None:
    # Two registered URIs, none sent.
    error_page(request_only(login_world, agent, login_world.confidential, redirect_uri=None))
    # One registered URI: OIDC Core §3.1.2.1 still requires it for openid requests ...
    single = login_world.create_client(
        name="One URI", redirect_uris=["https://one.example.test/cb"]
    )
    error_page(request_only(login_world, agent, single, redirect_uri=None))
    # ... while a plain OAuth request may omit it (RFC 6749 §3.1.2.3).
    plain = request_only(login_world, agent, single, redirect_uri=None, scope="email")
    assert plain.pages == ["login"], plain


def test_t05_registration_refuses_fragments_and_plain_http() -> None:
    runner = CliRunner()
    for uri, public in [
        ("https://rp.example.test/cb#frag", False),
        ("http://rp.example.test/cb", False),
        ("http://rp.example.test/cb", True),
        ("http://localhost:8080/cb", True),
        ("cb", False),
        ("https://user:pw@rp.example.test/cb", False),
    ]:
        args = ["clients", "create", "--name", "bad", "--grant-types", "authorization_code",
                "--scope", "openid", "--redirect-uri", uri, "--database", "sqlite://"]  # fmt: skip
        result = runner.invoke(cli_app, args + (["--public"] if public else []))
        assert result.exit_code == 2, (uri, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout
        assert "redirect" in (result.stderr + result.stdout).lower()


def test_t06_registered_query_is_kept(login_world: LoginWorld, signed_in: UserAgent) -> None:
    uri = "https://rp.example.test/cb?tenant=a&x=%2F"
    client = login_world.create_client(name="Query URI", redirect_uris=[uri])
    flow, _ = tokens(login_world, signed_in, client)
    location = flow.authorization.location
    assert location is not None
    query = parse_qsl(urlsplit(location).query)
    assert location.startswith("https://rp.example.test/cb?tenant=a&x=%2F&")
    assert ("tenant", "a") in query
    assert ("x", "/") in query
    assert {name for name, _ in query} == {"tenant", "x", "code", "state", "iss"}


def test_t07_no_open_redirector(login_world: LoginWorld, agent: UserAgent) -> None:
    evil = "https://evil.example.test/"
    # Error pages never link to a URI from the failed request.
    page = error_page(request_only(login_world, agent, login_world.confidential, redirect_uri=evil))
    assert evil not in page.text
    # The login page ignores made-up return addresses.
    auth = request_only(login_world, agent, login_world.confidential)
    assert auth.page is not None
    login_url = str(auth.page.url)
    for name in ("next", "return_to", "redirect_uri", "returnUrl"):
        response = agent.http.get(login_url, params={name: evil})
        assert not response.is_redirect or evil not in response.headers["location"]
        forms = parse_forms(response.text)
        assert all(evil not in form.action for form in forms)
    # Logout never sends anyone to an unregistered address.
    logout = agent.http.get(
        login_world.provider.end_session_endpoint,
        params={"post_logout_redirect_uri": evil, "client_id": login_world.confidential.client_id},
    )
    assert not logout.is_redirect or not logout.headers["location"].startswith(evil)
    assert evil not in "".join(f.action for f in parse_forms(logout.text))


def test_t08_no_cors_on_authorization_endpoint(login_world: LoginWorld) -> None:
    endpoint = login_world.provider.authorization_endpoint
    origin = {"Origin": "https://evil.example.test"}
    preflight = httpx.options(
        endpoint, headers={**origin, "Access-Control-Request-Method": "GET"}, timeout=10
    )
    assert "access-control-allow-origin" not in preflight.headers
    params = auth_params(login_world.confidential, Pkce.new(), state="s", nonce=None)
    response = httpx.get(endpoint, params=tuple(params), headers=origin, timeout=10)
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers


def test_t09_pages_cannot_be_framed(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    # The authorization endpoint's own error page.
    no_framing(error_page(request_only(world, agent, world.confidential, client_id="nobody")))
    # Login page, then consent page.
    login = request_only(world, agent, world.confidential)
    assert login.page is not None
    assert login.pages == ["login"]
    no_framing(login.page)
    consent = agent.authorize(
        world.provider.authorization_endpoint,
        auth_params(world.confidential, Pkce.new(), state="s", nonce=None, prompt="consent"),
        decision=None,
    )
    assert consent.pages[-1:] == ["consent"]
    assert consent.page is not None
    no_framing(consent.page)
    assert consent.page.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in consent.page.headers["cache-control"]
    # The logout page.
    # The logout page (a signed-in user without a hint is asked to confirm).
    logout = agent.http.get(world.provider.end_session_endpoint)
    assert logout.status_code == 200
    assert parse_forms(logout.text)
    no_framing(logout)


def test_t10_credentials_post_answered_with_303(login_world: LoginWorld, agent: UserAgent) -> None:
    auth = request_only(login_world, agent, login_world.confidential, prompt="consent")
    assert auth.page is not None
    form = next(f for f in parse_forms(auth.page.text) if "password" in f.inputs)
    response = agent.submit(auth.page, form, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 303, response.status_code
    consent_page = agent.http.get(httpx.URL(str(response.url)).join(response.headers["location"]))
    while consent_page.is_redirect:
        consent_page = agent.http.get(
            httpx.URL(str(consent_page.url)).join(consent_page.headers["location"])
        )
    consent = next(f for f in parse_forms(consent_page.text) if f.buttons)
    answer = agent.submit(consent_page, consent, {"decision": "allow"})
    assert answer.status_code == 303, answer.status_code
    # A failed sign-in is a page (or a 303 back to it), never a 307 that re-posts the password.
    agent.http.cookies.clear()
    auth = request_only(login_world, agent, login_world.confidential)
    assert auth.page is not None
    form = next(f for f in parse_forms(auth.page.text) if "password" in f.inputs)
    wrong = agent.submit(auth.page, form, {"username": "alice", "password": "wrong password!"})
    assert wrong.status_code in {200, 303, 400, 401}, wrong.status_code
    assert PASSWORD not in wrong.text
    assert "wrong password!" not in wrong.text


def test_t11_unknown_parameters_ignored_response_type_checked(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    flow, _ = tokens(login_world, signed_in, login_world.confidential, foo="bar", x_unknown="1")
    assert flow.authorization.callback is not None
    client = login_world.confidential
    missing = request_only(login_world, signed_in, client, response_type=None)
    assert error_redirect(login_world.provider, missing, "st-1") in {
        "invalid_request", "unsupported_response_type"
    }  # fmt: skip
    for response_type in ("token", "id_token", "code id_token", "code token", "none", "banana"):
        auth = request_only(login_world, signed_in, client, response_type=response_type)
        assert error_redirect(login_world.provider, auth, "st-1") == "unsupported_response_type", (
            response_type
        )
    # A parameter sent twice is invalid_request (RFC 6749 §3.1).
    params = [*auth_params(client, Pkce.new(), state="st-1", nonce=None), ("scope", "openid")]
    twice = signed_in.authorize(login_world.provider.authorization_endpoint, params, username=None)
    assert error_redirect(login_world.provider, twice, None) == "invalid_request"


# -- PKCE --------------------------------------------------------------------------------------


def test_t12_pkce_s256_advertised(login_world: LoginWorld) -> None:
    assert login_world.provider.metadata["code_challenge_methods_supported"] == ["S256"]


def test_t13_code_challenge_required_for_every_client(
    login_world: LoginWorld, agent: UserAgent
) -> None:
    for client in (login_world.public, login_world.confidential):
        auth = request_only(login_world, agent, client, code_challenge=None)
        assert error_redirect(login_world.provider, auth, "st-1") == "invalid_request"
        assert auth.pages == []
        auth = request_only(
            login_world, agent, client, code_challenge=None, code_challenge_method=None
        )
        assert error_redirect(login_world.provider, auth, "st-1") == "invalid_request"


def test_t14_code_verifier_required_and_checked(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    flow = start_flow(login_world, signed_in, login_world.public)
    missing = redeem(login_world, flow, code_verifier=None)
    assert missing.status_code == 400
    assert missing.json()["error"] in {"invalid_request", "invalid_grant"}
    wrong = redeem(login_world, flow, code_verifier=Pkce.new().verifier)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    # The challenge itself is not a verifier.
    as_verifier = redeem(login_world, flow, code_verifier=flow.pkce.challenge)
    assert as_verifier.status_code == 400
    assert as_verifier.json()["error"] == "invalid_grant"
    right = redeem(login_world, flow)
    assert right.status_code == 200, right.text


def test_t15_pkce_downgrade_refused(login_world: LoginWorld, signed_in: UserAgent) -> None:
    # RFC 9700 §4.8: an attacker strips the challenge from the victim's request to get a code
    # that redeems without a verifier.  No code is ever issued without a challenge ...
    stripped = request_only(login_world, signed_in, login_world.confidential, code_challenge=None,
                            code_challenge_method=None)  # fmt: skip
    assert error_redirect(login_world.provider, stripped, "st-1") == "invalid_request"
    # ... and a code issued with one never redeems without its verifier.
    flow = start_flow(login_world, signed_in, login_world.confidential)
    assert redeem(login_world, flow, code_verifier=None).status_code == 400
    assert redeem(login_world, flow).status_code == 200


def test_t16_plain_and_malformed_pkce_refused(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    client = login_world.public
    bad: list[dict[str, str | None]] = [
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
        {"code_challenge_method": "S512"},
        {"code_challenge": "a" * 42},
        {"code_challenge": "a" * 129},
        {"code_challenge": "a" * 42 + "!"},
        {"code_challenge": "a" * 42 + "="},
    ]
    for case in bad:
        auth = request_only(login_world, signed_in, client, **case)
        assert error_redirect(login_world.provider, auth, "st-1") == "invalid_request", case
    # A verifier outside RFC 7636 §4.1's syntax is refused at the token endpoint.
    flow = start_flow(login_world, signed_in, client)
    for verifier in ("a" * 42, "a" * 129, "a" * 42 + " "):
        response = redeem(login_world, flow, code_verifier=verifier)
        assert response.status_code == 400
        assert response.json()["error"] in {"invalid_request", "invalid_grant"}
    assert redeem(login_world, flow).status_code == 200


def test_t17_challenge_never_echoed(login_world: LoginWorld, signed_in: UserAgent) -> None:
    flow = start_flow(login_world, signed_in, login_world.confidential)
    assert flow.authorization.location is not None
    assert flow.pkce.challenge not in flow.authorization.location
    response = redeem(login_world, flow)
    assert flow.pkce.challenge not in response.text
    for jwt in (response.json()["access_token"], response.json()["id_token"]):
        assert flow.pkce.challenge not in json.dumps(jwt_claims(jwt))
    error = request_only(login_world, signed_in, login_world.confidential, response_type="token")
    assert error.location is not None
    assert "code_challenge" not in error.location


# -- authorization code ------------------------------------------------------------------------


def test_t18_code_bound_to_client_and_redirect_uri(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    world = login_world
    flow = start_flow(world, signed_in, world.confidential)
    stolen = token_request(world, world.second, {
        "grant_type": "authorization_code", "code": flow.authorization.code,
        "redirect_uri": world.confidential.redirect_uri, "code_verifier": flow.pkce.verifier,
    })  # fmt: skip
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    # A public client cannot redeem a confidential client's code by naming it either.
    as_public = httpx.post(world.provider.token_endpoint, data={
        "grant_type": "authorization_code", "code": flow.authorization.code,
        "client_id": world.confidential.client_id, "redirect_uri": world.confidential.redirect_uri,
        "code_verifier": flow.pkce.verifier,
    }, timeout=10)  # fmt: skip
    assert as_public.status_code == 401
    assert as_public.json()["error"] == "invalid_client"
    other_uri = world.confidential.redirect_uri + "2"  # cb2: registered, but not this code's
    assert redeem(world, flow, redirect_uri=other_uri).json()["error"] == "invalid_grant"
    # None of the refused attempts burned the code.
    assert redeem(world, flow).status_code == 200


def test_t19_code_single_use_replay_revokes(login_world: LoginWorld, signed_in: UserAgent) -> None:
    world = login_world
    flow = start_flow(world, signed_in, world.confidential, scope="openid offline_access",
                      prompt="consent")  # fmt: skip
    first = redeem(world, flow)
    assert first.status_code == 200
    issued = first.json()
    # A replay with a wrong verifier is refused and revokes nothing (OAuth 2.1 §4.1.3).
    wrong = redeem(world, flow, code_verifier=Pkce.new().verifier)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert userinfo(world, issued["access_token"]).status_code == 200
    # A replay by another client revokes nothing either.
    other = token_request(world, world.second, {
        "grant_type": "authorization_code", "code": flow.authorization.code,
        "redirect_uri": world.confidential.redirect_uri, "code_verifier": flow.pkce.verifier,
    })  # fmt: skip
    assert other.status_code == 400
    assert userinfo(world, issued["access_token"]).status_code == 200
    # A correct replay is refused and revokes what the code produced.
    replay = redeem(world, flow)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert "access_token" not in replay.json()
    assert userinfo(world, issued["access_token"]).status_code == 401
    gone = refresh(world, world.confidential, issued["refresh_token"])
    assert gone.status_code == 400
    assert gone.json()["error"] == "invalid_grant"


def test_t20_code_expires(login_world: LoginWorld, signed_in: UserAgent) -> None:
    world = login_world
    late = start_flow(world, signed_in, world.confidential)
    on_time = start_flow(world, signed_in, world.confidential)
    world.clock.advance(30)
    assert redeem(world, on_time).status_code == 200
    world.clock.advance(31)  # 61 s after issue: past the 60 s lifetime.
    expired = redeem(world, late)
    assert expired.status_code == 400
    assert expired.json()["error"] == "invalid_grant"


def test_t21_token_request_redirect_uri_must_match(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    flow = start_flow(login_world, signed_in, login_world.confidential)
    missing = redeem(login_world, flow, redirect_uri=None)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    for uri in (flow.client.redirect_uri + "/", "https://evil.example.test/cb"):
        wrong = redeem(login_world, flow, redirect_uri=uri)
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "invalid_grant"
    assert redeem(login_world, flow).status_code == 200


# -- mix-up ------------------------------------------------------------------------------------


def test_t22_iss_in_every_authorization_response(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    world = login_world
    assert world.provider.metadata["authorization_response_iss_parameter_supported"] is True
    answers: list[Authorization] = [
        start_flow(world, signed_in, world.confidential).authorization,  # code
        request_only(world, signed_in, world.confidential, scope="unknown"),  # invalid_scope
        request_only(world, signed_in, world.confidential, response_type="token"),
        request_only(world, signed_in, world.public, code_challenge=None),
    ]
    signed_in.http.cookies.clear()
    answers.append(request_only(world, signed_in, world.confidential, prompt="none"))
    denied = start_flow(world, signed_in, world.second, decision="deny", prompt="consent")
    answers.append(denied.authorization)
    errors = []
    for answer in answers:
        assert answer.callback is not None, answer
        assert answer.callback["iss"] == world.issuer
        errors.append(answer.callback.get("error"))
    assert errors == [
        None,
        "invalid_scope",
        "unsupported_response_type",
        "invalid_request",
        "login_required",
        "access_denied",
    ]


# -- removed grants ----------------------------------------------------------------------------


def test_t23_implicit_not_served(login_world: LoginWorld, agent: UserAgent) -> None:
    assert login_world.provider.metadata["response_types_supported"] == ["code"]
    auth = request_only(login_world, agent, login_world.confidential, response_type="token")
    assert error_redirect(login_world.provider, auth, "st-1") == "unsupported_response_type"
    assert auth.location is not None
    assert "#" not in auth.location
    assert "access_token" not in auth.location


def test_t24_password_grant_refused(login_world: LoginWorld) -> None:
    assert "password" not in login_world.provider.metadata["grant_types_supported"]
    response = token_request(login_world, login_world.confidential, {
        "grant_type": "password", "username": "alice", "password": PASSWORD,
    })  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert PASSWORD not in response.text


def test_t25_no_access_token_in_query(login_world: LoginWorld, signed_in: UserAgent) -> None:
    _, body = tokens(login_world, signed_in, login_world.confidential)
    response = httpx.get(
        login_world.provider.userinfo_endpoint,
        params={"access_token": body["access_token"]},
        timeout=10,
    )
    assert response.status_code in {400, 401}
    assert "sub" not in response.text or "error" in response.text


# -- refresh tokens ----------------------------------------------------------------------------


def test_t26_public_client_refresh_tokens_rotate(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    world = login_world
    first = offline(world, signed_in, world.public)
    rotated = refresh(world, world.public, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    reused = refresh(world, world.public, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # Reuse detected: the successor died with its family.
    successor = refresh(world, world.public, second["refresh_token"])
    assert successor.status_code == 400
    assert successor.json()["error"] == "invalid_grant"


def test_t27_refresh_reuse_revokes_that_family_only(login_world: LoginWorld) -> None:
    world = login_world
    agents = [UserAgent(world.issuer), UserAgent(world.issuer)]
    try:
        victim = offline(world, agents[0], world.confidential)
        bystander = offline(world, agents[1], world.confidential)
    finally:
        for each in agents:
            each.close()
    rotated = refresh(world, world.confidential, victim["refresh_token"]).json()
    assert userinfo(world, rotated["access_token"]).status_code == 200
    reuse = refresh(world, world.confidential, victim["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # The active token of the family and the grant's access tokens are revoked ...
    active = refresh(world, world.confidential, rotated["refresh_token"])
    assert active.status_code == 400
    assert active.json()["error"] == "invalid_grant"
    assert userinfo(world, rotated["access_token"]).status_code == 401
    assert userinfo(world, victim["access_token"]).status_code == 401
    # ... and another login of the same user and client (another device) is untouched.
    assert userinfo(world, bystander["access_token"]).status_code == 200
    assert refresh(world, world.confidential, bystander["refresh_token"]).status_code == 200


def test_t28_refresh_token_bound_to_client(login_world: LoginWorld, signed_in: UserAgent) -> None:
    world = login_world
    body = offline(world, signed_in, world.confidential)
    rt = body["refresh_token"]
    stolen = refresh(world, world.second, rt)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    bad_secret = httpx.post(world.provider.token_endpoint, timeout=10,
                            data={"grant_type": "refresh_token", "refresh_token": rt},
                            auth=(world.confidential.client_id, "not-the-secret"))  # fmt: skip
    assert bad_secret.status_code == 401
    assert bad_secret.json()["error"] == "invalid_client"
    unauthenticated = httpx.post(world.provider.token_endpoint, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": rt,
        "client_id": world.confidential.client_id,
    })  # fmt: skip
    assert unauthenticated.status_code == 401
    as_public = refresh(world, world.public, rt)
    assert as_public.status_code == 400
    assert as_public.json()["error"] == "invalid_grant"
    # The refusals did not consume or revoke it.
    assert refresh(world, world.confidential, rt).status_code == 200


def test_t29_refresh_scope_narrows_never_widens(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    world = login_world
    body = offline(world, signed_in, world.confidential, scope="openid email offline_access")
    for wider in ("openid email profile", "openid email offline_access address", "admin"):
        wide = refresh(world, world.confidential, body["refresh_token"], scope=wider)
        assert wide.status_code == 400
        assert wide.json()["error"] == "invalid_scope"
    narrow = refresh(world, world.confidential, body["refresh_token"], scope="openid")
    assert narrow.status_code == 200, narrow.text
    narrowed = narrow.json()
    assert narrowed["scope"].split() == ["openid"]
    assert jwt_claims(narrowed["access_token"])["scope"].split() == ["openid"]
    assert "email" not in userinfo(world, narrowed["access_token"]).json()
    # Without scope, a refresh keeps the token's scope.
    same = refresh(world, world.confidential, narrowed["refresh_token"])
    assert same.status_code == 200, same.text


def test_t29_refresh_token_keeps_its_scope_after_narrowing(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    # RFC 6749 §6: "the refresh token scope MUST be identical to that of the refresh token
    # included by the client in the request"; only the access token is narrowed.
    world = login_world
    body = offline(world, signed_in, world.confidential, scope="openid email offline_access")
    narrow = refresh(world, world.confidential, body["refresh_token"], scope="openid")
    assert narrow.status_code == 200, narrow.text
    again = refresh(world, world.confidential, narrow.json()["refresh_token"], scope="openid email")
    assert again.status_code == 200, again.text
    assert set(again.json()["scope"].split()) == {"openid", "email"}
    full = refresh(world, world.confidential, again.json()["refresh_token"])
    assert set(full.json()["scope"].split()) == {"openid", "email", "offline_access"}


def test_t30_refresh_checks_the_grant_is_active(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    # Revoked through RFC 7009.
    body = offline(world, agent, world.confidential)
    client = world.confidential
    assert client.secret is not None
    revoked = httpx.post(world.provider.endpoint("revocation_endpoint"), timeout=10,
                         data={"token": body["refresh_token"], "token_type_hint": "refresh_token"},
                         auth=(client.client_id, client.secret))  # fmt: skip
    assert revoked.status_code == 200
    gone = refresh(world, client, body["refresh_token"])
    assert gone.status_code == 400
    assert gone.json()["error"] == "invalid_grant"
    # The user is deleted.
    username = "bob" + secrets.token_hex(3)
    world.create_user(username)
    other = UserAgent(world.issuer)
    try:
        _, bob = tokens(world, other, client, scope="openid offline_access", prompt="consent",
                        username=username)  # fmt: skip
    finally:
        other.close()
    world.cli("users", "delete", username, as_json=False)
    deleted = refresh(world, client, bob["refresh_token"])
    assert deleted.status_code == 400
    assert deleted.json()["error"] == "invalid_grant"
    assert userinfo(world, bob["access_token"]).status_code == 401


def test_t31_refresh_tokens_unguessable(login_world: LoginWorld, signed_in: UserAgent) -> None:
    world = login_world
    body = offline(world, signed_in, world.confidential)
    rt = body["refresh_token"]
    assert len(rt) >= 43
    assert set(rt) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
    for forged in (rt[:-1] + ("A" if rt[-1] != "A" else "B"), rt[:-1], rt + "A", ""):
        response = refresh(world, world.confidential, forged)
        assert response.status_code == 400
        assert response.json()["error"] in {"invalid_grant", "invalid_request"}
    rotated = refresh(world, world.confidential, rt).json()["refresh_token"]
    assert len({rt, rotated}) == 2
    assert rt[:16] != rotated[:16]


def test_t32_refresh_tokens_only_for_clients_allowed_them(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    no_refresh = login_world.create_client(
        name="No Refresh", redirect_uris=["https://norefresh.example.test/cb"],
        grant_types="authorization_code",
    )  # fmt: skip
    _, body = tokens(login_world, signed_in, no_refresh, scope="openid offline_access",
                     prompt="consent")  # fmt: skip
    assert "refresh_token" not in body
    # And a client allowed them gets none without offline_access (OIDC Core §11).
    _, plain = tokens(login_world, signed_in, login_world.confidential, scope="openid email")
    assert "refresh_token" not in plain


# -- other -------------------------------------------------------------------------------------


def test_t33_user_and_client_tokens_distinguishable(
    login_world: LoginWorld, signed_in: UserAgent
) -> None:
    world = login_world
    _, body = tokens(world, signed_in, world.confidential)
    user_claims = jwt_claims(body["access_token"])
    assert user_claims["sub"] == world.sub
    assert user_claims["client_id"] == world.confidential.client_id
    assert user_claims["sub"] != user_claims["client_id"]
    assert "auth_time" in user_claims
    machine = world.cli(
        "clients", "create", "--name", "Machine", "--grant-types", "client_credentials",
        "--scope", "read", "--audience", "https://api.example.test",
    )  # fmt: skip
    response = httpx.post(world.provider.token_endpoint, timeout=10,
                          data={"grant_type": "client_credentials"},
                          auth=(machine["client_id"], machine["client_secret"]))  # fmt: skip
    assert response.status_code == 200, response.text
    machine_claims = jwt_claims(response.json()["access_token"])
    assert machine_claims["sub"] == machine["client_id"]
    assert "auth_time" not in machine_claims
    # No client id can ever equal a user's subject: the namespaces differ in form.
    assert world.sub not in {world.confidential.client_id, machine["client_id"]}


def test_t34_metadata_published(login_world: LoginWorld) -> None:
    world = login_world
    metadata = world.provider.metadata
    oauth = httpx.get(f"{world.issuer}/.well-known/oauth-authorization-server", timeout=10)
    assert oauth.status_code == 200
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
                 "code_challenge_methods_supported", "response_types_supported"):  # fmt: skip
        assert oauth.json()[name] == metadata[name], name
    assert metadata["scopes_supported"]
    assert "openid" in metadata["scopes_supported"]
    assert metadata["subject_types_supported"] == ["public"]
    assert {"authorization_code", "refresh_token"} <= set(metadata["grant_types_supported"])
    assert "none" not in metadata["id_token_signing_alg_values_supported"]
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint",
                 "end_session_endpoint", "jwks_uri", "revocation_endpoint"):  # fmt: skip
        url = metadata[name]
        assert url.startswith(world.issuer + "/"), name
        assert httpx.get(url, timeout=10).status_code != 404, name


# -- CSRF on the forms -------------------------------------------------------------------------


def _login_page(world: LoginWorld, agent: UserAgent) -> tuple[httpx.Response, Any]:
    auth = request_only(world, agent, world.confidential)
    assert auth.page is not None
    assert auth.pages == ["login"]
    form = next(f for f in parse_forms(auth.page.text) if "password" in f.inputs)
    assert form.method == "post"
    assert form.fields.get("csrf_token")
    return auth.page, form


def refused_form(http: httpx.Client, issuer: str, response: httpx.Response, field: str) -> None:
    """A forged form post changed nothing: an error, or a 303 back to the same form.

    ``field`` names an input of the form (``password`` for login, ``decision`` for consent);
    following the server's redirects must end on a page that shows that form again (or an error
    page), never at the next step or at the client with a code.
    """
    assert response.status_code in {303, 400, 403}, response.status_code
    assert "set-cookie" not in response.headers or (
        "session" not in response.headers["set-cookie"].lower()
    )
    for _ in range(5):
        if not response.is_redirect:
            break
        location = str(httpx.URL(str(response.url)).join(response.headers["location"]))
        assert location.startswith(issuer + "/"), location
        assert "resume" not in location, location
        response = http.get(location)
    if response.status_code == 200:
        forms = parse_forms(response.text)
        assert any(field in f.inputs or any(n == field for n, _ in f.buttons) for f in forms)
    else:
        assert response.status_code in {400, 403}, response.status_code


def test_login_form_csrf(login_world: LoginWorld, agent: UserAgent) -> None:
    issuer = login_world.issuer
    page, form = _login_page(login_world, agent)
    creds = {"username": "alice", "password": PASSWORD}
    for token in ("", "forged" + "A" * 40, form.fields["csrf_token"][:-2]):
        response = agent.submit(page, form, {**creds, "csrf_token": token})
        refused_form(agent.http, issuer, response, "password")
    # Another browser (without this browser's cookies) posting the page's valid token is
    # refused too: the token is bound to the browser, not only to the interaction.
    with httpx.Client(timeout=10) as attacker:
        action = httpx.URL(str(page.url)).join(form.action)
        cross = attacker.post(action, data={**form.fields, **creds})
        refused_form(attacker, issuer, cross, "password")
    # The real form still works afterwards: on to the next step.
    answer = agent.submit(page, form, creds)
    assert answer.status_code == 303
    location = str(httpx.URL(str(page.url)).join(answer.headers["location"]))
    if "resume" not in location:
        after = agent.http.get(location)
        assert after.status_code == 200
        assert not any("password" in f.inputs for f in parse_forms(after.text))
        assert any(n == "decision" for f in parse_forms(after.text) for n, _ in f.buttons)


def test_consent_form_csrf(login_world: LoginWorld, agent: UserAgent) -> None:
    world = login_world
    auth = agent.authorize(
        world.provider.authorization_endpoint,
        auth_params(world.confidential, Pkce.new(), state="s", nonce=None, prompt="consent"),
        decision=None,
    )
    assert auth.pages == ["login", "consent"]
    assert auth.page is not None
    form = next(f for f in parse_forms(auth.page.text) if f.buttons)
    assert form.fields.get("csrf_token")
    for token in ("", "x" * 43):
        forged = agent.submit(auth.page, form, {"decision": "allow", "csrf_token": token})
        refused_form(agent.http, world.issuer, forged, "decision")
    with httpx.Client(timeout=10) as attacker:
        action = httpx.URL(str(auth.page.url)).join(form.action)
        cross = attacker.post(action, data={**form.fields, "decision": "allow"})
        refused_form(attacker, world.issuer, cross, "decision")
    allowed = agent.submit(auth.page, form, {"decision": "allow"})
    assert allowed.status_code == 303
    assert "resume" in allowed.headers["location"]
