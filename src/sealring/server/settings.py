"""Server settings: one checked, immutable value object, each setting declared once.

Sources, later ones winning: built-in defaults, an optional TOML file (``--config`` or
``SEALRING_CONFIG``), ``SEALRING_*`` environment variables, command-line options.  Every value is
parsed and checked once, at start; the first bad one raises :class:`SettingsError` with one
message naming the setting, where it came from and what is allowed.

Each field of :class:`Settings` is declared by :func:`setting` with its default, its parser, its
section and its help text; :func:`describe_settings` lists them (name, environment variable, CLI
option, default, type, help, section) for documentation (scripts/gen_docs.py writes
docs/configuration.md from it).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from sealring.db import DatabaseConfigError, normalise_url
from sealring.errors import SealringError
from sealring.jose.algorithms import SUPPORTED_ALGORITHMS
from sealring.jose.jwks import DEFAULT_MAX_KEYS as MAX_JWKS_KEYS
from sealring.keys import DEFAULT_DATABASE_URL, RotationPolicy
from sealring.keys.schedule import DEFAULT_ALGORITHMS, followable_prepublication, unfollowable
from sealring.server.routes import endpoint_url
from sealring.urls import is_loopback_host

__all__ = [
    "SECTIONS",
    "Section",
    "SettingField",
    "Settings",
    "SettingsError",
    "describe_settings",
    "setting",
]

RESOLVED_ENV = "SEALRING_RESOLVED_SETTINGS"  # the source named by from_json
ENV_PREFIX = "SEALRING_"

Section = Literal["http", "storage", "tokens", "keys", "limits", "security", "sessions"]
#: The sections, in documentation order, with what each groups.
SECTIONS: Mapping[Section, str] = {
    "http": "serving HTTP",
    "storage": "the database and shared state",
    "tokens": "what the token endpoint issues and accepts",
    "keys": "signing keys and their rotation (docs/keys.md)",
    "limits": "rate limits, caches and size caps",
    "security": "compatibility switches and allow-lists that relax a default (docs/security.md)",
    "sessions": "browser sessions of user login",
}

T = TypeVar("T")


class SettingsError(SealringError):
    code = "invalid_settings"
    usage = True


def _int(lo: int, hi: int) -> Callable[[object], int]:
    def parse(raw: object) -> int:
        if isinstance(raw, bool):
            raise ValueError
        value = int(raw) if isinstance(raw, int | str) else None
        if value is None or not lo <= value <= hi:
            raise ValueError
        return value

    parse.__doc__ = f"an integer from {lo} to {hi}"
    return parse


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, which containers' cpusets set)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _workers(raw: object) -> int:
    """an integer from 1 to 64, or auto (one per usable CPU core, at most 64)"""
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        return max(1, min(usable_cores(), 64))
    return _int(1, 64)(raw)


def _float(lo: float, hi: float) -> Callable[[object], float]:
    def parse(raw: object) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise ValueError
        value = float(raw)
        if not lo <= value <= hi:  # also refuses NaN
            raise ValueError
        return value

    parse.__doc__ = f"a number from {lo:g} to {hi:g}"
    return parse


def _opt_float(lo: float, hi: float) -> Callable[[object], float | None]:
    number = _float(lo, hi)

    def parse(raw: object) -> float | None:
        return None if raw is None or raw == "" else number(raw)

    parse.__doc__ = f"{number.__doc__}, or empty for the default"
    return parse


def _str(raw: object) -> str:
    """a non-empty string"""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError
    return raw.strip()


def _opt_str(raw: object) -> str | None:
    """a string"""
    if raw is None or raw == "":
        return None
    return _str(raw)


def _folder(raw: object) -> str | None:
    """a folder path, or empty for none"""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or any(ord(c) < 0x20 for c in raw) or not raw.strip():
        raise ValueError
    return raw


def _choice(*options: str) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        if raw not in options:
            raise ValueError
        return str(raw)

    parse.__doc__ = "one of " + ", ".join(options)
    return parse


def _bool(raw: object) -> bool:
    """true or false"""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, str) else None
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _algs(raw: object) -> tuple[str, ...]:
    """a space- or comma-separated list of signing algorithms"""
    items = raw.replace(",", " ").split() if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not items:
        raise ValueError
    out = tuple(dict.fromkeys(str(a) for a in items))
    if any(a not in SUPPORTED_ALGORITHMS for a in out):
        raise ValueError
    return out


def _secret(raw: object) -> bytes | None:
    """base64 (standard or url-safe) of at least 32 random bytes"""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bytes):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip().replace("-", "+").replace("_", "/")
        try:
            value = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError from None
    else:
        raise ValueError
    if len(value) < 32:
        raise ValueError
    return value


def _networks(raw: object) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """a space- or comma-separated list of networks (CIDR), or empty"""
    items = raw.replace(",", " ").split() if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise ValueError
    return tuple(ipaddress.ip_network(str(item), strict=False) for item in items)


def _token(raw: object) -> str | None:
    """a bearer token of 32 to 512 visible ASCII characters"""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not 32 <= len(raw) <= 512 or not raw.isascii():
        raise ValueError
    if not raw.isprintable() or " " in raw:
        raise ValueError
    return raw


def _issuer_text(raw: object) -> str:
    """a URL, or empty for http://HOST:PORT"""
    return _opt_str(raw) or ""


