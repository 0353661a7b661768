"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), ``end_session_endpoint``.

GET or POST with ``id_token_hint``, ``client_id``, ``post_logout_redirect_uri``, ``state``:

* ``id_token_hint`` must be an ID token of this server (our keys, our issuer); an expired one is
  accepted (§2).  Anything else is an error page, not a redirect.
* ``post_logout_redirect_uri`` must be registered, character for character, for the client
  named by ``client_id`` or by the hint's ``aud`` (§3.1); ``client_id`` and the hint must agree.
  ``state`` is echoed on that redirect (§3).
* The browser's session ends at once only when the hint is for this very session (same ``sub``
  and ``sid``).  Without a hint, or with one for another user or session, the user is asked to
  confirm (§6: a logout request alone must not log anyone out), with a CSRF token bound to the
  session cookie, so no third party can submit the form.
* Without a redirect URI the result is the "signed out" page.
"""

from __future__ import annotations

import functools
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.jose.jwks import KeySet
from sealring.server.clients import Client
from sealring.server.context import ServerContext
from sealring.server.endpoints._browser import (
    SESSION,
    bad_page,
    clear_cookie,
    cookie,
    csrf_token,
    csrf_valid,
    error_page,
    page_endpoint,
    page_response,
    redirect,
    request_params,
)
from sealring.server.endpoints.authorization import current_session
from sealring.server.errors import InvalidRequest, OAuthError
from sealring.server.http.endpoint import context_of
from sealring.server.routes import endpoint_url
from sealring.server.stores.browser_sessions import BrowserSession
from sealring.server.tokens.id_token_hint import IdTokenHint, read_id_token_hint

__all__ = ["end_session_endpoint"]

PARAMETERS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "csrf_token")


@page_endpoint
async def end_session_endpoint(request: Request) -> Response:
    context = context_of(request)
    try:
        pairs = await request_params(request, context)
        values: dict[str, str] = {}
        for name, value in pairs:
            if name in PARAMETERS and value:
                if name in values:
                    raise InvalidRequest(f"{name} is repeated")
                values[name] = value
    except OAuthError as exc:
        return error_page(context, exc)
    hint: IdTokenHint | None = None
    if "id_token_hint" in values:
        try:
            keys = KeySet.from_json(context.keys.jwks().body)
            hint = read_id_token_hint(values["id_token_hint"], keys, issuer=context.settings.issuer)
        except JoseError:
            return bad_page(context, "id_token_hint is not an ID token issued by this server.")
    client_id = values.get("client_id")
    if client_id is not None and hint is not None and client_id not in hint.audience:
        return bad_page(context, "client_id is not the audience of id_token_hint.")
    if client_id is None and hint is not None:
        client_id = hint.audience[0]
    client: Client | None = None
    if client_id is not None and len(client_id) <= 64:
        client = await context.database.call(context.clients.get, client_id)
    if client_id is not None and client is None:
        return bad_page(context, "client_id is not a registered client.")
    target = values.get("post_logout_redirect_uri")
    if target is not None and (client is None or target not in client.post_logout_redirect_uris):
        # §3.1: only a URI registered for the client; never an open redirect.
        return bad_page(context, "post_logout_redirect_uri is not registered for this client.")
    now = context.clock()
    session = await current_session(request, context, now)
    cookie_value = cookie(request, context, SESSION)
    state = values.get("state")
    if session is None:
        return _done(context, target, state)
    assert cookie_value is not None
    confirm_for = "logout\0" + session.session_id
    if request.method == "POST" and "csrf_token" in values:
        if not csrf_valid(context, confirm_for, cookie_value, values["csrf_token"]):
            return bad_page(context, "The sign-out form expired. Please try again.")
        return await _end(context, session, target, state)
    if (
        hint is not None
        and hint.subject == session.subject
        and hint.session_id
        in (
            None,
            session.session_id,
        )
    ):
        return await _end(context, session, target, state)
    page = context.login.pages.render(
        "logout.html",
        {
            "action": endpoint_url(context.settings.issuer, "end_session"),
            "csrf_token": csrf_token(context, confirm_for, cookie_value),
            "client_name": client.name if client is not None else None,
            "client_id": client.client_id if client is not None else None,
            "post_logout_redirect_uri": target,
            "state": state,
        },
    )
    return page_response(page)


async def _end(
    context: ServerContext, session: BrowserSession, target: str | None, state: str | None
) -> Response:
    await context.database.call(
        functools.partial(context.login.sessions.end, session.session_id, now=context.clock())
    )
    response = _done(context, target, state)
    clear_cookie(response, context, SESSION, path="/")
    return response


def _done(context: ServerContext, target: str | None, state: str | None) -> Response:
    if target is None:
        return page_response(context.login.pages.render("logged_out.html", {}))
    if state is not None:
        separator = "&" if "?" in target else "?"
        target = f"{target}{separator}state={quote(state, safe='')}"
    return redirect(target)
