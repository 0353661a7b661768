"""Client authentication (RFC 6749 §2.3) at the token, introspection and revocation endpoints.

Methods (RFC 6749 §2.3, OIDC Core §9, RFC 7523 §2.2): ``client_secret_basic``,
``client_secret_post``, ``private_key_jwt`` and ``none`` (public clients).  A request uses exactly
one method (RFC 6749 §2.3: "MUST NOT use more than one"), and it must be the one the client is
registered with.  Every failure is ``invalid_client``; an unknown client, a wrong secret and a
wrong method share one description (and one HMAC computation), so a caller cannot tell them
apart.  Only faults of the assertion a caller sent itself (malformed, too long-lived, replayed)
are named.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote

import anyio.to_thread

from sealring.jose.algorithms import SUPPORTED_ALGORITHMS
from sealring.jose.errors import JoseError
from sealring.jose.jwks import KeySet
from sealring.jose.jws import parse_compact, select_key, verify_signature
from sealring.jose.jwt import decode_payload, validate_claims
from sealring.server.clients import SECRET_METHODS, Client, SecretHasher
from sealring.server.errors import InvalidClient, InvalidRequest

__all__ = [
    "ASSERTION_ALGORITHMS",
    "JWT_BEARER",
    "Admit",
    "AssertionJtis",
    "Blocking",
    "ClientAuthenticator",
    "ClientKeySets",
    "ClientLookup",
    "Credentials",
    "FormParameters",
    "extract_credentials",
]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Asymmetric only, as every algorithm of the JOSE layer: a client_secret_jwt (HMAC) assertion
# would need the secret in clear.
ASSERTION_ALGORITHMS = SUPPORTED_ALGORITHMS
ASSERTION_LEEWAY = 30.0
MAX_CLIENT_ID = 64


class FormParameters(Protocol):
    """The request's parameters (:class:`~sealring.server.http.forms.Form`)."""

    def get(self, name: str) -> str | None: ...


@dataclass(frozen=True)
class Credentials:
    """What a request presents, before anything is checked."""

    method: str
    client_id: str
    secret: str | None = field(default=None, repr=False)
    assertion: str | None = field(default=None, repr=False)


def _basic_value(header: str | None) -> str | None:
    """The credentials of an ``Authorization: Basic`` header; None for any other header.

    Another scheme is not client authentication (RFC 6749 §2.3): a client library that holds an
    access token may attach ``Authorization: Bearer`` to every request it sends, revocation
    included (requests-oauthlib's ``OAuth2Session`` does), and authenticate in the body.
    """
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value if scheme.lower() == "basic" else None


def _parse_basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise ValueError("no colon")
        if "%" not in decoded and "+" not in decoded:
            return client_id, secret  # nothing to decode (every generated id and secret)
        # RFC 6749 §2.3.1: both parts are form-urlencoded (UTF-8) before base64.
        return (
            unquote(client_id.replace("+", " "), errors="strict"),
            unquote(secret.replace("+", " "), errors="strict"),
        )
    except (binascii.Error, ValueError):
        raise InvalidClient("malformed Basic credentials") from None


def extract_credentials(
    authorization: str | Sequence[str] | None, form: FormParameters
) -> Credentials:
    """Identify the one authentication method the request uses (no checking of values).

    ``authorization`` is the request's ``Authorization`` header, or every one of them: two are
    refused, since a proxy and a client could each name a different client.
    """
    if not isinstance(authorization, str) and authorization is not None:
        if len(authorization) > 1:
            raise InvalidRequest("more than one Authorization header")
        authorization = authorization[0] if authorization else None
    form_id = form.get("client_id")
    form_secret = form.get("client_secret")
    assertion = form.get("client_assertion")
    assertion_type = form.get("client_assertion_type")
    basic = _basic_value(authorization)
    used = [basic is not None, form_secret is not None, assertion is not None]
    if sum(used) > 1:
        raise InvalidRequest("more than one client authentication method used")
    if basic is not None:
        client_id, secret = _parse_basic(basic)
        if form_id is not None and form_id != client_id:
            raise InvalidRequest("client_id does not match the authenticated client")
        creds = Credentials("client_secret_basic", client_id, secret=secret)
    elif form_secret is not None:
        if form_id is None:
            raise InvalidRequest("client_secret without client_id")
        creds = Credentials("client_secret_post", form_id, secret=form_secret)
    elif assertion is not None or assertion_type is not None:
        if assertion_type != JWT_BEARER:
            raise InvalidRequest(f"client_assertion_type must be {JWT_BEARER}")
        if assertion is None:
            raise InvalidRequest("client_assertion is missing")
        creds = Credentials("private_key_jwt", form_id or "", assertion=assertion)
    elif form_id is not None:
        creds = Credentials("none", form_id)
    else:
        raise InvalidClient("client authentication is required")
    if creds.client_id and not _possible_client_id(creds.client_id):
        raise InvalidClient()
    return creds


