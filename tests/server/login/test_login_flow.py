"""The whole login over HTTP: /authorize, the login and consent pages, the code, the tokens,
userinfo and logout (issue 9 §1.2-§1.4, §1.7), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sealring.jose.jws import parse_compact
from sealring.jose.jwt import decode_payload
from sealring.server.context import build_context
from sealring.server.pages import SECURITY_HEADERS
from sealring.server.settings import Settings, SettingsError
from tests.helpers.server import ENVIRON, LiveServer, oauth_error, running_server
from tests.server.login.scripted_browser import PASSWORD, Browser, Pkce, query_of

APP = "https://app.example.test/cb"
LOGGED_OUT = "https://app.example.test/bye"


def claims(token: str) -> dict[str, Any]:
    return decode_payload(parse_compact(token))


@pytest.fixture(scope="module")
def alice(live: LiveServer) -> str:
    account = live.context.login.accounts.create(
        "alice", PASSWORD, claims={"email": "alice@example.com", "name": "Alice Liddell"}
    )
    live.context.login.accounts.create("bob", PASSWORD)
    return account.subject


@pytest.fixture(scope="module")
def app(live: LiveServer) -> str:
    client_id, _ = live.create_client(
        name="Example App",
        public=True,
        scope="openid profile email offline_access",
        redirect_uris=[APP],
        post_logout_redirect_uris=[LOGGED_OUT],
    )
    return client_id


@pytest.fixture
def new_app(live: LiveServer) -> str:
    """A client no one has consented to yet."""
    client_id, _ = live.create_client(
        name="New App", public=True, scope="openid profile email", redirect_uris=[APP]
    )
    return client_id


@pytest.fixture(scope="module")
def first_party(live: LiveServer) -> str:
    client_id, _ = live.create_client(
        name="Own App", public=True, scope="openid profile", redirect_uris=[APP], skip_consent=True
    )
    return client_id


@pytest.fixture
def browser(live: LiveServer) -> Iterator[Browser]:
    b = Browser(live)
    yield b
    b.close()


def exchange(http: httpx.Client, client_id: str, code: str, pkce: Pkce) -> httpx.Response:
    return http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                     "redirect_uri": APP, "code_verifier": pkce.verifier,
                                     "client_id": client_id})  # fmt: skip


def test_sign_in_consent_code_tokens_and_userinfo(
    live: LiveServer, http: httpx.Client, browser: Browser, alice: str, app: str
) -> None:
    pkce = Pkce()
    start = browser.authorize(app, APP, pkce, scope="openid profile email offline_access",
                              nonce="n-1", state="xyz")  # fmt: skip
    assert start.status_code == 303
    interaction = start.headers["location"]
    assert interaction.startswith(live.url + "/interaction/")
    cookie = start.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    page = browser.get(interaction)
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    assert "Example App" in page.text
    assert 'name="username"' in page.text
    assert 'name="password"' in page.text
    # a wrong password: back to the page with one message for unknown users and wrong passwords
    wrong = browser.submit(interaction, page, username="alice", password="not the password")
    assert wrong.status_code == 303
    again = browser.get(wrong.headers["location"])
    assert "Unknown username or wrong password." in again.text
    nobody = browser.submit(interaction, again, username="nobody", password="not the password")
    assert browser.get(nobody.headers["location"]).text.count("Unknown username or wrong") == 1
    signed = browser.login(interaction, "alice")
    assert signed.status_code == 303
    session_cookie = signed.headers["set-cookie"].lower()
    assert "sealring_session=" in session_cookie
    assert "httponly" in session_cookie
    assert signed.headers["location"] == interaction  # consent next
    consent = browser.get(interaction)
    assert "Example App" in consent.text
    assert "offline_access" in consent.text
    resume = browser.consent(interaction)
    assert resume.status_code == 303
    done = browser.get(resume.headers["location"])
    assert done.status_code == 303
    location = done.headers["location"]
    assert location.startswith(APP + "?")
    answer = query_of(location)
    assert answer["state"] == "xyz"
    assert answer["iss"] == live.url
    tokens = exchange(http, app, answer["code"], pkce)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    id_token = claims(body["id_token"])
    assert id_token["sub"] == alice
    assert id_token["nonce"] == "n-1"
    assert id_token["aud"] == app
    assert "email" not in id_token  # OIDC Core §5.4: from userinfo
    assert "refresh_token" in body
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.status_code == 200, info.text
    assert info.json() == {"sub": alice, "email": "alice@example.com", "name": "Alice Liddell",
                           "preferred_username": "alice"}  # fmt: skip
    posted = http.post("/userinfo", data={"access_token": body["access_token"]})
    assert posted.json()["sub"] == alice
    # the code is single-use, and its replay takes the tokens with it
    oauth_error(exchange(http, app, answer["code"], pkce), 400, "invalid_grant")
    refused = http.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_single_sign_on_and_remembered_consent(
    live: LiveServer, browser: Browser, alice: str, new_app: str, first_party: str
) -> None:
    app = new_app
    first = browser.sign_in(app, APP, Pkce(), "alice")
    assert "code" in first
    # same browser, same client: neither page again
    again = browser.authorize(app, APP, Pkce())
    assert again.status_code == 303
    assert again.headers["location"].startswith(APP + "?code=")
    # prompt=none works now; another first-party client needs no consent either
    silent = browser.authorize(first_party, APP, Pkce(), prompt="none")
    assert query_of(silent.headers["location"]).get("code")
    # more scope than remembered: consent again (prompt=none cannot)
    wider = browser.authorize(app, APP, Pkce(), scope="openid email", prompt="none")
    assert query_of(wider.headers["location"])["error"] == "consent_required"


def test_prompt_none_without_a_session_is_login_required(
    live: LiveServer, browser: Browser, app: str
) -> None:
    response = browser.authorize(app, APP, Pkce(), prompt="none", state="s1")
    assert response.status_code == 303
    answer = query_of(response.headers["location"])
    assert answer == {"error": "login_required", "error_description": answer["error_description"],
                      "state": "s1", "iss": live.url}  # fmt: skip


def test_prompt_login_and_max_age_ask_again(
    live: LiveServer, browser: Browser, alice: str, first_party: str
) -> None:
    browser.sign_in(first_party, APP, Pkce(), "alice")
    for params in ({"prompt": "login"}, {"max_age": "0"}):
        response = browser.authorize(first_party, APP, Pkce(), **params)
        assert "/interaction/" in response.headers["location"], params
    assert (
        browser.authorize(first_party, APP, Pkce(), max_age="3600")
        .headers["location"]
        .startswith(APP)
    )
    relogin = browser.sign_in(first_party, APP, Pkce(), "alice", prompt="login")
    assert "code" in relogin


def test_a_hint_for_another_user_is_not_answered_for_the_signed_in_one(
    live: LiveServer, http: httpx.Client, browser: Browser, alice: str, first_party: str
) -> None:
    other = Browser(live)
    try:
        pkce = Pkce()
        bob = other.sign_in(first_party, APP, pkce, "bob")
        bob_id_token = exchange(http, first_party, bob["code"], pkce).json()["id_token"]
    finally:
        other.close()
    browser.sign_in(first_party, APP, Pkce(), "alice")
    silent = browser.authorize(first_party, APP, Pkce(), prompt="none", id_token_hint=bob_id_token)
    assert query_of(silent.headers["location"])["error"] == "login_required"
    assert (
        "/interaction/"
        in browser.authorize(first_party, APP, Pkce(), id_token_hint=bob_id_token).headers[
            "location"
        ]
    )
    assert (
        query_of(
            browser.authorize(first_party, APP, Pkce(), prompt="none", login_hint="bob").headers[
                "location"
            ]
        )["error"]
        == "login_required"
    )


def test_deny_is_access_denied(
    live: LiveServer, browser: Browser, alice: str, new_app: str
) -> None:
    start = browser.authorize(new_app, APP, Pkce(), scope="openid email", state="d")
    interaction = start.headers["location"]
    browser.login(interaction, "alice")
    resume = browser.consent(interaction, "deny")
    done = browser.get(resume.headers["location"])
    answer = query_of(done.headers["location"])
    assert answer["error"] == "access_denied"
    assert answer["state"] == "d"


def test_errors_before_the_redirect_uri_is_trusted_are_pages(browser: Browser, app: str) -> None:
    for client_id, redirect_uri in ((app, "https://evil.example/cb"), ("nobody", APP)):
        response = browser.authorize(client_id, redirect_uri, Pkce())
        assert response.status_code == 400
        assert "location" not in response.headers
        assert "text/html" in response.headers["content-type"]
        assert response.headers["x-frame-options"] == "DENY"


def test_later_errors_go_to_the_client_with_state_and_iss(
    live: LiveServer, browser: Browser, app: str
) -> None:
    response = browser.authorize(app, APP, Pkce(), code_challenge_method="plain", state="e")
    answer = query_of(response.headers["location"])
    assert answer["error"] == "invalid_request"
    assert answer["state"] == "e"
    assert answer["iss"] == live.url


def test_the_pages_refuse_another_browser_and_a_bad_csrf_token(
    live: LiveServer, browser: Browser, alice: str, app: str
) -> None:
    interaction = browser.authorize(app, APP, Pkce()).headers["location"]
    page = browser.get(interaction)
    thief = Browser(live)
    try:
        assert thief.get(interaction).status_code == 403
        stolen = thief.http.post(interaction, data={"csrf_token": browser.csrf(page),
                                                   "username": "alice", "password": PASSWORD})  # fmt: skip
        assert stolen.status_code == 403
    finally:
        thief.close()
    forged = browser.http.post(interaction, data={"csrf_token": "x" * 43, "username": "alice",
                                                  "password": PASSWORD})  # fmt: skip
    assert forged.status_code == 303
    assert "expired" in browser.get(forged.headers["location"]).text
    assert "sealring_session" not in browser.http.cookies


def test_an_expired_or_unknown_interaction_is_a_page_with_a_way_back(
    live: LiveServer, browser: Browser, app: str
) -> None:
    unknown = browser.get(live.url + "/interaction/" + "A" * 43)
    assert unknown.status_code == 400
    assert "text/html" in unknown.headers["content-type"]
    interaction = browser.authorize(app, APP, Pkce()).headers["location"]
    uid = interaction.rsplit("/", 1)[1]
    live.context.login.interactions.consume(uid, now=time.time())
    used = browser.get(interaction)
    assert used.status_code == 400
    assert 'href="' + live.url + "/authorize?" in used.text


def test_throttling_after_repeated_failures(live: LiveServer, browser: Browser, app: str) -> None:
    live.context.login.accounts.create("carol", PASSWORD)
    interaction = browser.authorize(app, APP, Pkce()).headers["location"]
    messages = []
    for _ in range(7):
        page = browser.get(interaction)
        answer = browser.submit(interaction, page, username="carol", password="wrong password")
        messages.append(browser.get(answer.headers["location"]).text)
    assert "Too many failed sign-ins" in messages[-1]
    # even the right password is refused while blocked
    page = browser.get(interaction)
    answer = browser.submit(interaction, page, username="carol", password=PASSWORD)
    assert answer.headers["location"].endswith("?m=throttled")


def test_logout_with_a_hint_for_this_session_returns_to_the_client_with_state(
    live: LiveServer, http: httpx.Client, browser: Browser, alice: str, app: str
) -> None:
    pkce = Pkce()
    code = browser.sign_in(app, APP, pkce, "alice")["code"]
    id_token = exchange(http, app, code, pkce).json()["id_token"]
    out = browser.http.get("/logout", params={"id_token_hint": id_token, "state": "bye",
                                               "post_logout_redirect_uri": LOGGED_OUT})  # fmt: skip
    assert out.status_code == 303
    assert out.headers["location"] == LOGGED_OUT + "?state=bye"
    # the session is gone: prompt=none fails
    silent = browser.authorize(app, APP, Pkce(), prompt="none")
    assert query_of(silent.headers["location"])["error"] == "login_required"


def test_logout_refuses_an_unregistered_redirect_and_asks_without_a_hint(
    live: LiveServer, browser: Browser, alice: str, app: str
) -> None:
    browser.sign_in(app, APP, Pkce(), "alice")
    bad = browser.http.get("/logout", params={"client_id": app,
                                              "post_logout_redirect_uri": APP})  # fmt: skip
    assert bad.status_code == 400
    assert "location" not in bad.headers
    ask = browser.http.get("/logout", params={"client_id": app,
                                              "post_logout_redirect_uri": LOGGED_OUT})  # fmt: skip
    assert ask.status_code == 200
    assert 'name="confirm"' in ask.text
    # still signed in until the user confirms
    assert (
        browser.authorize(app, APP, Pkce(), prompt="none")
        .headers["location"]
        .startswith(APP + "?code=")
    )
    done = browser.http.post("/logout", data={"csrf_token": browser.csrf(ask), "confirm": "yes",
                                              "client_id": app,
                                              "post_logout_redirect_uri": LOGGED_OUT})  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"] == LOGGED_OUT
    out = browser.authorize(app, APP, Pkce(), prompt="none")
    assert query_of(out.headers["location"])["error"] == "login_required"


def test_logout_without_anything_shows_the_signed_out_page(browser: Browser) -> None:
    response = browser.http.get("/logout")
    assert response.status_code == 200
    assert "signed out" in response.text


def test_userinfo_refuses_tokens_without_openid_or_of_no_user(
    live: LiveServer, http: httpx.Client
) -> None:
    missing = http.get("/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = http.get("/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]


def test_an_operators_template_replaces_the_built_in_page(
    database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "login.html").write_text(
        '<form method="post" action="{{ action }}"><input type="hidden" name="csrf_token"'
        ' value="{{ csrf_token }}"><h1>Welcome to {{ client_name }}, Acme style</h1>'
        '<input name="username"><input name="password" type="password"></form>'
    )
    with running_server(database_url, template_dir=str(folder)) as live:
        client_id, _ = live.create_client(name="<Acme & Co>", public=True, scope="openid",
                                          redirect_uris=[APP])  # fmt: skip
        browser = Browser(live)
        try:
            interaction = browser.authorize(client_id, APP, Pkce()).headers["location"]
            page = browser.get(interaction)
        finally:
            browser.close()
    assert "Acme style" in page.text
    assert "Welcome to &lt;Acme &amp; Co&gt;" in page.text  # autoescaped in an operator's page too
    assert page.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]


def test_a_missing_template_folder_stops_the_server_at_start(sqlite_url: str) -> None:
    settings = Settings.load(
        {"database_url": sqlite_url, "template_dir": "/nonexistent/pages"}, environ={}
    )
    with pytest.raises(SettingsError, match="template_dir"):
        build_context(settings, environ=ENVIRON)


def test_logout_with_a_hint_for_another_session_asks_first(
    live: LiveServer, http: httpx.Client, browser: Browser, alice: str, app: str
) -> None:
    other = Browser(live)
    try:
        pkce = Pkce()
        code = other.sign_in(app, APP, pkce, "alice")["code"]  # the same user, another browser
        foreign = exchange(http, app, code, pkce).json()["id_token"]
    finally:
        other.close()
    browser.sign_in(app, APP, Pkce(), "alice")
    ask = browser.http.get("/logout", params={"id_token_hint": foreign})
    assert ask.status_code == 200
    assert 'name="confirm"' in ask.text
    # still signed in: a hint for another session never signs this one out on its own
    still = browser.authorize(app, APP, Pkce(), prompt="none")
    assert still.headers["location"].startswith(APP + "?code=")


def test_cookies_are_secure_and_host_bound_on_an_https_issuer() -> None:
    from sealring.server.endpoints._browser import cookie_names

    assert cookie_names("https://id.example")["session"] == "__Host-sealring_session"
    assert cookie_names("https://id.example")["interaction"].startswith("__Secure-")
    assert cookie_names("http://127.0.0.1:8000")["session"] == "sealring_session"
