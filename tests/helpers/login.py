"""A scripted browser for the login flow, and the relying party's checks.

``UserAgent`` is what a browser does with Sealring's pages and nothing more: a cookie jar, one
redirect at a time (each hop recorded), and forms read from the HTML with the standard library's
``html.parser`` (action, hidden inputs, named buttons) instead of URLs written into the tests.
``Provider`` is what a relying party learns from discovery, and ``check_id_token`` runs the
OpenID conformance suite's standard ID-token checks with joserfc, a JOSE implementation that
shares no code with Sealring.

``LoginWorld`` registers what every login test needs through the ``sealring`` command itself:
a user, a confidential client (``client_secret_basic``), a second confidential client, a
``client_secret_post`` client, a public client and a first-party client that skips consent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, cast
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from typer.testing import CliRunner

from sealring.cli import app as cli_app
from tests.helpers.server import ENVIRON

__all__ = [
    "PASSWORD",
    "SERVER_SETTINGS",
    "USERNAME",
    "Authorization",
    "Form",
    "LoginWorld",
    "OffsetClock",
    "Pkce",
    "Provider",
    "RegisteredClient",
    "UserAgent",
    "check_id_token",
    "error_page",
    "error_redirect",
    "jwt_claims",
    "parse_forms",
    "sealring_cli",
    "unsigned_jwt",
]

USERNAME = "alice"
PASSWORD = "correct horse battery staple"
EMAIL = "alice@example.com"
FULL_NAME = "Alice Liddell"
#: Redirect URIs of the test clients: never fetched, the user agent stops at the client.
RP = "https://rp.example.test"
SPA = "https://spa.example.test"
LOGGED_OUT = "https://rp.example.test/logged-out"
SCOPE = "openid profile email offline_access"
#: Settings of every login test server: the server secret from the database, so the
#: ``sealring clients`` command and the server agree on the client secrets' hash key.
SERVER_SETTINGS: dict[str, Any] = {"server_secret": None}


class OffsetClock:
    """``time.time`` plus an offset the test moves forward: codes and sessions expire on demand."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


# -- HTML forms ---------------------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    # (name, value) of each submit button, in document order.
    buttons: list[tuple[str, str]] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self.forms.append(self._current)
        elif self._current is None:
            return
        elif tag == "input":
            name = a.get("name")
            if not name:
                return
            self._current.inputs.append(name)
            if a.get("type", "text").lower() == "submit":
                self._current.buttons.append((name, a.get("value", "")))
            elif a.get("type", "text").lower() != "checkbox" or "checked" in a:
                self._current.fields[name] = a.get("value", "")
        elif tag == "button" and a.get("name") and a.get("type", "submit").lower() == "submit":
            self._current.buttons.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


