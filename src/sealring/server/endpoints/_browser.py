"""What the browser endpoints share: pages, redirects, cookies and CSRF tokens.

Cookies (docs/login.md, "Sessions"): every cookie is ``HttpOnly`` and ``SameSite=Lax``, and
``Secure`` when the issuer is https.  The session cookie is then named ``__Host-sealring_session``
(bound to this host, path ``/``); the interaction cookie, whose path is the interaction's own URL
so that each sign-in in progress has its own, is ``__Secure-sealring_interaction``.  A cookie
holds a random 256-bit value; the database keeps only its keyed hash.

CSRF: a form's token is the MAC (handle key) of the interaction id, or of the session for the
logout form, and of the browser's cookie, so it is bound to both, needs no storage, and a page
fetched in another browser is useless.
"""

from __future__ import annotations

import base64
import functools
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from sealring.server.context import ServerContext
from sealring.server.errors import InvalidRequest, OAuthError
from sealring.server.http.endpoint import Handler, context_of
from sealring.server.http.forms import read_form
from sealring.server.logging import logger
from sealring.server.pages import SECURITY_HEADERS, Page
from sealring.server.routes import endpoint_url, page_url
from sealring.server.tokens.handles import HandleKind

__all__ = [
    "bad_page",
    "bound",
    "browser_binding",
    "clear_cookie",
    "client_ip",
    "cookie",
    "cookie_names",
    "csrf_token",
    "csrf_valid",
    "error_page",
    "interaction_path",
    "page_endpoint",
    "page_response",
    "redirect",
    "request_params",
    "restart_url",
    "set_cookie",
]

SESSION = "session"
INTERACTION = "interaction"


def _secure(issuer: str) -> bool:
    return issuer.startswith("https://")


def cookie_names(issuer: str) -> Mapping[str, str]:
    if _secure(issuer):
        return {SESSION: "__Host-sealring_session", INTERACTION: "__Secure-sealring_interaction"}
    return {SESSION: "sealring_session", INTERACTION: "sealring_interaction"}


def set_cookie(
    response: Response, context: ServerContext, kind: str, value: str, *, path: str, max_age: int
) -> None:
    issuer = context.settings.issuer
    response.set_cookie(
        cookie_names(issuer)[kind],
        value,
        max_age=max_age,
        path=path,
        secure=_secure(issuer),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, context: ServerContext, kind: str, *, path: str) -> None:
    issuer = context.settings.issuer
    response.delete_cookie(
        cookie_names(issuer)[kind], path=path, secure=_secure(issuer), httponly=True, samesite="lax"
    )


def interaction_path(context: ServerContext, uid: str) -> str:
    return urlsplit(page_url(context.settings.issuer, "interaction", uid=uid)).path


def cookie(request: Request, context: ServerContext, kind: str) -> str | None:
    return request.cookies.get(cookie_names(context.settings.issuer)[kind])


def browser_binding(context: ServerContext, value: str) -> str:
    """What an interaction records of its browser cookie: the keyed hash, base64url."""
    digest = context.login.hasher.hash(HandleKind.BROWSER, value)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def bound(context: ServerContext, recorded: object, presented: str | None) -> bool:
    """Whether the browser's cookie is the one the interaction was started with."""
    if not isinstance(recorded, str) or presented is None:
        return False
    return hmac.compare_digest(browser_binding(context, presented), recorded)


def csrf_token(context: ServerContext, subject: str, browser: str) -> str:
    """The form token for ``subject`` (an interaction id, a session) in this browser."""
    digest = context.login.hasher.hash(HandleKind.CSRF, subject + "\0" + browser)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_valid(context: ServerContext, subject: str, browser: str | None, sent: str | None) -> bool:
    if browser is None or sent is None:
        return False
    return hmac.compare_digest(
        csrf_token(context, subject, browser).encode("ascii"), sent.encode("utf-8")
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def page_response(page: Page) -> Response:
    # X-Content-Type-Options is added to every response by the middleware (http/middleware.py);
    # sending it twice would read as "nosniff, nosniff".
    headers = {k: v for k, v in page.headers.items() if k.lower() != "x-content-type-options"}
    return Response(
        page.body, status_code=page.status_code, headers=headers, media_type=page.media_type
    )


def redirect(location: str) -> Response:
    """RFC 9700 §4.11: 303, so a POST is never repeated at the target; never cached."""
    headers = {"Location": location, "Cache-Control": "no-store", "Pragma": "no-cache"}
    headers["Referrer-Policy"] = SECURITY_HEADERS["Referrer-Policy"]
    return Response(b"", status_code=303, headers=headers)


async def request_params(request: Request, context: ServerContext) -> list[tuple[str, str]]:
    """A browser endpoint's parameters, repeats included: the query of a GET, or the same
    parameters form-encoded in a POST (OIDC Core §3.1.2.1)."""
    if request.method == "POST":
        return (await read_form(request, context.settings.max_body_size)).items()
    return list(request.query_params.multi_items())


def restart_url(context: ServerContext, params: object) -> str | None:
    """``/authorize`` again with the request's own parameters: a way back that ``/authorize``
    re-checks, so it can never lead anywhere the client did not register."""
    if not isinstance(params, list) or not params:
        return None
    pairs = [(str(k), str(v)) for k, v in params if isinstance(k, str)]
    return endpoint_url(context.settings.issuer, "authorization") + "?" + urlencode(pairs)


def error_page(
    context: ServerContext,
    error: OAuthError,
    *,
    status: int = 400,
    restart: str | None = None,
) -> Response:
    """An error shown to the user (never redirected): the error code and its description."""
    context.metrics.errors.labels("authorization", error.error).inc()
    logger.info("login page error", extra={"error": error.error, "code": error.code})
    page = context.login.pages.render(
        "error.html",
        {"error": error.error, "description": error.description, "restart_url": restart},
        status_code=status,
    )
    return page_response(page)


def page_endpoint(handler: Handler) -> Handler:
    """An OAuth error escaping a browser endpoint (the database or the keys unavailable: 503) is
    shown as the error page with its status, never as a bare 500."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except OAuthError as exc:
            response = error_page(context_of(request), exc, status=exc.status)
            retry = exc.response().headers.get("Retry-After")
            if retry is not None:  # 503 (and 429): when to try again, RFC 9110 §10.2.3
                response.headers["Retry-After"] = retry
            return response

    return endpoint


def bad_page(context: ServerContext, description: str, *, status: int = 400,
             restart: str | None = None) -> Response:  # fmt: skip
    """A recoverable problem with a page (expired, other browser): ``invalid_request``."""
    return error_page(context, InvalidRequest(description), status=status, restart=restart)
