"""A relying party built with Authlib's Starlette client, as an application developer writes one.

Run as ``python tests/browser/authlib_rp.py CONFIG_JSON`` with ``{"issuer", "client_id",
"port", "scope"}``: a public client (PKCE S256, no secret) on ``http://127.0.0.1:PORT`` with

* ``/login``: Authlib builds the authorization request from discovery (state, nonce, PKCE);
* ``/callback``: Authlib checks ``state``, exchanges the code, validates the ID token (signature
  with the server's JWKS, ``iss``, ``aud``, ``exp``, ``nonce``) and calls userinfo;
* ``/refresh``: one refresh-token grant; ``/reuse``: presents the previous refresh token again;
* ``/logout``: RP-initiated logout with ``id_token_hint``; ``/logged-out``: where it returns.

Every page shows what the relying party saw as JSON in ``<pre id="result">`` for the test to read.
"""

from __future__ import annotations

import html
import json
import secrets
import sys
import warnings
from typing import Any
from urllib.parse import urlencode

# Authlib announces its own API changes; they are not this relying party's concern.
warnings.simplefilter("ignore")

import uvicorn  # noqa: E402
from authlib.integrations.base_client import OAuthError  # noqa: E402
from authlib.integrations.httpx_client import AsyncOAuth2Client  # noqa: E402
from authlib.integrations.starlette_client import OAuth  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.middleware.sessions import SessionMiddleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import HTMLResponse, RedirectResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

config: dict[str, Any] = json.loads(sys.argv[1])
BASE = f"http://127.0.0.1:{config['port']}"
oauth = OAuth()
oauth.register(
    "sealring",
    client_id=config["client_id"],
    server_metadata_url=f"{config['issuer']}/.well-known/openid-configuration",
    client_kwargs={
        "scope": config["scope"],
        "code_challenge_method": "S256",
        "token_endpoint_auth_method": "none",
    },
)
# The relying party's memory of the signed-in user (one browser in these tests).
state: dict[str, Any] = {}


def result_page(body: dict[str, Any], status: int = 200) -> Response:
    """What the relying party saw, as JSON inside a page the browser shows."""
    text = html.escape(json.dumps(body))
    return HTMLResponse(f'<!doctype html><title>RP</title><pre id="result">{text}</pre>', status)


async def login(request: Request) -> Response:
    response: Response = await oauth.sealring.authorize_redirect(
        request, f"{BASE}/callback", prompt=request.query_params.get("prompt")
    )
    return response


async def callback(request: Request) -> Response:
    try:
        token = await oauth.sealring.authorize_access_token(request)
    except OAuthError as exc:
        return result_page({"error": exc.error, "description": exc.description}, 400)
    state["token"] = token
    info = await oauth.sealring.userinfo(token=token)
    return result_page(
        {
            "id_token_claims": dict(token["userinfo"]),
            "userinfo": dict(info),
            "scope": token.get("scope"),
            "has_refresh_token": "refresh_token" in token,
            "iss_param": request.query_params.get("iss"),
        }
    )


async def _refresh(refresh_token: str) -> tuple[int, dict[str, Any]]:
    """Authlib's refresh-token grant (RFC 6749 §6) as a public client; (200, token) or error."""
    metadata = await oauth.sealring.load_server_metadata()
    async with AsyncOAuth2Client(
        client_id=config["client_id"], token_endpoint_auth_method="none"
    ) as client:
        try:
            token = await client.refresh_token(
                metadata["token_endpoint"], refresh_token=refresh_token
            )
        except OAuthError as exc:
            return 400, {"error": exc.error}
    return 200, dict(token)


async def refresh(request: Request) -> Response:
    token = state["token"]
    status, body = await _refresh(token["refresh_token"])
    if status != 200:
        return result_page({"status": status, **body}, 400)
    state["previous_refresh_token"] = token["refresh_token"]
    state["token"] = {**token, **body}
    info = await oauth.sealring.userinfo(token=state["token"])
    return result_page(
        {
            "rotated": body["refresh_token"] != token["refresh_token"],
            "new_access_token": body["access_token"] != token["access_token"],
            "userinfo": dict(info),
        }
    )


async def reuse(request: Request) -> Response:
    status, body = await _refresh(state["previous_refresh_token"])
    # The current token after the reuse: revoked with its family.
    current_status, current = await _refresh(state["token"]["refresh_token"])
    return result_page(
        {
            "status": status,
            "error": body.get("error"),
            "current_status": current_status,
            "current_error": current.get("error"),
        }
    )


async def logout(request: Request) -> Response:
    metadata = await oauth.sealring.load_server_metadata()
    state["logout_state"] = secrets.token_urlsafe(12)
    query = urlencode(
        {
            "id_token_hint": state["token"]["id_token"],
            "post_logout_redirect_uri": f"{BASE}/logged-out",
            "state": state["logout_state"],
        }
    )
    return RedirectResponse(f"{metadata['end_session_endpoint']}?{query}", 303)


async def logged_out(request: Request) -> Response:
    return result_page(
        {"logged_out": True, "state_ok": request.query_params.get("state") == state["logout_state"]}
    )


app = Starlette(
    routes=[
        Route("/login", login),
        Route("/callback", callback),
        Route("/refresh", refresh),
        Route("/reuse", reuse),
        Route("/logout", logout),
        Route("/logged-out", logged_out),
    ],
    # Its own cookie name: cookies ignore ports, and Sealring's share 127.0.0.1 with it.
    middleware=[
        Middleware(SessionMiddleware, secret_key=secrets.token_hex(32), session_cookie="authlib_rp")
    ],
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=config["port"], log_level="warning")
