"""``/interaction/{uid}``: the login page and the consent page (issue 9, items 3 and 4).

GET shows the page the interaction is at; POST takes the form, checks its CSRF token (bound to
the interaction and to this browser's interaction cookie) and answers 303: back to the page with
a message, on to the consent page, or to ``/interaction/{uid}/resume``.

Login: throttled per username and per client IP before the password is checked
(:class:`~sealring.server.stores.login_throttle.LoginThrottle`); an unknown user and a wrong
password get the same message after the same work.  A successful login starts a new server-side
browser session (the previous one of this browser ends), whose cookie holds only a random value.

Consent: Allow remembers the scopes for this user and client; Deny ends in ``access_denied``.
An unknown, expired or used interaction, or one opened in another browser, is a page with a way
to start again, never a 500.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Final

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from sealring.server.accounts import AuthenticationFailed
from sealring.server.clients import Client
from sealring.server.context import ServerContext
from sealring.server.endpoints._browser import (
    SESSION,
    bad_page,
    client_ip,
    csrf_token,
    csrf_valid,
    error_page,
    page_endpoint,
    page_response,
    redirect,
    set_cookie,
)
from sealring.server.endpoints.authorization import (
    OpenInteraction,
    checked_request,
    current_session,
    interaction_params,
    interaction_session,
    open_interaction,
)
from sealring.server.errors import OAuthError
from sealring.server.http.forms import read_form
from sealring.server.protocol.authorization_request import AuthorizationRequest
from sealring.server.protocol.prompt import consent_needed
from sealring.server.routes import page_url
from sealring.server.stores.login_throttle import LoginThrottled

__all__ = ["SCOPE_DESCRIPTIONS", "interaction_endpoint"]

#: What the consent page says about the scopes it knows; others are shown by name alone.
SCOPE_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "openid": "know who you are (your user id)",
    "profile": "your name and profile details",
    "email": "your email address",
    "address": "your postal address",
    "phone": "your phone number",
    "offline_access": "keep access while you are away (a refresh token)",
}
#: The messages a failed POST leaves for the page (never text from the request).
MESSAGES: Final[Mapping[str, str]] = {
    "credentials": "Unknown username or wrong password.",
    "throttled": "Too many failed sign-ins. Wait a moment and try again.",
    "csrf": "The form expired. Please try again.",
}


@page_endpoint
async def interaction_endpoint(request: Request) -> Response:
    opened = await open_interaction(request)
    if isinstance(opened, Response):
        return opened
    context = opened.context
    client, checked = await checked_request(context, interaction_params(opened.interaction))
    if isinstance(checked, Response):
        return checked
    assert client is not None
    login = opened.interaction.prompt == "login"
    if request.method == "POST":
        try:
            form = await read_form(request, context.settings.max_body_size)
        except OAuthError as exc:
            return error_page(context, exc, restart=opened.restart)
        if not csrf_valid(context, opened.uid, opened.browser, form.get("csrf_token")):
            return redirect(_page(context, opened.uid, "csrf"))
        if login:
            return await _login(request, opened, client, checked, form.get)
        return await _consent(request, opened, checked, form.get)
    if login:
        return _login_page(opened, client, checked, request.query_params.get("m"))
    return await _consent_page(request, opened, client, checked)


def _page(context: ServerContext, uid: str, message: str | None = None) -> str:
    url = page_url(context.settings.issuer, "interaction", uid=uid)
    return f"{url}?m={message}" if message else url


def _login_page(
    opened: OpenInteraction, client: Client, auth: AuthorizationRequest, message: str | None
) -> Response:
    return _form_page(
        opened,
        "login.html",
        client,
        login_hint=auth.login_hint,
        error=MESSAGES.get(message or ""),
    )


def _form_page(
    opened: OpenInteraction, template: str, client: Client, **values: object
) -> Response:
    """A page whose form posts back to this interaction, with its CSRF token."""
    context, uid = opened.context, opened.uid
    page = context.login.pages.render(
        template,
        {
            "action": _page(context, uid),
            "csrf_token": csrf_token(context, uid, opened.browser),
            "client_name": client.name,
            **values,
        },
    )
    return page_response(page)


async def _login(
    request: Request,
    opened: OpenInteraction,
    client: Client,
    auth: AuthorizationRequest,
    get: Callable[[str], str | None],
) -> Response:
    context, uid, now = opened.context, opened.uid, opened.now
    username = get("username") or ""
    password = get("password") or ""
    address = client_ip(request)
    login = context.login
    try:
        await context.database.call(
            functools.partial(login.throttle.check, username, address, now=now)
        )
        record = await context.database.call(login.accounts.record, username)
        # argon2id costs up to a second of CPU: outside the database's time limit, so a busy
        # machine is never reported as a database outage.
        check = await anyio.to_thread.run_sync(login.accounts.policy.check, record, password)
    except LoginThrottled:
        return redirect(_page(context, uid, "throttled"))
    except AuthenticationFailed:
        await context.database.call(
            functools.partial(login.throttle.failure, username, address, now=now)
        )
        return redirect(_page(context, uid, "credentials"))
    account = check.account
    if check.new_hash is not None and record is not None:
        await context.database.call(
            login.accounts.store_rehash, account.subject, record.password_hash, check.new_hash
        )
    await context.database.call(login.throttle.success, username)
    previous = await current_session(request, context, now)
    if previous is not None:
        await context.database.call(
            functools.partial(login.sessions.end, previous.session_id, now=now)
        )
    value, session = await context.database.call(
        functools.partial(login.sessions.create, account.subject, now=now)
    )
    remembered = await context.database.call(
        functools.partial(login.consents.granted, account.subject, client.client_id, now=now)
    )
    ask = consent_needed(auth, skip_consent=client.skip_consent, remembered=remembered)
    await context.database.call(
        functools.partial(
            login.interactions.finish,
            uid,
            {"login": True},
            now=now,
            session_id=session.session_id,
            prompt="consent" if ask else None,
        )
    )
    next_url = (
        _page(context, uid)
        if ask
        else page_url(context.settings.issuer, "interaction_resume", uid=uid)
    )
    response = redirect(next_url)
    set_cookie(
        response,
        context,
        SESSION,
        value,
        path="/",
        max_age=int(login.sessions.absolute_lifetime),
    )
    return response


async def _consent_page(
    request: Request, opened: OpenInteraction, client: Client, auth: AuthorizationRequest
) -> Response:
    context = opened.context
    session = await interaction_session(
        request, context, opened.interaction, opened.now, opened.restart
    )
    if isinstance(session, Response):
        return session
    account = await context.database.call(context.login.accounts.find, session.subject)
    if account is None:
        return bad_page(context, "Your account is no longer available.", restart=opened.restart)
    return _form_page(
        opened,
        "consent.html",
        client,
        username=account.username,
        scopes=[
            {"name": scope, "description": SCOPE_DESCRIPTIONS.get(scope)} for scope in auth.scopes
        ],
    )


async def _consent(
    request: Request,
    opened: OpenInteraction,
    auth: AuthorizationRequest,
    get: Callable[[str], str | None],
) -> Response:
    context, uid, now = opened.context, opened.uid, opened.now
    session = await interaction_session(
        request, context, opened.interaction, opened.now, opened.restart
    )
    if isinstance(session, Response):
        return session
    decision = get("decision")
    if decision not in ("allow", "deny"):
        return redirect(_page(context, uid))
    login = context.login
    if decision == "allow":
        await context.database.call(
            functools.partial(
                login.consents.remember, session.subject, auth.client_id, auth.scopes, now=now
            )
        )
        result: dict[str, object] = {"login": True, "consent": list(auth.scopes)}
    else:
        result = {"login": True, "denied": True}
    await context.database.call(functools.partial(login.interactions.finish, uid, result, now=now))
    return redirect(page_url(context.settings.issuer, "interaction_resume", uid=uid))