@dataclass(frozen=True)
class _Meta:
    parse: Callable[[object], Any]
    section: Section
    help: str
    option: str | None
    shown_default: str | None
    file_env: str | None
    secret: bool


def setting(
    default: T,
    parse: Callable[[object], T],
    *,
    section: Section,
    help: str,
    option: str | None = None,
    shown_default: str | None = None,
    file_env: str | None = None,
    secret: bool = False,
) -> T:
    """Declare one field of :class:`Settings`: its default, parser, section and documentation.

    ``option`` is the ``sealring serve`` option that sets it, if any; ``shown_default`` replaces
    the default in the docs when the value is derived; ``file_env`` names a second environment
    variable holding a file to read the value from; a ``secret`` is never shown or repr'd.
    """
    meta = _Meta(parse, section, help, option, shown_default, file_env, secret)
    return field(default=default, repr=not secret, metadata={"sealring": meta})


@dataclass(frozen=True)
class Settings:
    """Every setting of the authorization server, checked.  Construct with :meth:`load`."""

    # -- http ----------------------------------------------------------------------------------
    issuer: str = setting(
        "",
        _issuer_text,
        section="http",
        option="--issuer",
        shown_default="`http://HOST:PORT`",
        help="public issuer URL; https, or http on loopback only; no query/fragment;"
        " trailing `/` dropped",
    )
    host: str = setting("127.0.0.1", _str, section="http", option="--host", help="bind address")
    port: int = setting(8000, _int(1, 65535), section="http", option="--port", help="bind port")
    workers: int = setting(
        1,
        _workers,
        section="http",
        option="--workers",
        help="worker processes (1-64), or `auto`: one per CPU core this process may use",
    )
    http_server: str = setting(
        "auto",
        _choice("auto", "uvicorn", "granian"),
        section="http",
        option="--http-server",
        help="`auto` (uvicorn: less server CPU per token and per JWKS request,"
        " `docs/benchmarks.md`), `uvicorn` or `granian` (the `sealring[granian]` extra)",
    )
    log_level: str = setting(
        "info",
        _choice("debug", "info", "warning", "error"),
        section="http",
        help="`debug`, `info`, `warning`, `error`",
    )
    # -- storage -------------------------------------------------------------------------------
    database_url: str = setting(
        DEFAULT_DATABASE_URL,
        _str,
        section="storage",
        option="--database",
        file_env="SEALRING_DATABASE_URL_FILE",
        help="SQLAlchemy URL: `sqlite:///PATH` or `postgresql+psycopg://...`"
        " (`postgresql://` accepted)",
    )
    redis_url: str | None = setting(
        None,
        _opt_str,
        section="storage",
        help="`redis://`, `rediss://` or `unix://`: share the rate limit between replicas",
    )
    server_secret: bytes | None = setting(
        None,
        _secret,
        section="storage",
        file_env="SEALRING_SERVER_SECRET_FILE",
        shown_default="in the database",
        secret=True,
        help="HMAC key for client secrets, base64 of at least 32 bytes",
    )
    # -- storage: how long a dependency can make a request wait (docs/reliability.md) ----------
    database_timeout: float = setting(
        3.0,
        _float(0.1, 600),
        section="storage",
        help="longest a request waits on the database before its 503 `temporarily_unavailable`,"
        " seconds",
    )
    database_connect_timeout: float = setting(
        2.0,
        _float(1, 300),
        section="storage",
        help="PostgreSQL connect timeout, seconds (libpq: whole seconds, at least 2)",
    )
    database_statement_timeout: float = setting(
        5.0,
        _float(0.1, 3600),
        section="storage",
        help="PostgreSQL `statement_timeout` of the server's connections, seconds",
    )
    database_pool_timeout: float = setting(
        1.0,
        _float(0.05, 300),
        section="storage",
        help="longest wait for a pooled database connection, seconds",
    )
    redis_timeout: float = setting(
        0.5,
        _float(0.05, 60),
        section="storage",
        help="connect and read timeout of each Redis call, and of the whole call, seconds",
    )
    # -- tokens --------------------------------------------------------------------------------
    token_lifetime: int = setting(
        600, _int(30, 86400), section="tokens", help="access token lifetime, seconds (30-86400)"
    )
    signing_alg: str = setting(
        "ES256",
        _choice(*SUPPORTED_ALGORITHMS),
        section="tokens",
        help="algorithm of the access tokens",
    )
    assertion_max_lifetime: int = setting(
        3600,
        _int(10, 86400),
        section="tokens",
        help="longest accepted `exp - now` of a client assertion",
    )
    id_token_lifetime: int = setting(
        3600,
        _int(30, 86400),
        section="tokens",
        help="ID token lifetime, seconds (30-86400)",
    )
    # -- keys ----------------------------------------------------------------------------------
    key_algorithms: tuple[str, ...] = setting(
        DEFAULT_ALGORITHMS,
        _algs,
        section="keys",
        help="algorithms the key manager keeps an active key for (`signing_alg` is added)",
    )
    rotation_interval: float = setting(
        30 * 86400.0,
        _float(1, 10 * 365 * 86400),
        section="keys",
        shown_default="`2592000` (30 d)",
        help="signing key rotation interval, seconds; at least an hour, and longer than the"
        " pre-publication time",
    )
    jwks_max_age: int = setting(
        300,
        _int(1, 86400),
        section="keys",
        help="`Cache-Control` max-age of the JWKS; also sets the key pre-publication time"
        " (`docs/keys.md`)",
    )
    key_prepublication: float | None = setting(
        None,
        _opt_float(2, 10 * 365 * 86400),
        section="keys",
        shown_default="the larger of 2 x `jwks_max_age` and `jwks_max_age` + 40 s",
        help="how long a new key is published before it signs; at least 2 x `jwks_max_age` and"
        " 30 s + `jwks_max_age` + the poll interval (`docs/keys.md`)",
    )
    key_leeway: float = setting(
        60.0,
        _float(0, 86400),
        section="keys",
        help="clock skew allowed to verifiers; part of a retired key's retention",
    )
    key_poll_interval: float | None = setting(
        None,
        _opt_float(0.01, 86400),
        section="keys",
        shown_default="5 s, capped",
        help="how often each replica checks for key changes;"
        " at most (pre-publication - max-age) / 2",
    )
    # -- limits --------------------------------------------------------------------------------
    rate_limit: float = setting(
        20.0,
        _float(0, 1e6),
        section="limits",
        help="token requests per second per client; `0` disables",
    )
    rate_burst: int = setting(40, _int(1, 1_000_000), section="limits", help="bucket size")
    client_cache_ttl: float = setting(
        5.0,
        _float(0, 3600),
        section="limits",
        help="seconds a client lookup is cached; `0` disables",
    )
    max_body_size: int = setting(
        16 * 1024, _int(1024, 1024 * 1024), section="limits", help="request body cap, bytes"
    )
    ip_rate_limit: float = setting(
        200.0,
        _float(0, 1e6),
        section="limits",
        help="requests per second per caller address at `/token`, `/introspect`, `/revoke` and"
        " `/readyz`, taken before authentication; `0` disables",
    )
    ip_rate_burst: int = setting(
        400, _int(1, 1_000_000), section="limits", help="bucket size of `ip_rate_limit`"
    )
    # -- security ------------------------------------------------------------------------------
    assertion_token_endpoint_audience: bool = setting(
        False,
        _bool,
        section="security",
        help="compatibility: also accept a client assertion whose `aud` is the token endpoint URL"
        " (one string); off, only the issuer identifier is accepted",
    )
    jwks_uri_allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = setting(
        (),
        _networks,
        section="security",
        help="networks (CIDR) a client's `jwks_uri` may reach besides public addresses;"
        " for tests and loopback set-ups (`docs/security.md`)",
    )
    metrics_token: str | None = setting(
        None,
        _token,
        section="security",
        secret=True,
        help="bearer token a scraper sends as `Authorization: Bearer`; without it `/metrics`"
        " answers 404",
    )
    rate_limit_fail_closed: bool = setting(
        False,
        _bool,
        section="security",
        help="answer 503 instead of letting token requests through unlimited while Redis is down",
    )
    unsafe_key_schedule: bool = setting(
        False,
        _bool,
        section="security",
        help="tests only: accept a key schedule resource servers with a 30 s refetch cooldown"
        " cannot follow, and keep retired keys for the token lifetime alone (`docs/keys.md`);"
        " warned on every start",
    )

    # -- sessions (user login, docs/login.md) --------------------------------------------------
    session_idle_lifetime: float = setting(
        2 * 3600.0,
        _float(60, 30 * 86400),
        section="sessions",
        shown_default="`7200` (2 h)",
        help="a browser session ends after this long without use, seconds",
    )
    session_absolute_lifetime: float = setting(
        14 * 86400.0,
        _float(60, 365 * 86400),
        section="sessions",
        shown_default="`1209600` (14 d)",
        help="a browser session ends this long after sign-in whatever its use, seconds;"
        " at least `session_idle_lifetime`",
    )
    interaction_lifetime: float = setting(
        600.0,
        _float(30, 86400),
        section="sessions",
        help="how long a login or consent page stays usable, seconds",
    )
    refresh_idle_lifetime: float = setting(
        14 * 86400.0,
        _float(60, 365 * 86400),
        section="sessions",
        shown_default="`1209600` (14 d)",
        help="a refresh token expires this long after it was issued (each use rotates it), seconds",
    )
    refresh_absolute_lifetime: float = setting(
        90 * 86400.0,
        _float(60, 10 * 365 * 86400),
        section="sessions",
        shown_default="`7776000` (90 d)",
        help="no refresh token of a login outlives this, counted from the code exchange, seconds",
    )
    refresh_grace_window: float = setting(
        0.0,
        _float(0, 60),
        section="sessions",
        help="seconds within which a retry of the previous refresh token gets the same"
        " successor once; `0` (off): every reuse revokes the family",
    )
    template_dir: str | None = setting(
        None,
        _folder,
        section="sessions",
        help="folder whose `login.html`, `consent.html`, `error.html`, `logout.html`,"
        " `logged_out.html` replace the built-in pages (docs/login.md)",
    )

    # -- derived -------------------------------------------------------------------------------
    def rotation_policy(self) -> RotationPolicy:
        """The key schedule these settings describe: the one the server and ``sealring keys`` use.

        Retention is computed from the lifetime of what resource servers verify, access tokens,
        and never less than an hour (ID tokens are checked by their client when received).  Pre-publication defaults
        to what a verifier with a 30 s refetch cooldown needs (docs/keys.md).
        """
        lifetime = float(self.token_lifetime)
        prepublication = self.key_prepublication
        if prepublication is None:
            prepublication = followable_prepublication(self.jwks_max_age)
        return RotationPolicy(
            algorithms=self.key_algorithms,
            rotation_interval=self.rotation_interval,
            jwks_max_age=self.jwks_max_age,
            prepublication=prepublication,
            max_token_lifetime=lifetime if self.unsafe_key_schedule else max(3600.0, lifetime),
            leeway=self.key_leeway,
            poll_interval=self.key_poll_interval,
        )

    @property
    def resolved_http_server(self) -> str:
        """``auto`` is uvicorn: the faster token endpoint at one and two workers on this machine
        kind (issue 4), and less CPU per token and far less per JWKS request with its prebuilt
        answers below ASGI (issue 11; docs/benchmarks.md); granian only when asked for."""
        if self.http_server != "auto":
            return self.http_server
        return "uvicorn"

    @property
    def token_endpoint(self) -> str:
        return endpoint_url(self.issuer, "token")

    @property
    def jwks_uri(self) -> str:
        return endpoint_url(self.issuer, "jwks")

    @property
    def introspection_endpoint(self) -> str:
        return endpoint_url(self.issuer, "introspection")

    @property
    def revocation_endpoint(self) -> str:
        return endpoint_url(self.issuer, "revocation")

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        options: Mapping[str, object | None] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
    ) -> Settings:
        """Merge defaults, TOML file, environment and ``options`` (``None`` values are unset)."""
        environ = os.environ if environ is None else environ
        raw: dict[str, tuple[object, str]] = {}
        path = config_file or environ.get("SEALRING_CONFIG") or None
        if path is not None:
            for key, value in _read_toml(Path(path)).items():
                raw[key] = (value, f"{key} in {path}")
        for spec in describe_settings():
            if spec.env in environ:
                raw[spec.name] = (environ[spec.env], spec.env)
            elif spec.file_env and spec.name not in raw and environ.get(spec.file_env):
                file = Path(environ[spec.file_env])
                try:
                    raw[spec.name] = (file.read_text().strip(), f"{spec.file_env} ({file})")
                except OSError as exc:
                    raise SettingsError(
                        f"invalid setting {spec.name}: cannot read {file}: {exc.strerror}"
                    ) from None
        specs = {spec.name: spec for spec in describe_settings()}
        for name, value in (options or {}).items():
            if value is not None:
                if name not in specs:
                    raise SettingsError(f"unknown setting {name!r}")
                raw[name] = (value, specs[name].option or "--" + name.replace("_", "-"))
        return cls._build(raw)

    @classmethod
    def _build(cls, raw: Mapping[str, tuple[object, str]]) -> Settings:
        values: dict[str, Any] = {}
        for spec in describe_settings():
            if spec.name not in raw:
                continue
            value, source = raw[spec.name]
            try:
                values[spec.name] = spec.parse(value)
            except (ValueError, TypeError, OverflowError):
                shown = "(hidden)" if spec.secret else repr(value)
                raise SettingsError(
                    f"invalid setting {spec.name} from {source}: {shown} is not {spec.allowed}"
                ) from None
        settings = cls(**values)
        issuer = settings.issuer or f"http://{_url_host(settings.host)}:{settings.port}"
        issuer = _check_issuer(issuer, raw.get("issuer", (None, "default"))[1])
        algorithms = settings.key_algorithms
        if settings.signing_alg not in algorithms:
            algorithms = (*algorithms, settings.signing_alg)
        try:
            database_url = normalise_url(settings.database_url)
        except DatabaseConfigError as exc:
            source = raw.get("database_url", (None, "default"))[1]
            raise SettingsError(f"invalid setting database_url from {source}: {exc}") from None
        redis = settings.redis_url
        if redis is not None and not redis.startswith(("redis://", "rediss://", "unix://")):
            source = raw["redis_url"][1]
            raise SettingsError(
                f"invalid setting redis_url from {source}: expected redis://, rediss:// or unix://"
            )
        if settings.session_idle_lifetime > settings.session_absolute_lifetime:
            raise SettingsError(
                "invalid session settings: session_idle_lifetime is longer than"
                " session_absolute_lifetime"
            )
        if settings.refresh_idle_lifetime > settings.refresh_absolute_lifetime:
            raise SettingsError(
                "invalid refresh token settings: refresh_idle_lifetime is longer than"
                " refresh_absolute_lifetime"
            )
        settings = dataclasses.replace(
            settings, issuer=issuer, key_algorithms=algorithms, database_url=database_url
        )
        try:
            policy = settings.rotation_policy()
        except SealringError as exc:
            raise SettingsError(f"invalid key rotation settings: {exc.message}") from None
        _check_followable(policy, settings.unsafe_key_schedule)
        return settings

    # -- hand-over to worker processes ---------------------------------------------------------
    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["key_algorithms"] = list(self.key_algorithms)
        data["jwks_uri_allowed_networks"] = [str(n) for n in self.jwks_uri_allowed_networks]
        if self.server_secret is not None:
            data["server_secret"] = base64.b64encode(self.server_secret).decode()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        return cls._build({k: (v, RESOLVED_ENV) for k, v in data.items() if v is not None})


