"""A scripted browser for the login pages: follows the server's redirects, keeps its cookies,
reads the forms' CSRF tokens and fills them in as a user would (tests/server/login)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.helpers.server import LiveServer

__all__ = ["PASSWORD", "Browser", "Pkce", "query_of"]

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Pkce:
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Browser:
    """One browser: its own cookie jar; never follows a redirect on its own."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.http = httpx.Client(base_url=live.url, timeout=10, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def authorize(
        self, client_id: str, redirect_uri: str, pkce: Pkce, **params: str
    ) -> httpx.Response:
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile",
            "state": "st-" + secrets.token_hex(4),
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            **params,
        }
        return self.http.get("/authorize?" + urlencode({k: v for k, v in query.items() if v}))

    def get(self, url: str) -> httpx.Response:
        return self.http.get(url)

    @staticmethod
    def csrf(page: httpx.Response) -> str:
        found = _CSRF.search(page.text)
        assert found is not None, page.text
        return found.group(1)

    def submit(self, url: str, page: httpx.Response, **fields: str) -> httpx.Response:
        return self.http.post(url, data={"csrf_token": self.csrf(page), **fields})

    def login(self, interaction: str, username: str, password: str = PASSWORD) -> httpx.Response:
        page = self.get(interaction)
        assert page.status_code == 200, page.text
        assert 'name="password"' in page.text
        return self.submit(interaction, page, username=username, password=password)

    def consent(self, interaction: str, decision: str = "allow") -> httpx.Response:
        page = self.get(interaction)
        assert page.status_code == 200, page.text
        assert 'name="decision"' in page.text, page.text
        return self.submit(interaction, page, decision=decision)

    def sign_in(
        self, client_id: str, redirect_uri: str, pkce: Pkce, username: str, **params: Any
    ) -> dict[str, str]:
        """The whole flow from /authorize to the client's redirect; returns its query."""
        response = self.authorize(client_id, redirect_uri, pkce, **params)
        for _ in range(8):
            assert response.status_code in (200, 303), response.text
            if response.status_code == 200:
                page = response
                url = str(response.request.url)
                if 'name="password"' in page.text:
                    response = self.submit(url, page, username=username, password=PASSWORD)
                else:
                    response = self.submit(url, page, decision="allow")
                continue
            location = response.headers["location"]
            if location.startswith(redirect_uri):
                return query_of(location)
            response = self.get(location)
        raise AssertionError("the flow did not reach the client")
