"""Server settings: one checked, immutable value object.

Sources, later ones winning: built-in defaults, an optional TOML file (``--config`` or
``SEALRING_CONFIG``), ``SEALRING_*`` environment variables, command-line options.  Every value is
parsed and checked once, at start; the first bad one raises :class:`SettingsError` with one
message naming the setting, where it came from and what is allowed.  docs/server.md lists them all.
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
from typing import Any
from urllib.parse import urlsplit

from sealring.db import DatabaseConfigError, normalise_url
from sealring.errors import SealringError
from sealring.jose.jwks import DEFAULT_MAX_KEYS as MAX_JWKS_KEYS
from sealring.keys import RotationPolicy
from sealring.keys.schedule import followable_prepublication, unfollowable
from sealring.server.routes import endpoint_url

__all__ = ["DEFAULT_DATABASE_URL", "Settings", "SettingsError"]

DEFAULT_DATABASE_URL = "sqlite:///./sealring.db"
RESOLVED_ENV = "SEALRING_RESOLVED_SETTINGS"  # how `serve` hands settings to worker processes
SIGNING_ALGORITHMS = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)


# Command-line options whose name is not the setting's name with dashes.
_OPTION_NAMES = {"database_url": "--database"}


class SettingsError(SealringError):
    code = "invalid_settings"


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
    if any(a not in SIGNING_ALGORITHMS for a in out):
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


# name -> (parser, default).  Environment variable: SEALRING_<NAME upper-cased>.
_FIELDS: dict[str, tuple[Callable[[object], Any], object]] = {
    "issuer": (_opt_str, None),
    "host": (_str, "127.0.0.1"),
    "port": (_int(1, 65535), 8000),
    "database_url": (_str, DEFAULT_DATABASE_URL),
    "workers": (_int(1, 64), 1),
    "http_server": (_choice("auto", "uvicorn", "granian"), "auto"),
    "token_lifetime": (_int(30, 86400), 600),
    "signing_alg": (_choice(*SIGNING_ALGORITHMS), "ES256"),
    "key_algorithms": (_algs, ("ES256", "RS256")),
    "rotation_interval": (_float(1, 10 * 365 * 86400), 30 * 86400.0),
    "jwks_max_age": (_int(1, 86400), 300),
    "key_prepublication": (_opt_float(2, 10 * 365 * 86400), None),
    "key_leeway": (_float(0, 86400), 60.0),
    "key_poll_interval": (_opt_float(0.01, 86400), None),
    "rate_limit": (_float(0, 1e6), 20.0),
    "rate_burst": (_int(1, 1_000_000), 40),
    "redis_url": (_opt_str, None),
    "server_secret": (_secret, None),
    "client_cache_ttl": (_float(0, 3600), 5.0),
    "assertion_max_lifetime": (_int(10, 86400), 3600),
    "max_body_size": (_int(1024, 1024 * 1024), 16 * 1024),
    "log_level": (_choice("debug", "info", "warning", "error"), "info"),
    # -- reliability (issue 12; docs/reliability.md): how long a dependency can make us wait --
    "database_timeout": (_float(0.1, 600), 3.0),
    "database_connect_timeout": (_float(1, 300), 2.0),
    "database_statement_timeout": (_float(0.1, 3600), 5.0),
    "database_pool_timeout": (_float(0.05, 300), 1.0),
    "redis_timeout": (_float(0.05, 60), 0.5),
    "rate_limit_fail_closed": (_bool, False),
    "unsafe_key_schedule": (_bool, False),
}
_SECRET_FIELDS = frozenset({"server_secret"})


@dataclass(frozen=True)
class Settings:
    """Every setting of the authorization server, checked.  Construct with :meth:`load`."""

    issuer: str
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = DEFAULT_DATABASE_URL
    workers: int = 1
    http_server: str = "auto"
    token_lifetime: int = 600
    signing_alg: str = "ES256"
    key_algorithms: tuple[str, ...] = ("ES256", "RS256")
    rotation_interval: float = 30 * 86400.0
    jwks_max_age: int = 300
    key_prepublication: float | None = None
    key_leeway: float = 60.0
    key_poll_interval: float | None = None
    rate_limit: float = 20.0
    rate_burst: int = 40
    redis_url: str | None = None
    server_secret: bytes | None = field(default=None, repr=False)
    client_cache_ttl: float = 5.0
    assertion_max_lifetime: int = 3600
    max_body_size: int = 16 * 1024
    log_level: str = "info"
    # -- reliability (issue 12; docs/reliability.md) ------------------------------------------
    database_timeout: float = 3.0
    database_connect_timeout: float = 2.0
    database_statement_timeout: float = 5.0
    database_pool_timeout: float = 1.0
    redis_timeout: float = 0.5
    rate_limit_fail_closed: bool = False
    # Tests only: accept a key schedule common resource servers cannot follow (keys.unfollowable)
    # and keep retired keys for the token lifetime alone, without the one-hour floor.
    unsafe_key_schedule: bool = False

    # -- derived -------------------------------------------------------------------------------
    def rotation_policy(self) -> RotationPolicy:
        """The key schedule these settings describe: the one the server and ``sealring keys`` use.

        Retention is computed from the longest lifetime of anything signed: access tokens, and
        never less than an hour, which covers what later grants sign.  Pre-publication defaults
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
        kind (docs/benchmarks.md, issue 4); granian only when asked for."""
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
        for name in _FIELDS:
            env_name = "SEALRING_" + name.upper()
            if env_name in environ:
                raw[name] = (environ[env_name], env_name)
        if "server_secret" not in raw and environ.get("SEALRING_SERVER_SECRET_FILE"):
            file = Path(environ["SEALRING_SERVER_SECRET_FILE"])
            try:
                raw["server_secret"] = (
                    file.read_text().strip(),
                    f"SEALRING_SERVER_SECRET_FILE ({file})",
                )
            except OSError as exc:
                raise SettingsError(
                    f"invalid setting server_secret: cannot read {file}: {exc.strerror}"
                ) from None
        for name, value in (options or {}).items():
            if value is not None:
                if name not in _FIELDS:
                    raise SettingsError(f"unknown setting {name!r}")
                raw[name] = (value, _OPTION_NAMES.get(name, "--" + name.replace("_", "-")))
        return cls._build(raw)

    @classmethod
    def _build(cls, raw: Mapping[str, tuple[object, str]]) -> Settings:
        values: dict[str, object] = {}
        for name, (parse, default) in _FIELDS.items():
            if name not in raw:
                values[name] = default
                continue
            value, source = raw[name]
            try:
                values[name] = parse(value)
            except (ValueError, TypeError, OverflowError):
                shown = "(hidden)" if name in _SECRET_FIELDS else repr(value)
                raise SettingsError(
                    f"invalid setting {name} from {source}: {shown} is not {parse.__doc__}"
                ) from None
        host = str(values["host"])
        issuer = values["issuer"] or f"http://{_url_host(host)}:{values['port']}"
        values["issuer"] = _check_issuer(str(issuer), raw.get("issuer", (None, "default"))[1])
        if values["signing_alg"] not in values["key_algorithms"]:  # type: ignore[operator]
            values["key_algorithms"] = (*values["key_algorithms"], values["signing_alg"])  # type: ignore[misc]
        try:
            values["database_url"] = normalise_url(str(values["database_url"]))
        except DatabaseConfigError as exc:
            source = raw.get("database_url", (None, "default"))[1]
            raise SettingsError(f"invalid setting database_url from {source}: {exc}") from None
        redis = values["redis_url"]
        if redis is not None and not str(redis).startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                "invalid setting redis_url: expected redis://, rediss:// or unix://"
            )
        settings = cls(**values)  # type: ignore[arg-type]
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
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        problem = "must use https (plain http is only allowed for loopback hosts)"
    if problem:
        raise SettingsError(f"invalid setting issuer from {source}: {issuer!r} {problem}")
    return issuer.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    unknown = sorted(set(section) - set(_FIELDS))
    if unknown:
        raise SettingsError(f"config file {path}: unknown setting {unknown[0]!r}")
    return dict(section)
