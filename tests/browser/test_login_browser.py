"""The whole user login in Chromium, once with an Authlib relying party, once with openid-client.

Sign in on Sealring's login page, allow on the consent page, return to the relying party (which
exchanges the code with PKCE, validates the ID token and calls userinfo), refresh, present the
used refresh token again (refused, and the family with it), then log out through the
end-session endpoint and find the session gone.  The browser keeps the cookies and follows the
redirects itself, so SameSite, the 303s and the pages' headers are tested as users meet them.

The login, consent and error pages are screenshotted on every run (into the test's temporary
folder); with ``SEALRING_UPDATE_SCREENSHOTS=1`` they are also written to docs/images/ for
docs/login.md.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests.browser.conftest import RelyingParty
from tests.helpers.login import PASSWORD, USERNAME, LoginWorld, Pkce, auth_params

pytestmark = pytest.mark.timeout(120)

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
PNG = b"\x89PNG\r\n\x1a\n"
#: A small window, so the screenshots in docs/images show the page rather than white space.
VIEWPORT: ViewportSize = {"width": 720, "height": 420}


def result(page: Page) -> dict[str, Any]:
    """What the relying party showed: its JSON in ``<pre id="result">``."""
    shown: dict[str, Any] = json.loads(page.locator("#result").inner_text())
    return shown


def screenshot(page: Page, folder: Path, name: str) -> None:
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(PNG)
    if os.environ.get("SEALRING_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / name)


def sign_in_and_allow(page: Page, rp: RelyingParty, folder: Path | None) -> dict[str, Any]:
    page.goto(f"{rp.url}/login")
    assert page.get_by_label("Password").is_visible()
    # The login page names the client it signs in to.
    assert rp.name in page.locator("body").inner_text()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    if folder is not None:
        screenshot(page, folder, "login-page.png")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").wait_for()
    body = page.locator("body").inner_text()
    assert rp.name in body
    for scope in ("openid", "profile", "email", "offline_access"):
        assert scope in body
    if folder is not None:
        screenshot(page, folder, "consent-page.png")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{rp.url}/callback*")
    return result(page)


def whole_flow(browser: Browser, world: LoginWorld, rp: RelyingParty, folder: Path | None) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        seen = sign_in_and_allow(page, rp, folder)
        assert "error" not in seen, seen
        claims = seen["id_token_claims"]
        assert claims["sub"] == world.sub
        assert claims["iss"] == world.issuer
        assert claims["aud"] in (rp.client.client_id, [rp.client.client_id])
        assert seen["iss_param"] == world.issuer
        assert seen["userinfo"]["sub"] == world.sub
        assert seen["userinfo"]["email"] == "alice@example.com"
        assert seen["userinfo"]["name"] == "Alice Liddell"
        assert seen["has_refresh_token"] is True
        # Every cookie the browser holds (Sealring's, and the Authlib RP's own) is HttpOnly and
        # SameSite=Lax; Sealring's are among them.
        cookies = context.cookies()
        assert cookies
        assert all(c["httpOnly"] for c in cookies)
        assert all(c["sameSite"] == "Lax" for c in cookies)

        page.goto(f"{rp.url}/refresh")
        refreshed = result(page)
        assert refreshed.get("rotated") is True, refreshed
        assert refreshed["new_access_token"] is True
        assert refreshed["userinfo"]["sub"] == world.sub

        page.goto(f"{rp.url}/reuse")
        reuse = result(page)
        assert (reuse["status"], reuse["error"]) == (400, "invalid_grant"), reuse
        assert (reuse["current_status"], reuse["current_error"]) == (400, "invalid_grant"), reuse

        page.goto(f"{rp.url}/logout")
        if "/logged-out" not in page.url:
            # A confirmation page: the user confirms.
            page.get_by_role("button").first.click()
        page.wait_for_url(f"{rp.url}/logged-out*")
        assert result(page) == {"logged_out": True, "state_ok": True}
        # The session is gone: signing in asks for the password again.
        page.goto(f"{rp.url}/login")
        assert page.get_by_label("Password").is_visible()
    finally:
        context.close()


def test_authlib_relying_party(
    browser: Browser, world: LoginWorld, authlib_rp: RelyingParty, tmp_path: Path
) -> None:
    whole_flow(browser, world, authlib_rp, tmp_path)


def test_openid_client_relying_party(
    browser: Browser, world: LoginWorld, node_rp: RelyingParty
) -> None:
    whole_flow(browser, world, node_rp, None)


def test_error_page_in_browser(browser: Browser, world: LoginWorld, tmp_path: Path) -> None:
    """A redirect URI that does not match: a page in the browser, and the browser stays."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        params = auth_params(
            world.confidential, Pkce.new(), state="s", nonce=None,
            redirect_uri="https://evil.example.test/cb",
        )  # fmt: skip
        response = page.goto(f"{world.provider.authorization_endpoint}?{urlencode(params)}")
        assert response is not None
        assert response.status == 400
        assert page.url.startswith(world.issuer)
        assert "evil.example.test" not in page.content()
        screenshot(page, tmp_path, "error-page.png")
    finally:
        context.close()
