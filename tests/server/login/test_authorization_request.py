"""The authorization request checks (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 9207)."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealring.jose.jwk import JWK
from sealring.jose.jws import LocalSigner
from sealring.jose.jwt import encode_jwt
from sealring.server.clients import Client
from sealring.server.errors import (
    InvalidRequest,
    InvalidScope,
    OAuthError,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from sealring.server.protocol.authorization_request import (
    Accepted,
    AuthorizationOutcome,
    AuthorizationRequest,
    ClientRedirect,
    RedirectError,
    ShowErrorPage,
    requested_client_id,
    validate_authorization_request,
)
from sealring.server.protocol.pkce import s256_challenge

ISSUER = "https://login.example.com"
REDIRECT = "https://app.example.com/cb"
CHALLENGE = s256_challenge("v" * 43)

WEB = Client(
    client_id="webclient",
    name="Web App",
    auth_method="client_secret_basic",
    grant_types=("authorization_code", "refresh_token"),
    scopes=("openid", "profile", "email", "offline_access"),
    redirect_uris=(REDIRECT,),
)
NATIVE = Client(
    client_id="nativeapp",
    name="Native App",
    auth_method="none",
    grant_types=("authorization_code",),
    scopes=("openid", "profile"),
    redirect_uris=("http://127.0.0.1/cb", "com.example.app:/cb"),
)


def params(**overrides: str | None) -> list[tuple[str, str]]:
    base: dict[str, str | None] = {
        "client_id": "webclient",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid profile",
        "state": "xyz",
        "nonce": "n-0S6_WzA2Mj",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    base.update(overrides)
    return [(k, v) for k, v in base.items() if v is not None]


def run(items: list[tuple[str, str]], client: Client | None = WEB) -> AuthorizationOutcome:
    return validate_authorization_request(items, client, issuer=ISSUER)


def accepted(items: list[tuple[str, str]], client: Client = WEB) -> AuthorizationRequest:
    outcome = run(items, client)
    assert isinstance(outcome, Accepted), outcome
    return outcome.request


def page_error(items: list[tuple[str, str]], client: Client | None = WEB) -> OAuthError:
    outcome = run(items, client)
    assert isinstance(outcome, ShowErrorPage), outcome
    return outcome.error


def redirected(items: list[tuple[str, str]], client: Client = WEB) -> RedirectError:
    outcome = run(items, client)
    assert isinstance(outcome, RedirectError), outcome
    return outcome


def query_of(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))


# -- the happy path ---------------------------------------------------------------------------


def test_a_complete_request_is_accepted() -> None:
    request = accepted(params())
    assert request.client_id == "webclient"
    assert request.redirect_uri == REDIRECT
    assert request.redirect_uri_in_request
    assert request.scopes == ("openid", "profile")
    assert request.openid
    assert request.state == "xyz"
    assert request.nonce == "n-0S6_WzA2Mj"
    assert request.code_challenge == CHALLENGE
    assert request.code_challenge_method == "S256"
    assert request.response_mode == "query"
    assert request.issuer == ISSUER


def test_parameter_order_and_scope_order_do_not_matter() -> None:
    items = list(reversed(params(scope="profile openid")))
    assert set(accepted(items).scopes) == {"openid", "profile"}


def test_unknown_authorization_parameters_are_ignored() -> None:
    assert accepted([*params(), ("extra", "foobar")]).client_id == "webclient"


def test_empty_values_count_as_absent() -> None:
    request = accepted(params(state="", nonce="", prompt="", login_hint=""))
    assert request.state is None
    assert request.nonce is None
    assert request.prompt == frozenset()


# -- client_id and redirect_uri: errors on a page -------------------------------------------


def test_missing_client_id_is_shown_on_a_page() -> None:
    assert isinstance(page_error(params(client_id=None)), InvalidRequest)


def test_unknown_client_is_shown_on_a_page() -> None:
    assert "registered client" in page_error(params(client_id="nobody"), None).description


def test_client_object_for_another_id_is_refused() -> None:
    page_error(params(client_id="someoneelse"), WEB)


def test_repeated_client_id_is_shown_on_a_page() -> None:
    page_error([*params(), ("client_id", "webclient")])


def test_unregistered_redirect_uri_is_shown_on_a_page_never_redirected() -> None:
    outcome = run(params(redirect_uri="https://evil.example/cb", response_type="token"))
    assert isinstance(outcome, ShowErrorPage)
    assert "redirect_uri" in outcome.error.description


def test_appended_redirect_uri_is_shown_on_a_page() -> None:
    page_error(params(redirect_uri=REDIRECT + "/extra"))


def test_repeated_redirect_uri_is_shown_on_a_page() -> None:
    page_error([*params(), ("redirect_uri", REDIRECT)])


def test_redirect_uri_is_required_in_an_openid_request() -> None:
    error = page_error(params(redirect_uri=None))
    assert "OpenID Connect" in error.description


def test_single_registered_redirect_uri_may_be_omitted_in_plain_oauth() -> None:
    request = accepted(params(redirect_uri=None, scope="profile"))
    assert request.redirect_uri == REDIRECT
    assert not request.redirect_uri_in_request


def test_redirect_uri_is_required_with_several_registered() -> None:
    two = dataclasses.replace(WEB, redirect_uris=(REDIRECT, "https://app.example.com/other"))
    page_error(params(redirect_uri=None, scope="profile"), two)


def test_native_loopback_redirect_uri_accepts_any_port() -> None:
    request = accepted(
        params(client_id="nativeapp", redirect_uri="http://127.0.0.1:49152/cb"), NATIVE
    )
    assert request.redirect_uri == "http://127.0.0.1:49152/cb"


def test_confidential_client_gets_no_loopback_port_leeway() -> None:
    web = dataclasses.replace(WEB, redirect_uris=("http://127.0.0.1/cb",))
    page_error(params(redirect_uri="http://127.0.0.1:49152/cb"), web)


# -- everything else: errors redirected with state and iss -----------------------------------


def test_error_redirect_carries_state_and_iss() -> None:
    outcome = redirected(params(response_type="token"))
    q = query_of(outcome.location)
    assert q == {
        "error": "unsupported_response_type",
        "error_description": outcome.error.description,
        "state": "xyz",
        "iss": ISSUER,
    }
    assert outcome.location.startswith(REDIRECT + "?")


@pytest.mark.parametrize(
    "response_type", ["token", "id_token", "code id_token", "code token", "none", "id_token code"]
)
def test_other_response_types_are_unsupported(response_type: str) -> None:
    assert isinstance(
        redirected(params(response_type=response_type)).error, UnsupportedResponseType
    )


def test_missing_response_type_is_invalid_request() -> None:
    error = redirected(params(response_type=None)).error
    assert type(error) is InvalidRequest


def test_client_without_the_code_grant_is_unauthorized() -> None:
    machine = dataclasses.replace(WEB, grant_types=("client_credentials",))
    assert isinstance(redirected(params(), machine).error, UnauthorizedClient)


def test_missing_code_challenge_is_refused() -> None:
    error = redirected(params(code_challenge=None, code_challenge_method=None)).error
    assert isinstance(error, InvalidRequest)
    assert "code_challenge" in error.description


def test_plain_pkce_is_refused() -> None:
    redirected(params(code_challenge="v" * 43, code_challenge_method="plain"))


def test_missing_challenge_method_is_refused() -> None:
    redirected(params(code_challenge_method=None))


def test_public_client_needs_pkce_too() -> None:
    redirected(
        params(client_id="nativeapp", redirect_uri="com.example.app:/cb", code_challenge=None),
        NATIVE,
    )


@pytest.mark.parametrize(
    "name", ["response_type", "scope", "state", "code_challenge", "nonce", "prompt"]
)
def test_repeated_parameters_are_refused(name: str) -> None:
    items = params(prompt="login")
    value = dict(items)[name]
    outcome = redirected([*items, (name, value)])
    assert isinstance(outcome.error, InvalidRequest)
    assert f"{name} is repeated" in outcome.error.description


def test_any_repeated_parameter_is_refused_even_one_the_server_ignores() -> None:
    # RFC 6749 §3.1: no parameter may be sent more than once, known to the server or not.
    outcome = redirected([*params(), ("extra", "a"), ("extra", "b")])
    assert isinstance(outcome.error, InvalidRequest)
    assert "extra is repeated" in outcome.error.description


@pytest.mark.parametrize("name", ["<script>", "X" * 41, "a" * 5000, "Extra"])
def test_a_repeated_parameter_with_an_unusual_name_is_not_echoed(name: str) -> None:
    outcome = redirected([*params(), (name, "a"), (name, "b")])
    assert outcome.error.description == "a parameter is repeated"


def test_repeated_state_is_not_echoed() -> None:
    outcome = redirected([*params(), ("state", "other")])
    assert "state" not in query_of(outcome.location)


def test_request_object_is_not_supported() -> None:
    assert isinstance(redirected(params(request="e30.e30.")).error, RequestNotSupported)


def test_request_uri_is_not_supported() -> None:
    error = redirected(params(request_uri="https://app.example.com/r")).error
    assert isinstance(error, RequestUriNotSupported)


@pytest.mark.parametrize("mode", ["fragment", "form_post", "query.jwt", "jwt"])
def test_response_modes_other_than_query_are_refused(mode: str) -> None:
    assert isinstance(redirected(params(response_mode=mode)).error, InvalidRequest)


def test_query_response_mode_is_accepted() -> None:
    assert accepted(params(response_mode="query")).response_mode == "query"


# -- scope ----------------------------------------------------------------------------------


def test_scope_is_narrowed_to_the_clients_scopes() -> None:
    request = accepted(params(scope="openid admin profile write"))
    assert request.scopes == ("openid", "profile")
    assert request.dropped_scopes == ("admin", "write")


def test_missing_scope_is_invalid_scope() -> None:
    assert isinstance(redirected(params(scope=None, redirect_uri=REDIRECT)).error, InvalidScope)


def test_nothing_left_after_narrowing_is_invalid_scope() -> None:
    assert isinstance(redirected(params(scope="admin")).error, InvalidScope)


def test_openid_for_a_client_not_allowed_it_is_invalid_scope() -> None:
    oauth_only = dataclasses.replace(WEB, scopes=("profile",))
    error = redirected(params(scope="openid profile"), oauth_only).error
    assert isinstance(error, InvalidScope)


@pytest.mark.parametrize("scope", ["openid  profile", " openid", "openid ", 'openid "x"'])
def test_malformed_scope_is_invalid_scope(scope: str) -> None:
    assert isinstance(redirected(params(scope=scope)).error, InvalidScope)


def test_over_long_scope_is_invalid_scope() -> None:
    assert isinstance(redirected(params(scope="openid " + "x" * 2048)).error, InvalidScope)


def test_a_scope_of_exactly_2048_characters_is_accepted() -> None:
    scope = "openid " + "x" * (2048 - len("openid "))
    assert len(scope) == 2048
    assert accepted(params(scope=scope)).scopes == ("openid",)
    assert isinstance(redirected(params(scope=scope + "x")).error, InvalidScope)


def test_scope_tokens_are_split_at_spaces_only_when_deciding_on_openid() -> None:
    # RFC 6749 §3.3: "openid\tprofile" is one (malformed) token, not an OpenID request, so the
    # client's single registered redirect URI may be omitted and the error goes back to it.
    error = redirected(params(redirect_uri=None, scope="openid\tprofile")).error
    assert isinstance(error, InvalidScope)


def test_a_request_without_scope_or_redirect_uri_is_redirected_as_invalid_scope() -> None:
    assert isinstance(redirected(params(redirect_uri=None, scope=None)).error, InvalidScope)


def test_request_without_openid_is_plain_oauth() -> None:
    assert not accepted(params(scope="profile")).openid


def test_offline_access_is_kept_for_the_consent_step() -> None:
    assert "offline_access" in accepted(params(scope="openid offline_access")).scopes


# -- OpenID Connect parameters -------------------------------------------------------------


def test_nonce_is_optional_in_the_code_flow() -> None:
    assert accepted(params(nonce=None)).nonce is None


def test_nonce_with_control_characters_is_refused() -> None:
    redirected(params(nonce="a\nb"))


def test_a_nonce_of_1024_characters_is_accepted() -> None:
    assert accepted(params(nonce="n" * 1024)).nonce == "n" * 1024


def test_a_login_hint_may_be_512_characters_and_no_longer() -> None:
    assert accepted(params(login_hint="h" * 512)).login_hint == "h" * 512
    redirected(params(login_hint="h" * 513))


def test_a_locales_list_may_be_512_characters_and_no_longer() -> None:
    value = " ".join(["de"] * 171)[:512]
    assert len(value) == 512
    assert accepted(params(ui_locales=value)).ui_locales == ("de",)
    redirected(params(ui_locales=value + "x"))


def test_over_long_nonce_is_refused() -> None:
    redirected(params(nonce="n" * 1025))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("none", {"none"}),
        ("login", {"login"}),
        ("login consent", {"login", "consent"}),
        ("select_account", {"select_account"}),
    ],
)
def test_prompt_values_are_parsed(value: str, expected: set[str]) -> None:
    assert accepted(params(prompt=value)).prompt == expected


@pytest.mark.parametrize("value", ["none login", "none consent", "consent none"])
def test_prompt_none_with_another_value_is_invalid(value: str) -> None:
    error = redirected(params(prompt=value)).error
    assert "prompt=none" in error.description


def test_unknown_prompt_value_is_invalid() -> None:
    assert isinstance(redirected(params(prompt="create")).error, InvalidRequest)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("1", 1), ("10000", 10000)])
def test_max_age_is_a_non_negative_integer(value: str, expected: int) -> None:
    assert accepted(params(max_age=value)).max_age == expected


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "+5", " 5", "99999999999"])
def test_malformed_max_age_is_invalid(value: str) -> None:
    redirected(params(max_age=value))


def test_max_age_may_be_2_to_the_31_minus_1_and_no_more() -> None:
    assert accepted(params(max_age=str(2**31 - 1))).max_age == 2**31 - 1
    redirected(params(max_age=str(2**31)))


def test_login_hint_is_kept() -> None:
    assert accepted(params(login_hint="alice@example.com")).login_hint == "alice@example.com"


def test_id_token_hint_must_be_a_jws_and_is_kept_unverified() -> None:
    key = JWK.generate("ES256")
    hint = encode_jwt({"sub": "alice", "iss": "https://other.example"}, LocalSigner(key))
    assert accepted(params(id_token_hint=hint)).id_token_hint == hint
    redirected(params(id_token_hint="not-a-jwt"))


def test_an_id_token_hint_may_be_16_kib_and_no_longer() -> None:
    signer = LocalSigner(JWK.generate("ES256"))
    # A JWS of exactly 16384 characters: the base64url length of the payload skips one
    # residue mod 4, so try two header lengths.
    hints = (
        encode_jwt({"sub": "alice", "pad": "p" * n}, signer, typ=typ)
        for n in range(12_000, 12_300)
        for typ in ("JWT", None)
    )
    hint = next(h for h in hints if len(h) == 16 * 1024)
    assert accepted(params(id_token_hint=hint)).id_token_hint == hint
    redirected(params(id_token_hint=hint + "A"))


@pytest.mark.parametrize("display", ["page", "popup", "touch", "wap"])
def test_display_values_are_accepted(display: str) -> None:
    assert accepted(params(display=display)).display == display


def test_unknown_display_is_invalid() -> None:
    redirected(params(display="fullscreen"))


def test_locales_and_acr_values_are_kept() -> None:
    request = accepted(params(ui_locales="de en", claims_locales="se", acr_values="urn:a urn:b"))
    assert request.ui_locales == ("de", "en")
    assert request.claims_locales == ("se",)
    assert request.acr_values == ("urn:a", "urn:b")


# -- state --------------------------------------------------------------------------------


def test_state_that_is_not_vschar_is_refused_and_not_echoed() -> None:
    outcome = redirected(params(state="caf\u00e9"))
    assert "state" not in query_of(outcome.location)


def test_a_state_of_2048_characters_is_accepted_and_echoed() -> None:
    state = "s" * 2048
    location = accepted(params(state=state)).redirect.with_code("c")
    assert query_of(location)["state"] == state


def test_over_long_state_is_refused_and_not_echoed() -> None:
    outcome = redirected(params(state="s" * 2049))
    assert "state" not in query_of(outcome.location)


# -- building the redirect ------------------------------------------------------------------


def test_success_redirect_has_code_state_and_iss() -> None:
    location = accepted(params()).redirect.with_code("the-code")
    assert location == f"{REDIRECT}?code=the-code&state=xyz&iss=https%3A%2F%2Flogin.example.com"


def test_registered_query_is_kept_when_parameters_are_added() -> None:
    redirect = ClientRedirect("https://app.example.com/cb?tenant=a%20b", "s", ISSUER)
    location = redirect.with_code("c")
    assert location.startswith("https://app.example.com/cb?tenant=a%20b&code=c&")
    assert query_of(location) == {"tenant": "a b", "code": "c", "state": "s", "iss": ISSUER}


@pytest.mark.parametrize(
    "registered", ["https://app.example.com/cb?", "https://app.example.com/cb?a=1&"]
)
def test_a_registered_uri_ending_in_a_separator_gets_no_empty_parameter(registered: str) -> None:
    location = ClientRedirect(registered, None, ISSUER).with_code("c")
    assert location == f"{registered}code=c&iss=https%3A%2F%2Flogin.example.com"


def test_redirect_without_state_omits_it() -> None:
    location = ClientRedirect(REDIRECT, None, ISSUER).with_code("c")
    assert query_of(location) == {"code": "c", "iss": ISSUER}


def test_error_description_is_cut_to_its_allowed_characters() -> None:
    error = InvalidRequest('bad "value" \\ in \u00a7 3.1\n')
    location = ClientRedirect(REDIRECT, None, ISSUER).with_error(error)
    assert query_of(location)["error_description"] == "bad value  in  3.1"


def test_redirect_uri_with_fragment_is_never_built() -> None:
    with pytest.raises(ValueError, match="fragment"):
        ClientRedirect(REDIRECT + "#x", None, ISSUER).with_code("c")


@given(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=80)
)
def test_any_valid_state_round_trips_through_the_redirect(state: str) -> None:
    request = accepted(params(state=state))
    q = query_of(request.redirect.with_code("c&d=e"))
    assert q == {"code": "c&d=e", "state": state, "iss": ISSUER}


@given(st.text(max_size=40))
def test_any_state_is_either_echoed_exactly_or_refused(state: str) -> None:
    outcome = run(params(state=state))
    if isinstance(outcome, Accepted):
        assert outcome.request.state == (state or None)
    else:
        assert isinstance(outcome, RedirectError)
        assert "state" not in query_of(outcome.location)


NAMES = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "id_token_hint",
    "login_hint",
    "display",
    "response_mode",
    "code_challenge",
    "code_challenge_method",
    "ui_locales",
    "request",
]


@given(st.lists(st.tuples(st.sampled_from(NAMES), st.text(max_size=30)), max_size=12))
def test_any_parameters_give_an_outcome_never_an_exception(
    extra: list[tuple[str, str]],
) -> None:
    names = {name for name, _ in extra}
    base = [(k, v) for k, v in params() if k not in names]
    outcome = run(base + extra)
    assert isinstance(outcome, (Accepted, RedirectError, ShowErrorPage))
    if isinstance(outcome, RedirectError):
        # Only a registered redirect URI is ever redirected to.
        assert outcome.location.startswith(REDIRECT + "?")
        assert query_of(outcome.location)["iss"] == ISSUER


# -- helpers ------------------------------------------------------------------------------


def test_requested_client_id_for_lookup() -> None:
    assert requested_client_id(params()) == "webclient"
    assert requested_client_id(params(client_id=None)) is None
    assert requested_client_id([*params(), ("client_id", "x")]) is None
