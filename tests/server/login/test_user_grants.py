"""The authorization code and refresh token grants: the pure checks, then composed with the
real stores on SQLite and PostgreSQL (what the token endpoint will do, minus HTTP)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sealring.jose.errors import InvalidAudience
from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
from sealring.jose.jws import LocalSigner
from sealring.jose.jwt import JWTVerifier
from sealring.server.accounts import PasswordPolicy
from sealring.server.clients import Client
from sealring.server.errors import InvalidGrant, InvalidRequest, InvalidScope, UnauthorizedClient
from sealring.server.grants import GRANTS, GrantRequest
from sealring.server.grants.authorization_code import (
    CodeReplayed,
    IssuedCode,
    check_code_redemption,
)
from sealring.server.grants.records import RotatedToken
from sealring.server.grants.refresh_token import PresentedRefreshToken, check_refresh
from sealring.server.grants.user_tokens import (
    GRANT_CLAIM,
    Login,
    issue_user_tokens,
    refresh_token_allowed,
)
from sealring.server.protocol.pkce import s256_challenge
from sealring.server.stores.accounts import DatabaseAccountStore
from sealring.server.stores.authorization_codes import (
    AuthorizationCodeStore,
    CodeGrant,
    StoredCode,
)
from sealring.server.stores.login_tables import GrantRow
from sealring.server.stores.refresh_tokens import (
    RefreshTokenInvalid,
    RefreshTokenReused,
    RefreshTokenStore,
)
from sealring.server.stores.tables import ClientRow
from sealring.server.tokens.handles import HandleHasher
from sealring.server.tokens.id_token import token_hash
from sealring.server.user_grants import issued_code, presented_refresh_token

NOW = 1_800_000_000.0
ISSUER = "https://id.example.com"
VERIFIER = "dBjftJeZ4CVP-mJ0kFmVwsAkTvsB_jDqDSLsDsFnfFU"  # RFC 7636 appendix B
CHALLENGE = s256_challenge(VERIFIER)
REDIRECT = "https://app.example.com/cb"
CLIENT = Client(
    client_id="client-1",
    name="App",
    auth_method="none",
    grant_types=("authorization_code", "refresh_token"),
    scopes=("openid", "profile", "offline_access"),
    redirect_uris=(REDIRECT,),
)
LOGIN = Login(subject="sub-1", auth_time=NOW - 30, session_id="sid-1", amr=("pwd",))
KEY = JWK.generate("ES256")
SIGNER = LocalSigner(KEY, "ES256")


def issued(**kw: Any) -> IssuedCode:
    values: dict[str, Any] = {
        "client_id": "client-1",
        "redirect_uri": REDIRECT,
        "redirect_uri_in_request": True,
        "code_challenge": CHALLENGE,
        "scope": ("openid", "offline_access"),
        "resources": (),
        "login": LOGIN,
        "nonce": "n-0S6",
        "expires_at": NOW + 60,
        "consumed": False,
    }
    values.update(kw)
    return IssuedCode(**values)


def redeem(code: IssuedCode | None, **kw: Any) -> IssuedCode:
    values: dict[str, Any] = {
        "client": CLIENT,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "now": NOW + 1,
    }
    values.update(kw)
    return check_code_redemption(code, **values)


# -- authorization_code: the checks -----------------------------------------------------------


def test_code_with_the_right_parameters_is_accepted() -> None:
    assert redeem(issued()) == issued()


@pytest.mark.parametrize(
    ("code", "kw", "error"),
    [
        (None, {}, InvalidGrant),
        (issued(client_id="client-2"), {}, InvalidGrant),
        (issued(), {"redirect_uri": REDIRECT + "/other"}, InvalidGrant),
        (issued(), {"redirect_uri": None}, InvalidRequest),
        (issued(), {"code_verifier": None}, InvalidRequest),
        (issued(), {"code_verifier": VERIFIER[:-1] + "A"}, InvalidGrant),
        (issued(), {"now": NOW + 60}, InvalidGrant),
        (issued(), {"client": dataclasses.replace(CLIENT, grant_types=("refresh_token",))},
         UnauthorizedClient),
    ],
    ids=["unknown", "other-client", "redirect-mismatch", "redirect-missing", "no-verifier",
         "wrong-verifier", "expired", "grant-not-allowed"],
)  # fmt: skip
def test_code_refused(code: IssuedCode | None, kw: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error) as exc:
        redeem(code, **kw)
    assert not isinstance(exc.value, CodeReplayed)


def test_redirect_uri_may_be_left_out_only_if_the_request_left_it_out() -> None:
    code = issued(redirect_uri_in_request=False)
    assert redeem(code, redirect_uri=None) == code
    with pytest.raises(InvalidGrant):
        redeem(code, redirect_uri=REDIRECT + "x")


def test_replay_with_the_right_parameters_names_the_grant_to_revoke() -> None:
    used = issued(consumed=True, grant_id="g-1")
    with pytest.raises(CodeReplayed) as exc:
        redeem(used, now=NOW + 3600)  # even after the code expired
    assert exc.value.grant_id == "g-1"
    assert exc.value.error == "invalid_grant"


@pytest.mark.parametrize(
    "kw",
    [
        {"code_verifier": VERIFIER[:-1] + "A"},
        {"redirect_uri": REDIRECT + "/other"},
        {"client": dataclasses.replace(CLIENT, client_id="client-2")},
    ],
)
def test_replay_with_wrong_parameters_revokes_nothing(kw: dict[str, Any]) -> None:
    with pytest.raises(InvalidGrant) as exc:
        redeem(issued(consumed=True, grant_id="g-1"), **kw)
    assert not isinstance(exc.value, CodeReplayed)


# -- refresh_token: the checks ----------------------------------------------------------------


def presented(**kw: Any) -> PresentedRefreshToken:
    values: dict[str, Any] = {
        "client_id": "client-1",
        "scope": ("openid", "profile", "offline_access"),
        "resources": (),
        "login": LOGIN,
        "expires_at": NOW + 3600,
        "grant_active": True,
    }
    values.update(kw)
    return PresentedRefreshToken(**values)


def test_refresh_keeps_or_narrows_the_scope() -> None:
    token = presented()
    assert check_refresh(token, client=CLIENT, scope=None, now=NOW) == token.scope
    assert check_refresh(token, client=CLIENT, scope="openid", now=NOW) == ("openid",)
    with pytest.raises(InvalidScope):
        check_refresh(token, client=CLIENT, scope="openid email", now=NOW)
    with pytest.raises(InvalidScope):
        check_refresh(token, client=CLIENT, scope="openid  profile", now=NOW)
    with pytest.raises(InvalidScope):
        check_refresh(token, client=CLIENT, scope="", now=NOW)


def test_a_refresh_may_ask_again_for_the_whole_scope_it_was_granted() -> None:
    token = presented()
    same = " ".join(reversed(token.scope))
    assert set(check_refresh(token, client=CLIENT, scope=same, now=NOW)) == set(token.scope)


@pytest.mark.parametrize(
    ("token", "client", "error"),
    [
        (None, CLIENT, InvalidGrant),
        (presented(client_id="client-2"), CLIENT, InvalidGrant),
        (presented(grant_active=False), CLIENT, InvalidGrant),
        (presented(expires_at=NOW), CLIENT, InvalidGrant),
        (presented(), dataclasses.replace(CLIENT, grant_types=("authorization_code",)),
         UnauthorizedClient),
    ],
    ids=["unknown", "other-client", "revoked", "expired", "grant-not-allowed"],
)  # fmt: skip
def test_refresh_refused(
    token: PresentedRefreshToken | None, client: Client, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_refresh(token, client=client, scope=None, now=NOW)


# -- the tokens -------------------------------------------------------------------------------


def verify(token: str, audience: str, typ_required: tuple[str, ...]) -> dict[str, Any]:
    return (
        JWTVerifier(
            KeySet((KEY.public(),)),
            algorithms=["ES256"],
            issuer=ISSUER,
            audience=audience,
            required=typ_required,
            clock=lambda: NOW + 2,
        )
        .verify(token)
        .claims
    )


def test_user_access_token_and_id_token_claims() -> None:
    tokens = issue_user_tokens(
        client=CLIENT, login=LOGIN, scopes=("openid", "offline_access"), resources=(),
        issuer=ISSUER, lifetime=300, id_token_lifetime=600, signer=SIGNER, now=NOW,
        nonce="n-0S6", refresh_token="r" * 43,
    )  # fmt: skip
    at = verify(tokens.access.access_token, ISSUER, ("sub", "client_id", "auth_time", "sid"))
    assert at["sub"] == "sub-1"
    assert at["client_id"] == "client-1"
    assert at["scope"] == "openid offline_access"
    assert at["auth_time"] == int(NOW - 30)
    assert at["sid"] == "sid-1"
    assert tokens.id_token is not None
    idt = verify(tokens.id_token, "client-1", ("sub", "nonce", "at_hash"))
    assert idt["nonce"] == "n-0S6"
    assert idt["sid"] == "sid-1"
    assert idt["at_hash"] == token_hash(tokens.access.access_token, "ES256")
    assert json.loads(tokens.response_body()) == {
        "access_token": tokens.access.access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "openid offline_access",
        "refresh_token": "r" * 43,
        "id_token": tokens.id_token,
    }


def test_no_id_token_without_openid_and_audience_from_resources() -> None:
    client = dataclasses.replace(CLIENT, audiences=("https://api.example.com",))
    tokens = issue_user_tokens(
        client=client, login=LOGIN, scopes=("profile",), resources=(), issuer=ISSUER,
        lifetime=300, id_token_lifetime=600, signer=SIGNER, now=NOW,
    )  # fmt: skip
    assert tokens.id_token is None
    assert tokens.refresh_token is None
    assert b"id_token" not in tokens.response_body()
    verify(tokens.access.access_token, "https://api.example.com", ("sub",))


def test_the_access_token_names_its_grant_so_revoking_the_grant_reaches_it() -> None:
    def access_claims(grant_id: str | None) -> dict[str, Any]:
        tokens = issue_user_tokens(
            client=CLIENT, login=LOGIN, scopes=("openid",), resources=(), issuer=ISSUER,
            lifetime=300, id_token_lifetime=600, signer=SIGNER, now=NOW, grant_id=grant_id,
        )  # fmt: skip
        return verify(tokens.access.access_token, ISSUER, ("sub",))

    assert access_claims("grant-7")[GRANT_CLAIM] == "grant-7"
    assert GRANT_CLAIM not in access_claims(None)


def test_a_requested_resource_picks_the_audience_among_the_clients() -> None:
    client = dataclasses.replace(
        CLIENT, audiences=("https://api.example.com", "https://files.example.com")
    )
    tokens = issue_user_tokens(
        client=client, login=LOGIN, scopes=("openid",), resources=("https://files.example.com",),
        issuer=ISSUER, lifetime=300, id_token_lifetime=600, signer=SIGNER, now=NOW,
    )  # fmt: skip
    verify(tokens.access.access_token, "https://files.example.com", ("sub",))
    with pytest.raises(InvalidAudience):
        verify(tokens.access.access_token, "https://api.example.com", ("sub",))


def test_the_id_token_repeats_how_the_user_signed_in() -> None:
    login = dataclasses.replace(LOGIN, amr=("pwd", "otp"), acr="urn:example:loa:2")
    tokens = issue_user_tokens(
        client=CLIENT, login=login, scopes=("openid",), resources=(), issuer=ISSUER,
        lifetime=300, id_token_lifetime=600, signer=SIGNER, now=NOW,
    )  # fmt: skip
    assert tokens.id_token is not None
    idt = verify(tokens.id_token, "client-1", ("sub", "auth_time"))
    assert idt["amr"] == ["pwd", "otp"]
    assert idt["acr"] == "urn:example:loa:2"
    assert idt["auth_time"] == int(NOW - 30)


@pytest.mark.parametrize(
    ("grant_types", "scopes", "allowed"),
    [
        (("authorization_code", "refresh_token"), ("openid", "offline_access"), True),
        (("authorization_code", "refresh_token"), ("openid", "profile"), False),
        (("authorization_code", "refresh_token"), ("profile",), True),
        (("authorization_code", "refresh_token"), ("offline_access",), True),
        (("authorization_code",), ("openid", "offline_access"), False),
        (("authorization_code",), ("profile",), False),
    ],
)  # fmt: skip
def test_a_refresh_token_needs_the_grant_and_offline_access_in_an_openid_request(
    grant_types: tuple[str, ...], scopes: tuple[str, ...], allowed: bool
) -> None:
    # OIDC Core §11: an OpenID request gets a refresh token only with offline_access; a plain
    # OAuth request only needs the client to be registered for the grant.
    client = dataclasses.replace(CLIENT, grant_types=grant_types)
    assert refresh_token_allowed(client, scopes) is allowed


# -- composed with the stores -----------------------------------------------------------------


def test_code_then_refresh_then_replay_on_the_real_stores(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            ClientRow(
                client_id="client-1", name="App", auth_method="none",
                grant_types="authorization_code refresh_token", scope="openid offline_access",
                audiences="", redirect_uris=REDIRECT, public=True, created_at=NOW,
                updated_at=NOW,
            )
        )  # fmt: skip
    hasher = HandleHasher(b"g" * 32)
    alice = DatabaseAccountStore(
        engine, PasswordPolicy(time_cost=1, memory_cost=8, parallelism=1)
    ).create("alice", "correct horse")
    codes = AuthorizationCodeStore(engine, hasher)
    refresh = RefreshTokenStore(engine, hasher, b"g" * 32)
    code = codes.issue(
        CodeGrant(
            client_id="client-1", subject=alice.subject, session_id=None, redirect_uri=REDIRECT,
            redirect_uri_in_request=True, scope=("openid", "offline_access"),
            code_challenge=CHALLENGE, auth_time=NOW - 30, nonce="n-1",
        ),
        now=NOW,
    )  # fmt: skip

    def checked(**kw: Any) -> Callable[[StoredCode | None], bool]:
        def check(found: StoredCode | None) -> bool:
            redeem(issued_code(found) if found is not None else None, **kw)
            return True

        return check

    # A thief without the verifier fails inside the redemption and does not burn the code.
    with pytest.raises(InvalidGrant):
        codes.redeem(code, now=NOW + 1, grant_lifetime=86400, refresh_tokens=refresh,
                     check=checked(code_verifier=VERIFIER[:-1] + "A"))  # fmt: skip
    stored = codes.find(code)
    assert stored is not None
    assert stored.consumed_at is None
    with Session(engine) as session:
        assert session.scalars(select(GrantRow)).all() == []

    redemption = codes.redeem(
        code, now=NOW + 1, grant_lifetime=86400, refresh_tokens=refresh, check=checked()
    )
    accepted = issued_code(stored)
    tokens = issue_user_tokens(
        client=CLIENT, login=accepted.login, scopes=accepted.scope, resources=accepted.resources,
        issuer=ISSUER, lifetime=300, id_token_lifetime=600, signer=SIGNER, now=NOW + 1,
        nonce=accepted.nonce, refresh_token=redemption.refresh_token,
    )  # fmt: skip
    assert verify(tokens.access.access_token, ISSUER, ("sub",))["sub"] == alice.subject
    assert tokens.refresh_token is not None

    found = refresh.find(tokens.refresh_token)
    assert found is not None
    presented = presented_refresh_token(found, NOW + 2)
    assert presented.grant_id == redemption.grant_id
    assert presented.login == accepted.login  # the login repeats unchanged
    scopes = check_refresh(presented, client=CLIENT, scope="openid", now=NOW + 2)
    rotated = refresh.rotate(tokens.refresh_token, now=NOW + 2, scope=scopes)
    assert rotated.scope == ("openid",)

    # The code comes back with the right parameters: the family it started is revoked.
    replayed = codes.find(code)
    assert replayed is not None
    with pytest.raises(CodeReplayed) as exc:
        redeem(issued_code(replayed), now=NOW + 3)
    assert exc.value.grant_id == redemption.grant_id
    assert refresh.revoke_grant(exc.value.grant_id, now=NOW + 3, reason="code_replay")
    latest = refresh.find(rotated.refresh_token)
    assert latest is not None
    with pytest.raises(InvalidGrant):
        check_refresh(presented_refresh_token(latest, NOW + 4), client=CLIENT, scope=None,
                      now=NOW + 4)  # fmt: skip
    with pytest.raises(RefreshTokenInvalid):
        refresh.rotate(rotated.refresh_token, now=NOW + 4)
    with pytest.raises((RefreshTokenReused, RefreshTokenInvalid)):
        refresh.rotate(tokens.refresh_token, now=NOW + 4)


class _CountingSigner:
    """The real signer, counting its signatures."""

    def __init__(self) -> None:
        self.signed = 0
        self.alg, self.kid = SIGNER.alg, SIGNER.kid

    def sign(self, signing_input: bytes) -> bytes:
        self.signed += 1
        return SIGNER.sign(signing_input)

    def public_jwk(self) -> JWK:
        return SIGNER.public_jwk()


class _OneRefreshToken:
    """The grants' storage port with one live refresh token (the rotation itself is the
    store's, tested above)."""

    def rotate_refresh_token(
        self, token: str, *, now: float, check: Callable[[PresentedRefreshToken | None], object]
    ) -> RotatedToken:
        presented = PresentedRefreshToken(
            client_id=CLIENT.client_id, scope=("openid", "profile"), resources=(),
            login=Login("alice-id", now - 60), expires_at=now + 60, grant_active=True,
            grant_id="g1",
        )  # fmt: skip
        check(presented)
        return RotatedToken(presented, "successor")

    def redeem_code(self, code: str, *, now: float, check: Any) -> Any:
        raise AssertionError("not a code exchange")

    def revoke_grant(self, grant_id: str, *, now: float, reason: str) -> None:
        raise AssertionError("nothing to revoke")


def test_a_user_grant_signs_its_tokens_only_when_the_response_is_serialised() -> None:
    """The handler runs inside the grant's transaction (on SQLite, in a group holding the
    write lock of every process); the token endpoint serialises after it, so the signatures
    are computed outside the lock (grants.base.SignedLater)."""
    signer = _CountingSigner()
    request = GrantRequest(
        client=CLIENT, scope=None, resources=(), issuer=ISSUER, lifetime=300, signer=signer,
        now=1_800_000_000.0, parameters={"refresh_token": "presented"},
        store=_OneRefreshToken(),
    )  # fmt: skip
    issued = GRANTS["refresh_token"].handler(request)
    assert signer.signed == 0
    body = json.loads(issued.response_body())
    assert signer.signed == 2  # the access token and the ID token ("openid" was granted)
    assert body["refresh_token"] == "successor"
    assert body["scope"] == "openid profile"
