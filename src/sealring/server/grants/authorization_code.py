"""The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6).

I/O-free: the store looks the presented code up and, in the same transaction, passes what it
found as an :class:`IssuedCode` to :func:`check_code_redemption`; only if that returns does it
consume the code and start the grant.  Checking before consuming means a request that fails (a
stolen code without the verifier) does not burn the legitimate client's code.

Replay (RFC 6749 §4.1.2: the server "SHOULD revoke (when possible) all tokens previously issued
based on that authorization code"): a consumed code presented again with the right client,
redirect URI and verifier raises :class:`CodeReplayed`, which names the grant the endpoint must
revoke.  With any wrong parameter it is an ordinary ``invalid_grant`` and revokes nothing, so a
party that merely saw the code in a log cannot use it to log the user out.
"""

from __future__ import annotations

from sealring.server.clients import Client
from sealring.server.errors import (
    InvalidGrant,
    InvalidRequest,
    OAuthError,
    UnauthorizedClient,
)
from sealring.server.grants.base import Grant, GrantRequest, SignedLater
from sealring.server.grants.records import IssuedCode
from sealring.server.grants.user_tokens import refresh_token_allowed
from sealring.server.protocol.pkce import verify_code_verifier

__all__ = [
    "GRANT",
    "CodeReplayed",
    "IssuedCode",
    "check_code_redemption",
    "redeem_code",
]


class CodeReplayed(OAuthError):
    """A used code came back with the right parameters: revoke ``grant_id`` (if any).

    On the wire it is ``invalid_grant`` like any other refused code (RFC 6749 §5.2).
    """

    code = "code_replayed"
    error = "invalid_grant"

    def __init__(self, grant_id: str | None) -> None:
        super().__init__("the authorization code was already used")
        self.grant_id = grant_id


def check_code_redemption(
    code: IssuedCode | None,
    *,
    client: Client,
    redirect_uri: str | None,
    code_verifier: str | None,
    now: float,
) -> IssuedCode:
    """RFC 6749 §4.1.3 for an authenticated ``client``; returns the code to consume, or raises.

    Every failure about the code itself is ``invalid_grant`` with one description, so the
    response does not tell an attacker whether a guessed code exists for another client.
    """
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the authorization_code grant")
    if code is None or code.client_id != client.client_id:
        # §4.1.3: "ensure that the authorization code was issued to the authenticated client".
        raise InvalidGrant("the authorization code is invalid or expired")
    # §4.1.3: redirect_uri is required when the authorization request had it, and identical.
    if code.redirect_uri_in_request:
        if redirect_uri is None:
            raise InvalidRequest("redirect_uri is required")
        if redirect_uri != code.redirect_uri:
            raise InvalidGrant("redirect_uri does not match the authorization request")
    elif redirect_uri is not None and redirect_uri != code.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
    verify_code_verifier(code.code_challenge, code_verifier)
    if code.consumed:
        raise CodeReplayed(code.grant_id)
    if now >= code.expires_at:
        raise InvalidGrant("the authorization code is invalid or expired")
    return code


def redeem_code(request: GrantRequest) -> SignedLater:
    """RFC 6749 §4.1.3-§4.1.4: check the code, consume it once, answer with the user's tokens.

    A replay that passes every check revokes the grant the code produced (§4.1.2), and so does
    losing the race to a concurrent redemption with the same right parameters (the store makes
    the second one find the code consumed): two redemptions of one code mean it leaked.
    """
    store = request.user_store()
    parameters = request.parameters
    client = request.client
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the authorization_code grant")
    presented = parameters.get("code")
    if presented is None:
        raise InvalidRequest("code is required")

    def check(code: IssuedCode | None) -> bool:
        accepted = check_code_redemption(
            code,
            client=client,
            redirect_uri=parameters.get("redirect_uri"),
            code_verifier=parameters.get("code_verifier"),
            now=request.now,
        )
        return refresh_token_allowed(client, accepted.scope)

    try:
        redeemed = store.redeem_code(presented, now=request.now, check=check)
    except CodeReplayed as replay:
        if replay.grant_id is not None:
            store.revoke_grant(replay.grant_id, now=request.now, reason="code_replay")
        raise
    code = redeemed.code
    return request.user_tokens(
        login=code.login,
        scopes=code.scope,
        resources=request.resources or code.resources,
        grant_id=redeemed.grant_id,
        refresh_token=redeemed.refresh_token,
        nonce=code.nonce,
    )


GRANT = Grant(
    "authorization_code",
    redeem_code,
    parameters=("code", "redirect_uri", "code_verifier"),
    public_clients=True,
    uses_store=True,
)