def _check_followable(policy: RotationPolicy, unsafe: bool) -> None:
    """Issue 12: refuse a schedule resource servers cannot follow, and one that would publish
    more keys than Sealring's own verifier accepts (that one even for tests)."""
    problem = unfollowable(policy)
    if problem is not None and not unsafe:
        raise SettingsError(
            f"invalid key rotation settings: {problem}; resource servers that cache keys as node "
            "jose does would reject valid tokens (docs/keys.md; unsafe_key_schedule is for tests)"
        )
    if policy.max_published_keys > MAX_JWKS_KEYS:
        raise SettingsError(
            f"invalid key rotation settings: the schedule publishes up to "
            f"{policy.max_published_keys} keys at once and verifiers refuse a JWK Set of more "
            f"than {MAX_JWKS_KEYS}; rotate less often or sign with fewer algorithms"
        )


@dataclass(frozen=True)
class SettingField:
    """One setting, as documentation needs it (:func:`describe_settings`)."""

    name: str  # also the TOML key
    section: Section
    type: str  # the Python type, as declared
    default: object  # the built-in default (``None``: unset or derived)
    shown_default: str  # the default as the docs show it
    env: str  # the environment variable
    file_env: str | None  # a variable naming a file to read the value from, if any
    option: str | None  # the ``sealring serve`` option, if any
    help: str
    allowed: str  # what the parser accepts, as the error message says it
    secret: bool
    parse: Callable[[object], Any] = field(repr=False, compare=False)


