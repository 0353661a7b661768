"""The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1) as a checked value.

:func:`validate_authorization_request` takes the parameters of ``/authorize`` (query or form, as
received, repeats included) and the client they name, and returns one of three results:

* :class:`ShowErrorPage`: the client or the redirect URI could not be trusted, so the error is
  shown to the user and never sent to a URI taken from the request (RFC 6749 §4.1.2.1, RFC 9700
  §4.11).
* :class:`RedirectError`: the redirect URI is known good; the error goes back to the client with
  ``state`` and ``iss`` (RFC 6749 §4.1.2.1, RFC 9207 §2).
* :class:`Accepted`: an :class:`AuthorizationRequest` ready for login and consent.

The order of the checks is the order of that routing: ``client_id``, then ``redirect_uri``, then
everything else.  Choices made here (docs/login.md, "Building blocks"):

* ``response_type=code`` only.  ``token``, ``id_token`` and hybrid types are
  ``unsupported_response_type`` (RFC 9700 §2.1.2; OAuth 2.1 drops the implicit grant).
* ``response_mode`` absent or ``query`` only; the error for another mode is sent in the query.
* PKCE ``S256`` is required from every client (:mod:`sealring.server.protocol.pkce`).
* ``scope`` is required.  Scopes the client is not registered for are dropped (RFC 6749 §3.3
  lets the server narrow the request); ``openid`` requested by a client not allowed it, or
  nothing left after narrowing, is ``invalid_scope``.  ``offline_access`` is kept here: whether a
  refresh token is issued is the consent step's decision (OIDC Core §11).
* ``nonce`` is optional: OIDC Core §3.1.2.1 requires it only for the implicit and hybrid flows.
* ``redirect_uri`` may be omitted only by a client with exactly one registered URI and only in a
  plain OAuth request; OIDC Core §3.1.2.1 makes it REQUIRED when ``scope`` contains ``openid``.
* Every parameter may appear once (RFC 6749 §3.1); an empty value counts as absent.  Unknown
  parameters are ignored (RFC 6749 §3.1).
* ``request`` and ``request_uri`` are refused with ``request_not_supported`` and
  ``request_uri_not_supported`` (OIDC Core §6; advertise both as unsupported).
* ``claims`` (OIDC Core §5.5) is not read yet, so it is ignored like an unknown parameter.
* ``id_token_hint`` is only checked to be a JWS; its signature, issuer and subject are checked
  by the step that has the keys and the session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeAlias
from urllib.parse import quote

from sealring.jose.errors import JoseError
from sealring.jose.jws import parse_compact
from sealring.jose.jwt import decode_payload
from sealring.server.errors import (
    InvalidRequest,
    InvalidScope,
    OAuthError,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from sealring.server.protocol.pkce import S256, check_code_challenge
from sealring.server.protocol.redirect_uri import match_redirect_uri
from sealring.server.protocol.scope import parse_scope

__all__ = [
    "DISPLAY_VALUES",
    "PROMPT_VALUES",
    "Accepted",
    "AuthorizationOutcome",
    "AuthorizationRequest",
    "ClientRedirect",
    "RedirectError",
    "RegisteredClient",
    "ShowErrorPage",
    "requested_client_id",
    "validate_authorization_request",
]

PROMPT_VALUES: Final = frozenset({"none", "login", "consent", "select_account"})
DISPLAY_VALUES: Final = frozenset({"page", "popup", "touch", "wap"})

MAX_STATE_LENGTH: Final = 2048
MAX_NONCE_LENGTH: Final = 1024
MAX_HINT_LENGTH: Final = 512
MAX_LIST_LENGTH: Final = 512
MAX_SCOPE_LENGTH: Final = 2048
MAX_ID_TOKEN_HINT_LENGTH: Final = 16 * 1024
MAX_AGE_LIMIT: Final = 2**31 - 1

# RFC 6749 Appendix A.5: state = 1*VSCHAR, VSCHAR = %x20-7E.
_VSCHAR: Final = re.compile(r"[\x20-\x7e]+\Z")
# A hint or nonce: any text without control characters.
_TEXT: Final = re.compile(r"[^\x00-\x1f\x7f]+\Z")
_DIGITS: Final = re.compile(r"[0-9]{1,10}\Z")
# RFC 6749 §4.1.2.1: error_description = %x20-21 / %x23-5B / %x5D-7E.
_NOT_DESCRIPTION: Final = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_PARAMETER_NAME: Final = re.compile(r"[a-z_]{1,40}\Z")


class RegisteredClient(Protocol):
    """What the validator reads of a client (:class:`sealring.server.clients.Client` fits).

    A public client is treated as a native app for the loopback port rule: RFC 8252 §8.4 makes
    native apps public clients, and Sealring has no ``application_type`` yet.
    """

    @property
    def client_id(self) -> str: ...
    @property
    def redirect_uris(self) -> tuple[str, ...]: ...
    @property
    def scopes(self) -> tuple[str, ...]: ...
    @property
    def grant_types(self) -> tuple[str, ...]: ...
    @property
    def public(self) -> bool: ...


@dataclass(frozen=True)
class ClientRedirect:
    """Where and how an authorization response goes (RFC 6749 §4.1.2, RFC 9207 §2).

    Parameters are added to the query of the redirect URI, keeping any query it was registered
    with (OAuth 2.1 §Client Redirection Endpoint); ``state`` is echoed when the request had a
    valid one, and ``iss`` is always present, errors included.
    """

    redirect_uri: str
    state: str | None
    issuer: str

    def _location(self, params: list[tuple[str, str]]) -> str:
        if self.state is not None:
            params.append(("state", self.state))
        params.append(("iss", self.issuer))
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
        uri = self.redirect_uri
        if "#" in uri:  # registration refuses fragments; never build a URI that hides params
            raise ValueError("a redirect URI must not have a fragment")
        if "?" not in uri:
            return f"{uri}?{query}"
        return f"{uri}{query}" if uri.endswith(("?", "&")) else f"{uri}&{query}"

    def with_code(self, code: str) -> str:
        """RFC 6749 §4.1.2: the success response."""
        return self._location([("code", code)])

    def with_error(self, error: OAuthError) -> str:
        """RFC 6749 §4.1.2.1: the error response; the description is cut to its allowed set."""
        params: list[tuple[str, str]] = [("error", error.error)]
        description = _NOT_DESCRIPTION.sub("", error.description)
        if description:
            params.append(("error_description", description))
        return self._location(params)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked authorization request: what login, consent and the code are bound to."""

    client_id: str
    redirect_uri: str
    #: RFC 6749 §4.1.3: the token request must repeat ``redirect_uri`` if the request had it.
    redirect_uri_in_request: bool
    scopes: tuple[str, ...]
    code_challenge: str
    code_challenge_method: str
    issuer: str
    state: str | None = None
    nonce: str | None = None
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    login_hint: str | None = None
    id_token_hint: str | None = None
    display: str | None = None
    ui_locales: tuple[str, ...] = ()
    claims_locales: tuple[str, ...] = ()
    acr_values: tuple[str, ...] = ()
    response_type: str = "code"
    response_mode: str = "query"
    #: Scopes the client asked for but is not registered for (dropped, RFC 6749 §3.3).
    dropped_scopes: tuple[str, ...] = field(default=())

    @property
    def openid(self) -> bool:
        """OIDC Core §3.1.2.1: an OpenID Connect request has ``openid`` in its scope."""
        return "openid" in self.scopes

    @property
    def redirect(self) -> ClientRedirect:
        return ClientRedirect(self.redirect_uri, self.state, self.issuer)


