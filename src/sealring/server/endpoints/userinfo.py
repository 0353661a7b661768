"""The UserInfo endpoint (OIDC Core §5.3), GET and POST.

A bearer access token of this server (RFC 6750 §2.1 header, or §2.2 ``access_token`` in a POST
form) that was issued from a user's grant with the ``openid`` scope; the answer is ``sub`` and
the claims the granted scopes release (§5.4, :func:`scope_claims`).  A token of a revoked grant
(code replay, refresh-token reuse, ``/revoke``) or a revoked ``jti`` is ``invalid_token``; errors
follow RFC 6750 §3 with ``WWW-Authenticate``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sealring.errors import SealringError
from sealring.jose.errors import JoseError
from sealring.resource.bearer import error_response, extract_token
from sealring.resource.errors import InsufficientScope, InvalidToken
from sealring.resource.errors import InvalidRequest as BearerInvalidRequest
from sealring.server.errors import OAuthError
from sealring.server.grants.user_tokens import GRANT_CLAIM
from sealring.server.http.endpoint import context_of
from sealring.server.http.forms import FORM_TYPE, read_form
from sealring.server.http.responses import error_response as oauth_error_response
from sealring.server.http.responses import json_response
from sealring.server.tokens.id_token import scope_claims

__all__ = ["userinfo_endpoint"]


async def userinfo_endpoint(request: Request) -> Response:
    context = context_of(request)
    try:
        await context.check_address(request.client.host if request.client else None)
        form_values: list[str] = []
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and content_type.split(";")[0].strip().lower() == FORM_TYPE:
            form_values = (await read_form(request, context.settings.max_body_size)).getall(
                "access_token"
            )
    except OAuthError as exc:
        return oauth_error_response(exc)
    try:
        authorization = request.headers.getlist("authorization")
        if len(authorization) > 1:
            raise BearerInvalidRequest("more than one Authorization header")
        token = extract_token(authorization[0] if authorization else None, form_values=form_values)
        body = await _claims(request, token)
    except SealringError as exc:
        if isinstance(exc, OAuthError):  # 503 from the database or the keys
            return oauth_error_response(exc)
        context.metrics.errors.labels(
            "userinfo", getattr(exc, "error", None) or "invalid_token"
        ).inc()
        answer = error_response(exc, None)
        return Response(
            answer.body,
            status_code=answer.status,
            headers=answer.headers,
            media_type=answer.media_type,
        )
    return json_response(body)


async def _claims(request: Request, token: str) -> dict[str, object]:
    context = context_of(request)
    try:
        claims = context.verifier.verify(token).claims
    except JoseError:
        raise InvalidToken("the access token is invalid or expired") from None
    grant_id = claims.get(GRANT_CLAIM)
    if not isinstance(grant_id, str):
        raise InvalidToken("the access token was not issued for a user")
    now = context.clock()
    if await context.database.call(context.revocations.is_revoked, str(claims["jti"])):
        raise InvalidToken("the access token was revoked")
    if not await context.database.call(context.login.grant_active, grant_id, now):
        raise InvalidToken("the access token was revoked")
    scope = claims.get("scope")
    scopes = scope.split() if isinstance(scope, str) else []
    if "openid" not in scopes:
        raise InsufficientScope(["openid"])
    account = await context.database.call(context.login.accounts.find, str(claims["sub"]))
    if account is None or account.disabled:
        raise InvalidToken("the user of this access token no longer exists")
    # The username is the account's preferred_username (OIDC Core §5.1, scope profile).
    released = {"preferred_username": account.username, **account.claims}
    return {"sub": account.subject, **scope_claims(released, scopes)}