# -- PKCE -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pkce:
    """RFC 7636 §4.1-4.2: a fresh verifier and its S256 challenge."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


# -- the relying party's view of the server ---------------------------------------------------


@dataclass
class Provider:
    """OIDC discovery (OIDC Discovery §4) as a relying party reads it."""

    issuer: str
    metadata: dict[str, Any]
    # The server's clock: what "now" means for exp, iat and auth_time checks.
    clock: Callable[[], float] = time.time

    @classmethod
    def discover(cls, issuer: str, clock: Callable[[], float] = time.time) -> Provider:
        response = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
        assert response.status_code == 200, response.text
        metadata: dict[str, Any] = response.json()
        assert metadata["issuer"] == issuer
        return cls(issuer, metadata, clock)

    def endpoint(self, name: str) -> str:
        value = self.metadata.get(name)
        assert isinstance(value, str), f"discovery has no {name}"
        return value

    @property
    def authorization_endpoint(self) -> str:
        return self.endpoint("authorization_endpoint")

    @property
    def token_endpoint(self) -> str:
        return self.endpoint("token_endpoint")

    @property
    def userinfo_endpoint(self) -> str:
        return self.endpoint("userinfo_endpoint")

    @property
    def end_session_endpoint(self) -> str:
        return self.endpoint("end_session_endpoint")

    def jwks(self) -> dict[str, Any]:
        response = httpx.get(self.endpoint("jwks_uri"), timeout=10)
        assert response.status_code == 200, response.text
        keys: dict[str, Any] = response.json()
        return keys


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    secret: str | None
    redirect_uri: str
    auth_method: str = "client_secret_basic"
    post_logout_redirect_uri: str | None = None

    def token_request(self, form: Mapping[str, str]) -> dict[str, Any]:
        """httpx keyword arguments for a token request authenticated as this client."""
        data = dict(form)
        if self.auth_method == "none":
            data["client_id"] = self.client_id
            return {"data": data}
        assert self.secret is not None
        if self.auth_method == "client_secret_post":
            data.update(client_id=self.client_id, client_secret=self.secret)
            return {"data": data}
        return {"data": data, "auth": (self.client_id, self.secret)}


def check_id_token(
    provider: Provider,
    token: str,
    client_id: str,
    *,
    nonce: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The conformance suite's standard ID token checks (ValidateIdToken and neighbours).

    Signature with a key of the server's JWKS picked by ``kid``; ``iss`` equal to the discovered
    issuer; ``aud`` containing the client; ``exp`` in the future and in seconds; ``iat`` not in
    the future and at most 5 minutes old; ``auth_time`` not in the future; ``nonce`` as sent (and
    absent when none was sent); ``sub`` present.  Returns the claims.
    """
    now = provider.clock() if now is None else now
    keys = KeySet.import_key_set(cast(Any, provider.jwks()))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header.get("alg") != "none"
    assert header.get("kid") in {k.get("kid") for k in provider.jwks()["keys"]}, header
    algorithms = provider.metadata["id_token_signing_alg_values_supported"]
    assert header["alg"] in algorithms
    try:
        claims: dict[str, Any] = jwt.decode(token, keys, algorithms=algorithms).claims
    except JoseError as exc:  # pragma: no cover - the assertion message is the point
        raise AssertionError(f"ID token does not verify: {exc}") from exc
    assert claims["iss"] == provider.issuer
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert client_id in aud
    if len(aud) > 1:
        assert claims.get("azp") == client_id
    assert isinstance(claims["exp"], int)
    assert claims["exp"] > now
    assert claims["exp"] < now + 10 * 365 * 86400, "exp looks like milliseconds"
    assert isinstance(claims["iat"], int)
    assert now - 300 <= claims["iat"] <= now + 5
    if "auth_time" in claims:
        assert claims["auth_time"] <= now + 5
    assert isinstance(claims["sub"], str)
    assert claims["sub"]
    if nonce is None:
        assert "nonce" not in claims
    else:
        assert claims["nonce"] == nonce
    return claims


# -- the user agent -----------------------------------------------------------------------


@dataclass
class Authorization:
    """Where an authorization request ended: at the client (``callback``) or on a page."""

    pages: list[str]
    hops: list[int]
    callback: dict[str, str] | None = None
    location: str | None = None
    page: httpx.Response | None = None

    @property
    def code(self) -> str:
        assert self.callback is not None, self.page.text if self.page is not None else self
        assert "code" in self.callback, self.callback
        return self.callback["code"]

    @property
    def error(self) -> str:
        assert self.callback is not None, self.page.text if self.page is not None else self
        return self.callback["error"]


class UserAgent:
    """A browser without JavaScript: cookies, one redirect at a time, forms read from the page."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.http = httpx.Client(timeout=15, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def _own(self, url: str) -> bool:
        """True for a URL on the authorization server's origin."""
        mine, other = urlsplit(self.issuer), urlsplit(url)
        return (mine.scheme, mine.netloc) == (other.scheme, other.netloc)

    def submit(self, page: httpx.Response, form: Form, values: Mapping[str, str]) -> httpx.Response:
        action = urljoin(str(page.url), form.action or str(page.url))
        data = {**form.fields, **values}
        if form.method == "post":
            return self.http.post(action, data=data)
        return self.http.get(action, params=data)

    def authorize(
        self,
        endpoint: str,
        params: list[tuple[str, str]],
        *,
        username: str | None = USERNAME,
        password: str = PASSWORD,
        decision: str | None = "allow",
        method: str = "GET",
        stop_at: Callable[[httpx.Response], bool] | None = None,
    ) -> Authorization:
        """Send an authorization request and act as the user until the client gets the answer.

        The login form is filled with ``username``/``password`` (``username=None``: stop on it),
        the consent form answered with ``decision`` (``None``: stop on it).  Ends at the first
        redirect off the server (``callback``) or at a page the user cannot act on (``page``).
        """
        if method == "GET":
            response = self.http.get(endpoint, params=tuple(params))
        else:
            response = self.http.post(endpoint, data=dict(params))
        pages: list[str] = []
        hops: list[int] = []
        for _ in range(30):
            if stop_at is not None and stop_at(response):
                return Authorization(pages, hops, page=response)
            if response.is_redirect:
                hops.append(response.status_code)
                location = urljoin(str(response.url), response.headers["location"])
                if not self._own(location):
                    query = dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))
                    return Authorization(pages, hops, callback=query, location=location)
                response = self.http.get(location)
                continue
            forms = parse_forms(response.text) if response.status_code == 200 else []
            login = next((f for f in forms if "password" in f.inputs), None)
            consent = next((f for f in forms if any(n == "decision" for n, _ in f.buttons)), None)
            if login is not None and username is not None and "login" not in pages[-1:]:
                pages.append("login")
                response = self.submit(
                    response, login, {"username": username, "password": password}
                )
            elif consent is not None and decision is not None:
                pages.append("consent")
                response = self.submit(response, consent, {"decision": decision})
            else:
                if login is not None:
                    pages.append("login")
                elif consent is not None:
                    pages.append("consent")
                return Authorization(pages, hops, page=response)
        raise AssertionError("the authorization request did not end after 30 steps")


