"""OAuth clients: the value object, registration rules and secrets.

Client secrets are generated here (256 random bits, :func:`new_secret`) and stored only as
HMAC-SHA-256 keyed with the server secret (:class:`SecretHasher`).  A keyed fast hash is right for
random 256-bit secrets: nothing can be guessed, so a slow password hash would only add 100 ms to
every token request.  Where the server secret comes from: :mod:`sealring.server.stores.server_secret`.
The table and the lookup cache: :mod:`sealring.server.stores.clients`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from sealring.errors import SealringError
from sealring.server.protocol.redirect_uri import InvalidRedirectUri, check_redirect_uri
from sealring.server.protocol.scope import parse_scope
from sealring.urls import is_loopback_host

__all__ = [
    "AUTH_METHODS",
    "GRANT_TYPES",
    "ID_TOKEN_ALGORITHMS",
    "SECRET_METHODS",
    "Client",
    "ClientMetadataError",
    "Network",
    "SecretHasher",
    "address_allowed",
    "new_client",
    "new_client_id",
    "new_secret",
]

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
GRANT_TYPES = ("client_credentials", "authorization_code", "refresh_token")
USER_GRANT_TYPES = ("authorization_code", "refresh_token")
#: OIDC Registration §2 ``id_token_signed_response_alg``: what the key manager keeps keys for by
#: default (keys.schedule.DEFAULT_ALGORITHMS); ES256 unless the client asks for RS256.
ID_TOKEN_ALGORITHMS = ("ES256", "RS256")
MAX_SECRET_LENGTH = 512


class ClientMetadataError(SealringError):
    """Refused client registration data; the message names the field."""

    code = "invalid_client_metadata"
    usage = True


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    auth_method: str
    grant_types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    jwks: str | None = None
    jwks_uri: str | None = None
    created_at: float = 0.0
    secret_hash: bytes | None = field(default=None, repr=False)
    # RFC 7662 §4: may introspect tokens issued for one of its audiences (a resource server).
    introspect: bool = False
    # A first-party client: its users are not asked for consent (docs/login.md).
    skip_consent: bool = False
    # OpenID Connect RP-Initiated Logout §3.1: where /logout may send the browser afterwards.
    post_logout_redirect_uris: tuple[str, ...] = ()
    id_token_alg: str = "ES256"  # noqa: S105 - an algorithm name

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    @property
    def default_audience(self) -> str | None:
        return self.audiences[0] if self.audiences else None

    def describe(self) -> dict[str, object]:
        """Registration metadata for people and ``--json`` (RFC 7591 names; never the hash)."""
        return {
            "client_id": self.client_id,
            "client_name": self.name,
            "token_endpoint_auth_method": self.auth_method,
            "grant_types": list(self.grant_types),
            "scope": " ".join(self.scopes),
            "audiences": list(self.audiences),
            "redirect_uris": list(self.redirect_uris),
            "jwks_uri": self.jwks_uri,
            "has_jwks": self.jwks is not None,
            "public": self.public,
            "introspect": self.introspect,
            "skip_consent": self.skip_consent,
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "id_token_signed_response_alg": self.id_token_alg,
            "created_at": self.created_at,
        }


def new_client_id() -> str:
    """A client id: 128 random bits as 26 lower-case base32 letters and digits.

    Only letters and digits, so an id never starts with ``-`` (which a command line would read as
    an option) and needs no escaping in URLs, shells or Basic credentials.
    """
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def new_secret() -> str:
    """A client secret: 256 random bits, base64url (43 characters)."""
    return secrets.token_urlsafe(32)


class SecretHasher:
    """HMAC-SHA-256 under the server secret; comparison in constant time."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the server secret must be at least 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "SecretHasher(<hidden>)"

    def hash(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode("utf-8"), hashlib.sha256).digest()

    def matches(self, secret: str, expected: bytes | None) -> bool:
        # Always compute the HMAC so that "no secret on file", an over-long secret and a wrong
        # one take as long; an over-long secret is hashed as "" and never matches.
        too_long = len(secret) > MAX_SECRET_LENGTH
        digest = self.hash("" if too_long else secret)
        same = hmac.compare_digest(digest, expected or b"\0" * 32)
        return same and expected is not None and not too_long


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_allowed(address: str, allowed: Sequence[Network] = ()) -> bool:
    """Whether the server may connect to ``address`` for a client's ``jwks_uri`` (SSRF guard).

    Only globally routable unicast addresses, unless ``allowed`` (the
    ``jwks_uri_allowed_networks`` setting) names the network.  An IPv4-mapped IPv6 address is
    judged as the IPv4 address it carries.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allowed):
        return True
    return ip.is_global and not ip.is_multicast


def _check_jwks_host(url: str, allowed: Sequence[Network]) -> None:
    """Registration: the host, or every address its name resolves to now, must be allowed.

    A name that does not resolve at all is accepted here; the connect-time check
    (:class:`~sealring.server.stores.client_keys.ClientJWKSFetcher`) decides when it does.
    """
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        addresses = [host]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            infos = []
        addresses = [str(info[4][0]) for info in infos]
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            addresses.append("127.0.0.1")
    for address in addresses:
        if not address_allowed(address, allowed):
            raise ClientMetadataError(
                f"JWK Set URL {url!r}: {address} is not a public address "
                "(jwks_uri_allowed_networks can allow a network)"
            )


def _split(value: str) -> SplitResult | None:
    """``value`` split into its parts, or None when its authority is malformed: an unbalanced
    ``[`` or a port that is not a number up to 65535 (``urlsplit`` and ``port`` raise), or port
    0, which no server listens on."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    return None if port == 0 else parts


def _check_uri(value: str, what: str, *, allow_http_loopback: bool = True) -> str:
    parts = _split(value)
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.fragment
    ):
        raise ClientMetadataError(
            f"{what} {value!r} is not an absolute http(s) URI without fragment"
        )
    if parts.scheme == "http" and not (
        allow_http_loopback and parts.hostname is not None and is_loopback_host(parts.hostname)
    ):
        raise ClientMetadataError(f"{what} {value!r} must use https (http only for loopback)")
    return value


