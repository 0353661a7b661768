"""The authorization endpoint (RFC 6749 §4.1.1, RFC 7636, OIDC Core §3.1.2), GET and POST.

1. The request is checked by :func:`validate_authorization_request`: an error about the client or
   the redirect URI is shown on a page (400, never redirected); any later error goes back to the
   client with ``state`` and ``iss`` (RFC 9207).
2. The browser's session, ``prompt``, ``max_age``, ``login_hint`` and ``id_token_hint`` decide
   whether the user must sign in (:mod:`sealring.server.protocol.prompt`); remembered consent and
   the client's ``skip_consent`` whether the consent page is shown.  With ``prompt=none`` a needed
   page is ``login_required`` / ``consent_required`` instead.
3. If a page is needed, the request is stored as an interaction and the browser sent to
   ``/interaction/{uid}`` (303) with a cookie binding the interaction to this browser; the pages
   come back to ``/interaction/{uid}/resume``, which finishes here.
4. Finishing issues the code (stored hashed, 60 s, bound to the client, redirect URI, PKCE
   challenge, user, session and nonce) and redirects to the client with ``code``, ``state``,
   ``iss`` (RFC 6749 §4.1.2).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.jose.jwks import KeySet
from sealring.server.accounts import normalize_username
from sealring.server.clients import Client
from sealring.server.context import ServerContext
from sealring.server.endpoints._browser import (
    INTERACTION,
    bad_page,
    bound,
    browser_binding,
    cookie,
    error_page,
    interaction_path,
    page_endpoint,
    redirect,
    request_params,
    restart_url,
    set_cookie,
)
from sealring.server.errors import (
    AccessDenied,
    ConsentRequired,
    InvalidRequest,
    LoginRequired,
    OAuthError,
)
from sealring.server.http.endpoint import context_of
from sealring.server.protocol.authorization_request import (
    Accepted,
    AuthorizationRequest,
    RedirectError,
    requested_client_id,
    validate_authorization_request,
)
from sealring.server.protocol.prompt import SignedIn, consent_needed, login_reasons
from sealring.server.routes import page_url
from sealring.server.stores.authorization_codes import CodeGrant
from sealring.server.stores.browser_sessions import BrowserSession
from sealring.server.stores.interactions import Interaction, Prompt
from sealring.server.tokens.handles import new_handle
from sealring.server.tokens.id_token_hint import read_id_token_hint

__all__ = [
    "OpenInteraction",
    "authorization_endpoint",
    "checked_request",
    "current_session",
    "interaction_params",
    "interaction_session",
    "open_interaction",
    "resume_endpoint",
]

Params = list[tuple[str, str]]


@page_endpoint
async def authorization_endpoint(request: Request) -> Response:
    context = context_of(request)
    try:
        params = await request_params(request, context)
    except OAuthError as exc:
        return error_page(context, exc)
    return await _authorize(request, context, params)


async def _client(context: ServerContext, params: Sequence[tuple[str, str]]) -> Client | None:
    client_id = requested_client_id(params)
    if client_id is None or len(client_id) > 64:
        return None
    return await context.database.call(context.clients.get, client_id)


async def checked_request(
    context: ServerContext, params: Params
) -> tuple[Client | None, AuthorizationRequest | Response]:
    """The request checked again (the client may have changed meanwhile), or the response to an
    error: an error page, or the redirect to the client."""
    client = await _client(context, params)
    outcome = validate_authorization_request(params, client, issuer=context.settings.issuer)
    if isinstance(outcome, Accepted):
        return client, outcome.request
    if isinstance(outcome, RedirectError):
        context.metrics.errors.labels("authorization", outcome.error.error).inc()
        return client, redirect(outcome.location)
    return client, error_page(context, outcome.error)


async def current_session(
    request: Request, context: ServerContext, now: float
) -> BrowserSession | None:
    """The live session behind the browser's cookie (and mark it used), or None."""
    value = cookie(request, context, "session")
    if value is None:
        return None
    return await context.database.call(
        functools.partial(context.login.sessions.resume, value, now=now)
    )


async def _signed_in(context: ServerContext, session: BrowserSession | None) -> SignedIn | None:
    if session is None:
        return None
    account = await context.database.call(context.login.accounts.find, session.subject)
    if account is None or account.disabled:
        return None
    return SignedIn(session.subject, account.username, session.auth_time)


def _hint_subject(context: ServerContext, hint: str) -> str:
    keys = KeySet.from_json(context.keys.jwks().body)
    return read_id_token_hint(hint, keys, issuer=context.settings.issuer).subject


async def _authorize(request: Request, context: ServerContext, params: Params) -> Response:
    client, checked = await checked_request(context, params)
    if isinstance(checked, Response):
        return checked
    assert client is not None
    auth = checked
    now = context.clock()
    hint_subject = None
    if auth.id_token_hint is not None:
        try:
            hint_subject = _hint_subject(context, auth.id_token_hint)
        except JoseError:
            error = InvalidRequest("id_token_hint is not an ID token issued by this server")
            return redirect(auth.redirect.with_error(error))
    session = await current_session(request, context, now)
    signed_in = await _signed_in(context, session)
    login_hint = normalize_username(auth.login_hint) if auth.login_hint else None
    reasons = login_reasons(
        auth, signed_in, hint_subject=hint_subject, login_hint=login_hint, now=now
    )
    if reasons:
        if "none" in auth.prompt:
            return redirect(auth.redirect.with_error(LoginRequired("the user is not signed in")))
        return await _start_interaction(
            request, context, params, client, prompt="login", reasons=reasons
        )
    assert session is not None
    remembered = await context.database.call(
        functools.partial(
            context.login.consents.granted, session.subject, client.client_id, now=now
        )
    )
    if consent_needed(auth, skip_consent=client.skip_consent, remembered=remembered):
        if "none" in auth.prompt:
            refused = ConsentRequired("the user has not allowed this client these scopes")
            return redirect(auth.redirect.with_error(refused))
        return await _start_interaction(
            request, context, params, client, prompt="consent", session_id=session.session_id
        )
    return await _issue_code(context, auth, session)