@dataclass(frozen=True)
class Accepted:
    request: AuthorizationRequest


@dataclass(frozen=True)
class RedirectError:
    """An error to send to the client's (validated) redirect URI."""

    error: OAuthError
    redirect: ClientRedirect

    @property
    def location(self) -> str:
        return self.redirect.with_error(self.error)


@dataclass(frozen=True)
class ShowErrorPage:
    """An error about the client or redirect URI: shown to the user, never redirected."""

    error: OAuthError


AuthorizationOutcome: TypeAlias = Accepted | RedirectError | ShowErrorPage


class _Params:
    """The request parameters: RFC 6749 §3.1's "at most once", empty meaning absent."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in items:
            self._values.setdefault(name, []).append(value)

    def repeated(self, name: str) -> bool:
        return len(self._values.get(name, ())) > 1

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        if not values:
            return None
        if len(values) > 1:
            shown = name if _PARAMETER_NAME.match(name) else "a parameter"
            raise InvalidRequest(f"{shown} is repeated")
        return values[0] or None

    def every(self, name: str) -> list[str]:
        return list(self._values.get(name, ()))

    def repeated_names(self) -> list[str]:
        return [name for name, values in self._values.items() if len(values) > 1]


def requested_client_id(params: Sequence[tuple[str, str]]) -> str | None:
    """The ``client_id`` to look the client up by; None when missing or repeated."""
    values = [v for k, v in params if k == "client_id"]
    return values[0] if len(values) == 1 and values[0] else None


def _mentions_openid(params: _Params) -> bool:
    # Read before the redirect URI is trusted, to decide whether it may be omitted; a repeated
    # scope counts as mentioning openid if any copy does, which only makes the rule stricter.
    return any("openid" in v.split(" ") for v in params.every("scope"))


def _resolve_redirect(params: _Params, client: RegisteredClient) -> tuple[str, bool]:
    """RFC 6749 §3.1.2.3 and §4.1.2.1, OIDC Core §3.1.2.1; errors here go on a page."""
    requested = params.get("redirect_uri")
    if requested is not None:
        matched = match_redirect_uri(requested, client.redirect_uris, native=client.public)
        if matched is None:
            raise InvalidRequest("redirect_uri does not match a URI registered for this client")
        return matched, True
    if _mentions_openid(params):
        raise InvalidRequest("redirect_uri is required in an OpenID Connect request")
    if len(client.redirect_uris) != 1:
        raise InvalidRequest(
            "redirect_uri is required: the client has no single registered redirect URI"
        )
    return client.redirect_uris[0], False


def _text(params: _Params, name: str, limit: int, pattern: re.Pattern[str]) -> str | None:
    value = params.get(name)
    if value is not None and (len(value) > limit or not pattern.match(value)):
        raise InvalidRequest(f"{name} is too long or has characters it may not have")
    return value


def _tokens(params: _Params, name: str) -> tuple[str, ...]:
    value = _text(params, name, MAX_LIST_LENGTH, _VSCHAR)
    return tuple(dict.fromkeys(value.split())) if value else ()


def _scopes(value: str | None, client: RegisteredClient) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if value is None:
        raise InvalidScope("scope is required")
    if len(value) > MAX_SCOPE_LENGTH:
        raise InvalidScope("scope is too long")
    try:
        if "" in value.split(" "):
            raise ValueError("empty scope token")
        requested = parse_scope(value)
    except ValueError:
        raise InvalidScope("scope is not a space-separated list of scope tokens") from None
    allowed = set(client.scopes)
    if "openid" in requested and "openid" not in allowed:
        raise InvalidScope("this client may not use OpenID Connect (scope openid)")
    granted = tuple(s for s in requested if s in allowed)
    if not granted:
        raise InvalidScope("none of the requested scopes is allowed for this client")
    return granted, tuple(s for s in requested if s not in allowed)


def _prompt(value: str | None) -> frozenset[str]:
    """OIDC Core §3.1.2.1: a set of known values; ``none`` only on its own."""
    if value is None:
        return frozenset()
    values = frozenset(value.split())
    if not values <= PROMPT_VALUES:
        raise InvalidRequest("prompt has a value other than none, login, consent, select_account")
    if "none" in values and len(values) > 1:
        raise InvalidRequest("prompt=none cannot be combined with another prompt value")
    return values


def _max_age(value: str | None) -> int | None:
    """OIDC Core §3.1.2.1: a non-negative number of seconds (0 forces a new login)."""
    if value is None:
        return None
    if not _DIGITS.match(value) or int(value) > MAX_AGE_LIMIT:
        raise InvalidRequest("max_age must be a non-negative integer number of seconds")
    return int(value)


def _id_token_hint(value: str | None) -> str | None:
    """OIDC Core §3.1.2.1: parsed as a JWS with a JSON payload here, verified later."""
    if value is None:
        return None
    try:
        if len(value) > MAX_ID_TOKEN_HINT_LENGTH:
            raise JoseError("too long")
        decode_payload(parse_compact(value))
    except JoseError:
        raise InvalidRequest("id_token_hint is not an ID token") from None
    return value


def _check(
    params: _Params,
    client: RegisteredClient,
    redirect_uri: str,
    given: bool,
    issuer: str,
    state: str | None,
) -> AuthorizationRequest:
    for name in params.repeated_names():
        params.get(name)  # raises invalid_request naming it
    if params.get("request") is not None:
        raise RequestNotSupported("request objects are not supported")
    if params.get("request_uri") is not None:
        raise RequestUriNotSupported("request_uri is not supported")
    mode = params.get("response_mode")
    if mode not in (None, "query"):
        raise InvalidRequest("response_mode must be query")
    response_type = params.get("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the authorization_code grant")
    scopes, dropped = _scopes(params.get("scope"), client)
    challenge = check_code_challenge(
        params.get("code_challenge"), params.get("code_challenge_method")
    )
    display = params.get("display")
    if display is not None and display not in DISPLAY_VALUES:
        raise InvalidRequest("display must be page, popup, touch or wap")
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        redirect_uri_in_request=given,
        scopes=scopes,
        code_challenge=challenge,
        code_challenge_method=S256,
        issuer=issuer,
        state=state,
        nonce=_text(params, "nonce", MAX_NONCE_LENGTH, _TEXT),
        prompt=_prompt(params.get("prompt")),
        max_age=_max_age(params.get("max_age")),
        login_hint=_text(params, "login_hint", MAX_HINT_LENGTH, _TEXT),
        id_token_hint=_id_token_hint(params.get("id_token_hint")),
        display=display,
        ui_locales=_tokens(params, "ui_locales"),
        claims_locales=_tokens(params, "claims_locales"),
        acr_values=_tokens(params, "acr_values"),
        dropped_scopes=dropped,
    )


def validate_authorization_request(
    params: Sequence[tuple[str, str]],
    client: RegisteredClient | None,
    *,
    issuer: str,
) -> AuthorizationOutcome:
    """Check an authorization request; see the module docstring for the routing of errors.

    ``client`` is the client registered under :func:`requested_client_id` (None if there is
    none); ``issuer`` is the server's issuer identifier, sent back as ``iss`` (RFC 9207).
    """
    p = _Params(params)
    try:
        client_id = p.get("client_id")
        if client_id is None:
            raise InvalidRequest("client_id is required")
        if client is None or client.client_id != client_id:
            raise InvalidRequest("client_id is not a registered client")
        redirect_uri, given = _resolve_redirect(p, client)
    except OAuthError as exc:
        return ShowErrorPage(exc)
    state: str | None = None
    if not p.repeated("state"):
        raw = p.get("state")
        if raw is not None and len(raw) <= MAX_STATE_LENGTH and _VSCHAR.match(raw):
            state = raw
    redirect = ClientRedirect(redirect_uri, state, issuer)
    try:
        if p.get("state") is not None and state is None:
            raise InvalidRequest("state is too long or not printable ASCII")
        return Accepted(_check(p, client, redirect_uri, given, issuer, state))
    except OAuthError as exc:
        return RedirectError(exc, redirect)