def _check_redirect_uri(uri: str, what: str, *, public: bool) -> str:
    """docs/login.md "Redirect URI registration": https; http only on a loopback IP literal
    (any port for a public, native client; exactly as registered for a confidential one, whose
    code is useless without its credentials); a reverse-domain private-use scheme for a public
    client."""
    try:
        return check_redirect_uri(uri, native=public)
    except InvalidRedirectUri as exc:
        reason = exc.message
    if not public and uri.startswith("http://"):
        try:
            return check_redirect_uri(uri, native=True)
        except InvalidRedirectUri:
            reason = "must use https (http only on a loopback IP: 127.0.0.1 or [::1])"
    raise ClientMetadataError(f"{what} {uri!r}: {reason}")


def new_client(
    *,
    name: str,
    grant_types: Sequence[str] | None = None,
    scope: str = "",
    audiences: Iterable[str] = (),
    redirect_uris: Iterable[str] = (),
    public: bool = False,
    auth_method: str | None = None,
    jwks: str | None = None,
    jwks_uri: str | None = None,
    now: float | None = None,
    check_jwks: Callable[[str], None] | None = None,
    introspect: bool = False,
    jwks_uri_networks: Sequence[Network] = (),
    skip_consent: bool = False,
    post_logout_redirect_uris: Iterable[str] = (),
    id_token_alg: str = "ES256",  # noqa: S107 - an algorithm name
) -> Client:
    """Check registration data and build a client (without a secret; see :func:`new_secret`)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ClientMetadataError("name must be 1 to 200 characters")
    if auth_method is None:
        auth_method = (
            "none" if public else "private_key_jwt" if (jwks or jwks_uri) else "client_secret_basic"
        )
    if auth_method not in AUTH_METHODS:
        raise ClientMetadataError(f"auth method must be one of {', '.join(AUTH_METHODS)}")
    if public != (auth_method == "none"):
        raise ClientMetadataError(
            "a public client uses auth method 'none', and only a public client does"
        )
    redirect_uris = tuple(redirect_uris)
    if grant_types is None:
        # A public client with a redirect URI is an app users sign in to.
        grant_types = (
            ("client_credentials",) if not public else USER_GRANT_TYPES if redirect_uris else ()
        )
    grants = tuple(dict.fromkeys(g.strip() for g in grant_types if g.strip()))
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise ClientMetadataError(
                f"grant type {grant!r} is not supported (supported: {', '.join(GRANT_TYPES)})"
            )
    if public and "client_credentials" in grants:
        raise ClientMetadataError(
            "client_credentials is for confidential clients only (RFC 6749 §4.4)"
        )
    try:
        scopes = parse_scope(scope)
    except ValueError:
        raise ClientMetadataError(
            f"scope {scope!r} is not a space-separated list of scope tokens"
        ) from None
    auds = tuple(dict.fromkeys(audiences))
    for aud in auds:
        if not aud or any(c.isspace() for c in aud) or "#" in aud or len(aud) > 500:
            raise ClientMetadataError(
                f"audience {aud!r} must be a non-empty string without spaces or '#'"
            )
    uris = tuple(
        _check_redirect_uri(u, "redirect URI", public=public) for u in dict.fromkeys(redirect_uris)
    )
    if "authorization_code" in grants and not uris:
        raise ClientMetadataError("the authorization_code grant needs at least one redirect URI")
    if "refresh_token" in grants and "authorization_code" not in grants:
        raise ClientMetadataError("refresh_token is only issued with authorization_code")
    logout_uris = tuple(
        _check_redirect_uri(u, "post-logout redirect URI", public=public)
        for u in dict.fromkeys(post_logout_redirect_uris)
    )
    if id_token_alg not in ID_TOKEN_ALGORITHMS:
        raise ClientMetadataError(
            f"id_token_signed_response_alg must be one of {', '.join(ID_TOKEN_ALGORITHMS)}"
        )
    if jwks is not None and jwks_uri is not None:
        raise ClientMetadataError("give either a JWK Set or a JWK Set URL, not both")
    if auth_method == "private_key_jwt":
        if jwks is None and jwks_uri is None:
            raise ClientMetadataError(
                "private_key_jwt needs the client's public keys (--jwks or --jwks-uri)"
            )
    elif jwks is not None or jwks_uri is not None:
        raise ClientMetadataError("public keys are only used with auth method private_key_jwt")
    if introspect and (public or not auds):
        raise ClientMetadataError(
            "the introspect permission needs a confidential client with at least one audience"
        )
    if jwks_uri is not None:
        _check_uri(jwks_uri, "JWK Set URL")
        _check_jwks_host(jwks_uri, jwks_uri_networks)
    if jwks is not None and check_jwks is not None:
        check_jwks(jwks)
    return Client(
        client_id=new_client_id(),
        name=name,
        auth_method=auth_method,
        grant_types=grants,
        scopes=scopes,
        audiences=auds,
        redirect_uris=uris,
        jwks=jwks,
        jwks_uri=jwks_uri,
        created_at=time.time() if now is None else now,
        introspect=introspect,
        skip_consent=skip_consent,
        post_logout_redirect_uris=logout_uris,
        id_token_alg=id_token_alg,
    )