def describe_settings() -> tuple[SettingField, ...]:
    """Every setting in declaration order, grouped by section: the one list docs are made from."""
    out = []
    for f in dataclasses.fields(Settings):
        meta: _Meta = f.metadata["sealring"]
        default = f.default
        shown = meta.shown_default or _show_default(default)
        out.append(
            SettingField(
                name=f.name,
                section=meta.section,
                type=str(f.type),
                default=default,
                shown_default=shown,
                env=ENV_PREFIX + f.name.upper(),
                file_env=meta.file_env,
                option=meta.option,
                help=meta.help,
                allowed=meta.parse.__doc__ or "",
                secret=meta.secret,
                parse=meta.parse,
            )
        )
    return tuple(out)


def _show_default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        return "`" + " ".join(str(v) for v in value) + "`" if value else "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _check_issuer(issuer: str, source: str) -> str:
    """RFC 8414 §2: https, no query or fragment; plain http only on loopback (development)."""
    parts = urlsplit(issuer)
    problem = None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        problem = "must be an absolute https URL"
    elif parts.query or parts.fragment or "?" in issuer or "#" in issuer:
        problem = "must not have a query or fragment"
    elif parts.scheme == "http" and not is_loopback_host(parts.hostname):
        problem = "must use https (plain http is only allowed for loopback hosts)"
    if problem:
        raise SettingsError(f"invalid setting issuer from {source}: {issuer!r} {problem}")
    return issuer.rstrip("/")


def _read_toml(path: Path) -> dict[str, object]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("sealring", data)
    if not isinstance(section, dict):
        raise SettingsError(f"config file {path}: [sealring] must be a table")
    unknown = sorted(set(section) - {spec.name for spec in describe_settings()})
    if unknown:
        raise SettingsError(f"config file {path}: unknown setting {unknown[0]!r}")
    return dict(section)