# -- what an authorization response must look like --------------------------------------------


def error_redirect(provider: Provider, auth: Authorization, state: str | None) -> str:
    """An error sent back to the client (RFC 6749 §4.1.2.1) with ``iss`` (RFC 9207); the code."""
    assert auth.callback is not None, auth.page.text if auth.page is not None else auth
    assert auth.location is not None
    assert "code" not in auth.callback
    assert auth.callback["iss"] == provider.issuer
    if state is not None:
        assert auth.callback["state"] == state
    return auth.callback["error"]


def error_page(auth: Authorization) -> httpx.Response:
    """An error shown to the user, never redirected (RFC 6749 §4.1.2.1, OAuth 2.1 §4.1.2.1)."""
    assert auth.callback is None, auth.location
    page = auth.page
    assert page is not None
    assert page.status_code == 400, (page.status_code, page.text[:300])
    assert "location" not in page.headers
    assert page.headers["content-type"].startswith("text/html")
    assert "Traceback" not in page.text
    return page


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT with ``alg: none`` (request objects and forged hints)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}."


def jwt_claims(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified (for tokens another check has verified)."""
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return claims


# -- registration through the CLI ---------------------------------------------------------------

_runner = CliRunner()


def sealring_cli(
    *args: str, environ: Mapping[str, str], stdin: str | None = None, as_json: bool = True
) -> dict[str, Any]:
    """Run ``sealring ARGS [--json]`` in-process as an operator would; its JSON output.

    ``environ`` is the server's environment (its ``SEALRING_KEK`` seals the server secret).
    """
    args_ = [*args, "--json"] if as_json else list(args)
    result = _runner.invoke(cli_app, args_, input=stdin, env=dict(environ))
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    out: dict[str, Any] = json.loads(result.stdout) if as_json else {}
    return out


@dataclass
class LoginWorld:
    """A live server with one user and the clients the login tests use."""

    issuer: str
    database_url: str
    environ: Mapping[str, str]
    clock: OffsetClock
    provider: Provider
    sub: str
    confidential: RegisteredClient
    second: RegisteredClient
    post_client: RegisteredClient
    public: RegisteredClient
    first_party: RegisteredClient

    def user_agent(self) -> Iterator[UserAgent]:
        agent = UserAgent(self.issuer)
        try:
            yield agent
        finally:
            agent.close()

    def create_client(self, **metadata: Any) -> RegisteredClient:
        """Register one more client (``register_client``'s keywords) in this world's database."""
        return register_client(self.database_url, environ=self.environ, **metadata)

    def cli(self, *args: str, as_json: bool = True) -> dict[str, Any]:
        """``sealring ARGS`` against this world's database."""
        return sealring_cli(
            *args, "--database", self.database_url, environ=self.environ, as_json=as_json
        )

    def create_user(self, username: str, password: str = PASSWORD) -> str:
        out = sealring_cli(
            "users", "create", "--username", username, "--password-stdin",
            "--database", self.database_url, environ=self.environ, stdin=password + "\n",
        )  # fmt: skip
        sub: str = out["sub"]
        return sub


def register_client(
    database_url: str,
    *,
    environ: Mapping[str, str],
    name: str,
    redirect_uris: list[str],
    public: bool = False,
    auth_method: str | None = None,
    scope: str = SCOPE,
    grant_types: str = "authorization_code,refresh_token",
    post_logout_redirect_uri: str | None = None,
    skip_consent: bool = False,
    id_token_alg: str | None = None,
) -> RegisteredClient:
    args = ["clients", "create", "--name", name, "--grant-types", grant_types, "--scope", scope]
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    if public:
        args.append("--public")
    if auth_method is not None:
        args += ["--auth-method", auth_method]
    if post_logout_redirect_uri is not None:
        args += ["--post-logout-redirect-uri", post_logout_redirect_uri]
    if skip_consent:
        args.append("--skip-consent")
    if id_token_alg is not None:
        args += ["--id-token-alg", id_token_alg]
    out = sealring_cli(*args, "--database", database_url, environ=environ)
    method = "none" if public else auth_method or "client_secret_basic"
    return RegisteredClient(
        out["client_id"],
        out.get("client_secret"),
        redirect_uris[0],
        method,
        post_logout_redirect_uri,
    )


def build_world(
    issuer: str, database_url: str, clock: OffsetClock, environ: Mapping[str, str] = ENVIRON
) -> LoginWorld:
    user = sealring_cli(
        "users", "create", "--username", USERNAME, "--password-stdin", "--email", EMAIL,
        "--name", FULL_NAME, "--database", database_url, environ=environ, stdin=PASSWORD + "\n",
    )  # fmt: skip

    def client(name: str, base: str, **kwargs: Any) -> RegisteredClient:
        return register_client(
            database_url,
            environ=environ,
            name=name,
            redirect_uris=[f"{base}/cb", f"{base}/cb2"],
            post_logout_redirect_uri=f"{base}/logged-out",
            **kwargs,
        )

    return LoginWorld(
        issuer=issuer,
        database_url=database_url,
        environ=environ,
        clock=clock,
        provider=Provider.discover(issuer, clock),
        sub=user["sub"],
        confidential=client("Relying Party", RP),
        second=client("Second Party", "https://second.example.test"),
        post_client=client(
            "Post Party", "https://post.example.test", auth_method="client_secret_post"
        ),
        public=client("Single Page App", SPA, public=True),
        first_party=client("First Party", "https://first.example.test", skip_consent=True),
    )


# -- one code flow, as the tests run it ---------------------------------------------------------


@dataclass
class Flow:
    """One authorization request and what came of it."""

    client: RegisteredClient
    pkce: Pkce
    state: str
    nonce: str | None
    authorization: Authorization
    params: list[tuple[str, str]]


def auth_params(
    client: RegisteredClient,
    pkce: Pkce,
    *,
    state: str,
    nonce: str | None,
    scope: str = "openid profile email",
    **extra: str | None,
) -> list[tuple[str, str]]:
    """An authorization request's parameters; a parameter given as None in ``extra`` is left out."""
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": scope,
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "nonce": nonce,
    }
    params.update(extra)
    return [(k, v) for k, v in params.items() if v is not None]


def start_flow(
    world: LoginWorld,
    agent: UserAgent,
    client: RegisteredClient,
    *,
    nonce: str | None = "n-0S6_WzA2Mj",
    method: str = "GET",
    username: str | None = USERNAME,
    password: str = PASSWORD,
    decision: str | None = "allow",
    **extra: Any,
) -> Flow:
    pkce = Pkce.new()
    state = secrets.token_urlsafe(16)
    nonce = None if nonce is None else f"{nonce}-{secrets.token_hex(4)}"
    params = auth_params(client, pkce, state=state, nonce=nonce, **extra)
    authorization = agent.authorize(
        world.provider.authorization_endpoint,
        params,
        username=username,
        password=password,
        decision=decision,
        method=method,
    )
    return Flow(client, pkce, state, nonce, authorization, params)


def redeem(world: LoginWorld, flow: Flow, **overrides: str | None) -> httpx.Response:
    """The token request for the flow's code (RFC 6749 §4.1.3); None in ``overrides`` omits."""
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": flow.authorization.code,
        "redirect_uri": flow.client.redirect_uri,
        "code_verifier": flow.pkce.verifier,
    }
    form.update(overrides)
    return token_request(world, flow.client, {k: v for k, v in form.items() if v is not None})


def token_request(
    world: LoginWorld, client: RegisteredClient, form: Mapping[str, str]
) -> httpx.Response:
    return httpx.post(world.provider.token_endpoint, timeout=15, **client.token_request(form))


def refresh(
    world: LoginWorld, client: RegisteredClient, refresh_token: str, **extra: str
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return token_request(world, client, form)


def userinfo(world: LoginWorld, access_token: str) -> httpx.Response:
    return httpx.get(
        world.provider.userinfo_endpoint,
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=15,
    )


def tokens(
    world: LoginWorld, agent: UserAgent, client: RegisteredClient, **extra: Any
) -> tuple[Flow, dict[str, Any]]:
    """A whole successful code flow; the flow and its checked token response."""
    flow = start_flow(world, agent, client, **extra)
    assert flow.authorization.callback is not None, flow.authorization
    assert flow.authorization.callback.get("state") == flow.state, flow.authorization.callback
    response = redeem(world, flow)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["token_type"].lower() == "bearer"
    if "id_token" in body:
        check_id_token(world.provider, body["id_token"], client.client_id, nonce=flow.nonce)
    return flow, body