def _possible_client_id(value: str) -> bool:
    """At most 64 characters, none of them a control character.

    RFC 6749 Appendix A.1 allows only VSCHAR (%x20-7E); this server is more lenient with printable
    non-ASCII, but a NUL, a line break or any other control character names no client and must
    not reach a query: PostgreSQL refuses a NUL byte in a string with an error (a 500), where
    SQLite stores it.
    """
    return 0 < len(value) <= MAX_CLIENT_ID and value.isprintable()


class ClientLookup(Protocol):
    """Finds registered clients (:class:`~sealring.server.stores.clients.ClientCache`)."""

    def cached(self, client_id: str) -> tuple[bool, Client | None]: ...
    def get(self, client_id: str) -> Client | None: ...


class AssertionJtis(Protocol):
    """Single use of assertion ``jti`` values (:class:`~sealring.server.stores.assertion_jtis.JtiStore`)."""

    def use(self, client_id: str, jti: str, expires_at: float) -> bool: ...


class ClientKeySets(Protocol):
    """The key set behind a client's ``jwks_uri`` (:class:`~sealring.server.stores.client_keys.ClientJWKSFetcher`).

    Raises :class:`~sealring.server.errors.InvalidClient` when the keys cannot be had.
    """

    async def get(self, url: str, kid: str | None) -> KeySet: ...
    async def aclose(self) -> None: ...


T = TypeVar("T")


class Blocking(Protocol):
    """Runs a blocking store call off the event loop (the server's bounded database runner)."""

    async def __call__(self, fn: Callable[..., T], /, *args: Any) -> T: ...


async def _in_thread(fn: Callable[..., T], /, *args: Any) -> T:
    return await anyio.to_thread.run_sync(fn, *args)


# Called with the client id once the client is authenticated and before anything is recorded
# (the assertion's jti): a request it refuses (rate limit) leaves the assertion usable.
Admit = Callable[[str], Awaitable[None]]