async def _start_interaction(
    request: Request,
    context: ServerContext,
    params: Params,
    client: Client,
    *,
    prompt: Prompt,
    reasons: tuple[str, ...] = (),
    session_id: str | None = None,
) -> Response:
    browser = new_handle()
    uid = await context.database.call(
        functools.partial(
            context.login.interactions.create,
            client.client_id,
            {"params": params, "browser": browser_binding(context, browser)},
            prompt=prompt,
            reasons=reasons,
            session_id=session_id,
            now=context.clock(),
        )
    )
    response = redirect(page_url(context.settings.issuer, "interaction", uid=uid))
    set_cookie(
        response,
        context,
        INTERACTION,
        browser,
        path=interaction_path(context, uid),
        max_age=int(context.login.interactions.lifetime),
    )
    return response


async def _issue_code(
    context: ServerContext,
    auth: AuthorizationRequest,
    session: BrowserSession,
    scopes: tuple[str, ...] | None = None,
) -> Response:
    grant = CodeGrant(
        client_id=auth.client_id,
        subject=session.subject,
        session_id=session.session_id,
        redirect_uri=auth.redirect_uri,
        redirect_uri_in_request=auth.redirect_uri_in_request,
        scope=scopes if scopes is not None else auth.scopes,
        code_challenge=auth.code_challenge,
        auth_time=session.auth_time,
        nonce=auth.nonce,
        amr=session.amr,
        acr=session.acr,
    )
    code = await context.database.call(
        functools.partial(context.login.codes.issue, grant, now=context.clock())
    )
    return redirect(auth.redirect.with_code(code))


def interaction_params(interaction: Interaction) -> Params:
    """The authorization request's parameters, as the interaction recorded them."""
    params = interaction.request.get("params")
    return [(str(k), str(v)) for k, v in params] if isinstance(params, list) else []


def finished(interaction: Interaction) -> bool:
    """Whether the pages are done: a decision recorded for the step the interaction is at."""
    result = interaction.result or {}
    if result.get("denied"):
        return True
    if interaction.prompt == "consent":
        return "consent" in result
    return bool(result.get("login"))


@dataclass(frozen=True)
class OpenInteraction:
    """An interaction this browser may continue: its record, cookie and way back, with the
    server and the time the request is answered by."""

    context: ServerContext
    now: float
    uid: str
    interaction: Interaction
    browser: str
    restart: str | None


async def open_interaction(request: Request) -> OpenInteraction | Response:
    """The interaction of the URL, if it is live and was started in this browser; else the
    page saying why, with a way back to ``/authorize`` when the request is known."""
    context = context_of(request)
    now = context.clock()
    uid = request.path_params["uid"]
    interaction = await context.database.call(
        functools.partial(context.login.interactions.get, uid, now=now)
    )
    if interaction is None:
        return bad_page(context, "This sign-in is unknown. Start again from the application.")
    restart = restart_url(context, interaction.request.get("params"))
    if interaction.expired or interaction.consumed:
        return bad_page(context, "This sign-in has expired or was already used.", restart=restart)
    browser = cookie(request, context, INTERACTION)
    if browser is None or not bound(context, interaction.request.get("browser"), browser):
        return bad_page(
            context, "This sign-in was started in another browser.", status=403, restart=restart
        )
    return OpenInteraction(context, now, uid, interaction, browser, restart)


@page_endpoint
async def resume_endpoint(request: Request) -> Response:
    """``/interaction/{uid}/resume``: the pages are done; finish the authorization request."""
    opened = await open_interaction(request)
    if isinstance(opened, Response):
        return opened
    context, now, uid, interaction, restart = (
        opened.context, opened.now, opened.uid, opened.interaction, opened.restart,
    )  # fmt: skip
    if not finished(interaction):
        return redirect(page_url(context.settings.issuer, "interaction", uid=uid))
    taken = await context.database.call(
        functools.partial(context.login.interactions.consume, uid, now=now)
    )
    if taken is None:
        return bad_page(context, "This sign-in has expired or was already used.", restart=restart)
    _, checked = await checked_request(context, interaction_params(interaction))
    if isinstance(checked, Response):
        return checked
    result = taken.result or {}
    if result.get("denied"):
        return redirect(checked.redirect.with_error(AccessDenied("the user denied the request")))
    session = await interaction_session(request, context, taken, now, restart)
    if isinstance(session, Response):
        return session
    return await _issue_code(context, checked, session)


async def interaction_session(
    request: Request,
    context: ServerContext,
    interaction: Interaction,
    now: float,
    restart: str | None,
) -> BrowserSession | Response:
    """The browser session the interaction's login started, if this browser still has it; else
    the page saying to sign in again."""
    session = await current_session(request, context, now)
    if session is None or session.session_id != interaction.session_id:
        return bad_page(context, "Your session has ended. Sign in again.", restart=restart)
    return session
