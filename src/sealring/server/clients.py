"""OAuth clients: the value object, their secrets, the database repository and a lookup cache.

Client secrets are generated here (256 random bits, :func:`new_secret`) and stored only as
HMAC-SHA-256 keyed with the server secret.  A keyed fast hash is right for random 256-bit secrets:
nothing can be guessed, so a slow password hash would only add 100 ms to every token request.
The server secret comes from ``SEALRING_SERVER_SECRET`` / ``SEALRING_SERVER_SECRET_FILE`` or,
when neither is set, is generated once and kept in the ``oauth_server_secret`` table
(docs/server.md, "Client secrets").
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealring.errors import SealringError
from sealring.server.models import ClientRow, ServerSecret

__all__ = [
    "AUTH_METHODS",
    "GRANT_TYPES",
    "Client",
    "ClientCache",
    "ClientMetadataError",
    "ClientRepository",
    "SecretHasher",
    "load_server_secret",
    "new_client",
    "new_secret",
]

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
# Only client_credentials is served; a client registered for nothing else is a public client.
GRANT_TYPES = ("client_credentials",)
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
MAX_SECRET_LENGTH = 512


class ClientMetadataError(SealringError):
    """Refused client registration data; the message names the field."""

    code = "invalid_client_metadata"


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
        # Always compute the HMAC so that "no secret on file" and "wrong secret" take as long.
        if len(secret) > MAX_SECRET_LENGTH:
            secret = ""
        digest = self.hash(secret)
        return hmac.compare_digest(digest, expected or b"\0" * 32) and expected is not None


def _check_uri(value: str, what: str, *, allow_http_loopback: bool = True) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise ClientMetadataError(
            f"{what} {value!r} is not an absolute http(s) URI without fragment"
        )
    if parts.scheme == "http" and not (
        allow_http_loopback and parts.hostname in ("localhost", "127.0.0.1", "::1")
    ):
        raise ClientMetadataError(f"{what} {value!r} must use https (http only for loopback)")
    return value


def parse_scope(text: str) -> tuple[str, ...]:
    """Split and check a space-delimited scope string (RFC 6749 §3.3); order kept, no repeats."""
    tokens = text.split(" ") if text else []
    out: list[str] = []
    for token in tokens:
        if not token:
            continue
        if not _SCOPE_TOKEN.fullmatch(token):
            raise ValueError("invalid scope token")
        if token not in out:
            out.append(token)
    return tuple(out)


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
    if grant_types is None:
        grant_types = () if public else GRANT_TYPES
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
    uris = tuple(_check_uri(u, "redirect URI") for u in dict.fromkeys(redirect_uris))
    if jwks is not None and jwks_uri is not None:
        raise ClientMetadataError("give either a JWK Set or a JWK Set URL, not both")
    if auth_method == "private_key_jwt":
        if jwks is None and jwks_uri is None:
            raise ClientMetadataError(
                "private_key_jwt needs the client's public keys (--jwks or --jwks-uri)"
            )
    elif jwks is not None or jwks_uri is not None:
        raise ClientMetadataError("public keys are only used with auth method private_key_jwt")
    if jwks_uri is not None:
        _check_uri(jwks_uri, "JWK Set URL")
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
    )


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


def _to_client(row: ClientRow) -> Client:
    return Client(
        client_id=row.client_id,
        name=row.name,
        auth_method=row.auth_method,
        grant_types=_split(row.grant_types),
        scopes=_split(row.scope),
        audiences=_split(row.audiences),
        redirect_uris=_split(row.redirect_uris),
        jwks=row.jwks,
        jwks_uri=row.jwks_uri,
        created_at=row.created_at,
        secret_hash=row.secret_hash,
    )


class ClientRepository:
    """Clients in the database (synchronous; the server calls it from a worker thread)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def get(self, client_id: str) -> Client | None:
        with Session(self._engine) as session:
            row = session.get(ClientRow, client_id)
            return _to_client(row) if row is not None else None

    def list(self) -> list[Client]:
        with Session(self._engine) as session:
            rows = session.scalars(
                select(ClientRow).order_by(ClientRow.created_at, ClientRow.client_id)
            )
            return [_to_client(r) for r in rows]

    def add(self, client: Client, secret_hash: bytes | None) -> Client:
        now = self._clock()
        created = client.created_at or now
        row = ClientRow(
            client_id=client.client_id,
            name=client.name,
            secret_hash=secret_hash,
            auth_method=client.auth_method,
            grant_types=" ".join(client.grant_types),
            scope=" ".join(client.scopes),
            audiences=" ".join(client.audiences),
            redirect_uris=" ".join(client.redirect_uris),
            jwks=client.jwks,
            jwks_uri=client.jwks_uri,
            public=client.public,
            created_at=created,
            updated_at=now,
        )
        with Session(self._engine) as session, session.begin():
            session.add(row)
        return dataclasses.replace(client, created_at=created, secret_hash=secret_hash)

    def delete(self, client_id: str) -> bool:
        with Session(self._engine) as session, session.begin():
            result = session.execute(delete(ClientRow).where(ClientRow.client_id == client_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_secret_hash(self, client_id: str, secret_hash: bytes) -> bool:
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                update(ClientRow)
                .where(ClientRow.client_id == client_id)
                .values(secret_hash=secret_hash, updated_at=self._clock())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


class ClientCache:
    """Client lookups cached in memory for ``ttl`` seconds (default 5 s), misses included.

    A deletion or secret rotation made through another process is seen by this one within
    ``ttl``.  At most ``max_entries`` are kept (oldest evicted first), so a flood of unknown
    client ids cannot grow memory.
    """

    def __init__(
        self,
        repository: ClientRepository,
        *,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Client | None]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, client_id: str) -> tuple[bool, Client | None]:
        """``(hit, client)`` without touching the database."""
        entry = self._entries.get(client_id)
        if entry is None or entry[0] <= self._clock():
            return False, None
        return True, entry[1]

    def get(self, client_id: str) -> Client | None:
        hit, client = self.cached(client_id)
        if hit:
            return client
        client = self._repository.get(client_id)
        if self._ttl > 0:
            with self._lock:
                self._entries[client_id] = (self._clock() + self._ttl, client)
                self._entries.move_to_end(client_id)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return client

    def invalidate(self, client_id: str | None = None) -> None:
        with self._lock:
            if client_id is None:
                self._entries.clear()
            else:
                self._entries.pop(client_id, None)


def load_server_secret(
    engine: Engine, configured: bytes | None, *, clock: Callable[[], float] = time.time
) -> bytes:
    """The configured server secret, else the one in the database, created on first use."""
    if configured is not None:
        return configured
    with Session(engine) as session:
        row = session.get(ServerSecret, 1)
        if row is not None:
            return row.secret
    try:
        with Session(engine) as session, session.begin():
            session.add(ServerSecret(id=1, secret=secrets.token_bytes(32), created_at=clock()))
    except IntegrityError:
        pass  # another replica created it first; use theirs
    with Session(engine) as session:
        row = session.get(ServerSecret, 1)
        assert row is not None
        return row.secret