class ClientAuthenticator:
    """Authenticate :class:`Credentials` against the registered client; return the client."""

    def __init__(
        self,
        *,
        clients: ClientLookup,
        hasher: SecretHasher,
        jtis: AssertionJtis,
        jwks_fetcher: ClientKeySets,
        issuer: str,
        token_endpoint: str,
        assertion_max_lifetime: float = 3600.0,
        token_endpoint_audience: bool = False,
        clock: Callable[[], float] = time.time,
        run: Blocking = _in_thread,
    ) -> None:
        self._run = run
        self._clients = clients
        self._hasher = hasher
        self._jtis = jtis
        self.jwks_fetcher = jwks_fetcher
        # draft-ietf-oauth-rfc7523bis §4: the issuer identifier and nothing else; the token
        # endpoint URL only behind the compatibility setting (CVE-2025-27370: an audience that
        # lists several parties lets one of them replay the assertion at another).
        self._audiences = (issuer, token_endpoint) if token_endpoint_audience else (issuer,)
        self._max_lifetime = assertion_max_lifetime
        self._clock = clock
        self._keysets: dict[str, KeySet] = {}  # parsed registered JWK Sets, by document text

    async def _client(self, client_id: str) -> Client | None:
        hit, client = self._clients.cached(client_id)
        if hit:
            return client
        return await self._run(self._clients.get, client_id)

    async def authenticate(
        self,
        creds: Credentials,
        *,
        endpoint: str,
        allow_public: bool = False,
        admit: Admit | None = None,
    ) -> Client:
        if creds.method == "private_key_jwt":
            return await self._assertion(creds, endpoint, admit)
        client = self._checked(creds, await self._client(creds.client_id), allow_public)
        if admit is not None:
            await admit(client.client_id)
        return client

    def authenticate_cached(
        self, creds: Credentials, *, allow_public: bool = False
    ) -> Client | None:
        """:meth:`authenticate` without I/O and without a rate limit, for a secret or public
        client found in the client cache; ``None`` when that cannot be decided without I/O (the
        client is not cached, or it authenticates with an assertion). Raises like
        :meth:`authenticate`."""
        if creds.method == "private_key_jwt":
            return None
        hit, client = self._clients.cached(creds.client_id)
        if not hit:
            return None
        return self._checked(creds, client, allow_public)

    def _checked(self, creds: Credentials, client: Client | None, allow_public: bool) -> Client:
        """``client`` (as looked up) if ``creds`` authenticate it by secret or as public."""
        if creds.method in SECRET_METHODS:
            assert creds.secret is not None
            ok = self._hasher.matches(creds.secret, client.secret_hash if client else None)
            if client is None or not ok or client.auth_method != creds.method:
                raise InvalidClient()
        # method "none": only a registered public client, only where public clients are allowed.
        elif client is None or not client.public or not allow_public:
            raise InvalidClient()
        return client

    async def _assertion(self, creds: Credentials, endpoint: str, admit: Admit | None) -> Client:
        """RFC 7523 §3, OIDC Core §9 and draft-ietf-oauth-rfc7523bis §4 checks on an assertion.

        ``aud`` must be a single string naming this server (an array is refused whatever it
        holds), and ``iat`` is required, not in the future and not older than the longest
        assertion lifetime allowed.  ``endpoint`` does not widen the audience: one assertion
        is good for one request at any of the three endpoints, and its ``jti`` is spent there.
        ``admit`` (the rate limit) runs before the ``jti`` is spent, so a refused request does
        not use up its assertion.
        """
        assert creds.assertion is not None
        try:
            jws = parse_compact(creds.assertion)
            unverified = decode_payload(jws)
        except JoseError as exc:
            raise InvalidClient("malformed client assertion") from exc
        client_id = unverified.get("sub")
        if not isinstance(client_id, str) or not _possible_client_id(client_id):
            raise InvalidClient("malformed client assertion")
        if creds.client_id and creds.client_id != client_id:
            raise InvalidClient()
        client = await self._client(client_id)
        if client is None or client.auth_method != "private_key_jwt":
            raise InvalidClient()
        keys = await self._keys_of(client, jws.kid)
        now = self._clock()
        try:
            key, alg = select_key(jws, keys, ASSERTION_ALGORITHMS)
            verify_signature(jws, key, alg)
            claims = decode_payload(jws)
            validate_claims(
                claims,
                now=now,
                leeway=ASSERTION_LEEWAY,
                issuer=client.client_id,
                required=("iss", "sub", "aud", "exp", "iat", "jti"),
            )
        except JoseError as exc:
            raise InvalidClient() from exc
        if not isinstance(claims["aud"], str) or claims["aud"] not in self._audiences:
            raise InvalidClient("client assertion audience must be the issuer identifier")
        exp = claims["exp"]
        iat = claims["iat"]
        jti = claims["jti"]
        assert isinstance(exp, int | float)
        assert isinstance(iat, int | float)
        if not math.isfinite(exp) or exp > now + self._max_lifetime + ASSERTION_LEEWAY:
            raise InvalidClient("client assertion lifetime too long")
        if iat < now - self._max_lifetime - ASSERTION_LEEWAY:
            raise InvalidClient("client assertion issued too long ago")
        if not isinstance(jti, str) or not jti or len(jti) > 255 or "\0" in jti:
            raise InvalidClient("malformed client assertion")
        if admit is not None:
            await admit(client.client_id)
        fresh = await self._run(
            self._jtis.use, client.client_id, jti, float(exp) + ASSERTION_LEEWAY
        )
        if not fresh:
            raise InvalidClient("client assertion already used")
        return client

    async def _keys_of(self, client: Client, kid: str | None) -> KeySet:
        if client.jwks is not None:
            keys = self._keysets.get(client.jwks)
            if keys is None:
                try:
                    keys = KeySet.from_json(client.jwks)
                except JoseError as exc:
                    raise InvalidClient() from exc
                if len(self._keysets) > 1000:
                    self._keysets.clear()
                self._keysets[client.jwks] = keys
            return keys
        assert client.jwks_uri is not None
        return await self.jwks_fetcher.get(client.jwks_uri, kid)
