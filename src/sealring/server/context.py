"""What every endpoint shares: the settings and the long-lived services built at start.

:func:`build_context` is the one place the services are wired together; nothing here imports an
endpoint (tests/server/test_layout.py checks it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from sealring.db import make_engine, upgrade
from sealring.jose.jws import Signer
from sealring.keys import KeyManager, load_key_config
from sealring.server.accounts import PasswordPolicy
from sealring.server.availability import Database, Outage
from sealring.server.clients import SecretHasher
from sealring.server.errors import TemporarilyUnavailable
from sealring.server.logging import logger
from sealring.server.metrics import Metrics
from sealring.server.pages import PageRenderer
from sealring.server.protocol.client_auth import ClientAuthenticator
from sealring.server.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from sealring.server.settings import Settings, SettingsError
from sealring.server.sqlite_writer import SqliteWriter
from sealring.server.stores.accounts import DatabaseAccountStore
from sealring.server.stores.assertion_jtis import JtiStore
from sealring.server.stores.authorization_codes import AuthorizationCodeStore
from sealring.server.stores.browser_sessions import BrowserSessionStore
from sealring.server.stores.client_keys import ClientJWKSFetcher
from sealring.server.stores.clients import ClientCache, ClientRepository
from sealring.server.stores.consents import ConsentStore
from sealring.server.stores.interactions import InteractionStore
from sealring.server.stores.login_throttle import LoginThrottle
from sealring.server.stores.refresh_tokens import RefreshPolicy, RefreshTokenStore
from sealring.server.stores.revocations import RevocationStore
from sealring.server.stores.server_secret import load_server_secret
from sealring.server.tokens.access_token import JWKSLike, OwnTokenVerifier
from sealring.server.tokens.handles import HandleHasher
from sealring.server.user_grants import UserGrantStorage

__all__ = ["KeySource", "LoginServices", "ServerContext", "build_context", "key_manager"]


class KeySource(Protocol):
    """The part of :class:`sealring.keys.KeyManager` the endpoints use."""

    def signer(self, alg: str) -> Signer: ...
    def jwks(self) -> JWKSLike: ...


@dataclass(frozen=True)
class LoginServices:
    """Everything user login needs (docs/login.md), built from the server secret and settings.

    ``hasher`` keys every stored handle (codes, refresh tokens, sessions, interactions) and the
    pages' CSRF tokens; ``grants`` is the token endpoint's view of the code and refresh stores.
    """

    hasher: HandleHasher
    accounts: DatabaseAccountStore
    codes: AuthorizationCodeStore
    refresh_tokens: RefreshTokenStore
    sessions: BrowserSessionStore
    interactions: InteractionStore
    consents: ConsentStore
    throttle: LoginThrottle
    pages: PageRenderer
    grants: UserGrantStorage

    def grant_active(self, grant_id: str, now: float) -> bool:
        """Whether an access token carrying ``grant_id`` still holds (introspection, userinfo)."""
        return self.refresh_tokens.grant_active(grant_id, now=now)

    def prune(self, now: float) -> None:
        """Drop what can no longer be used (run with the other pruning, every minute)."""
        self.codes.prune(now)
        self.refresh_tokens.prune(now)
        self.sessions.prune(now)
        self.interactions.prune(now)
        self.throttle.prune(now)


def build_login(
    settings: Settings, engine: Engine, secret: bytes, clock: Callable[[], float]
) -> LoginServices:
    hasher = HandleHasher(secret)
    codes = AuthorizationCodeStore(engine, hasher)
    refresh_tokens = RefreshTokenStore(
        engine,
        hasher,
        secret,
        RefreshPolicy(
            idle_lifetime=settings.refresh_idle_lifetime,
            absolute_lifetime=settings.refresh_absolute_lifetime,
            grace_window=settings.refresh_grace_window,
        ),
    )
    try:
        pages = PageRenderer(settings.template_dir)
    except ValueError as exc:
        raise SettingsError(f"invalid setting template_dir: {exc}") from None
    return LoginServices(
        hasher=hasher,
        accounts=DatabaseAccountStore(engine, PasswordPolicy(), clock=clock),
        codes=codes,
        refresh_tokens=refresh_tokens,
        sessions=BrowserSessionStore(
            engine,
            hasher,
            idle_lifetime=settings.session_idle_lifetime,
            absolute_lifetime=settings.session_absolute_lifetime,
        ),
        interactions=InteractionStore(engine, hasher, lifetime=settings.interaction_lifetime),
        consents=ConsentStore(engine),
        throttle=LoginThrottle(engine, hasher),
        pages=pages,
        grants=UserGrantStorage(codes, refresh_tokens),
    )


@dataclass
class ServerContext:
    settings: Settings
    engine: Engine
    keys: KeySource
    repository: ClientRepository
    clients: ClientCache
    authenticator: ClientAuthenticator
    rate_limiter: RateLimiter | None
    metrics: Metrics
    revocations: RevocationStore
    jtis: JtiStore
    verifier: OwnTokenVerifier
    database: Database
    login: LoginServices
    clock: Callable[[], float] = time.time
    # Per caller address, taken before anything is read or looked up (issue 10).
    address_limiter: RateLimiter | None = None

    async def check_address(self, address: str | None) -> None:
        """Take one token from the caller address's bucket; raises ``RateLimited`` (429)."""
        if self.address_limiter is not None:
            await self.address_limiter.check(_address_key(address))

    def limits_decide_now(self) -> bool:
        """Whether :meth:`take_now` can decide: every limit that is on keeps its buckets in
        this process (not in Redis)."""
        return all(
            limiter is None or isinstance(limiter, MemoryRateLimiter)
            for limiter in (self.address_limiter, self.rate_limiter)
        )

    def take_now(self, address: str | None, client_id: str) -> bool:
        """The token endpoint's two limits at once, synchronously: take a token from the caller
        address's bucket and one from the client's, or neither (``False``: one bucket is empty,
        or a limit is not in memory), so the request can then be answered the normal way."""
        taken = []
        for limiter, key in (
            (self.address_limiter, _address_key(address)),
            (self.rate_limiter, client_id),
        ):
            if limiter is None:
                continue
            if not isinstance(limiter, MemoryRateLimiter) or not limiter.admits(key):
                return False
            taken.append((limiter, key))
        for limiter, key in taken:
            limiter.take(key)
        return True

    def signer(self, alg: str | None = None) -> Signer:
        """The active key for ``alg`` (default ``signing_alg``); fails closed as
        ``temporarily_unavailable``."""
        try:
            return self.keys.signer(alg or self.settings.signing_alg)
        except Exception as exc:  # KeyUnavailable, or a broken HSM session
            raise TemporarilyUnavailable("no signing key is available") from exc


def _address_key(address: str | None) -> str:
    return "addr:" + (address or "unknown")


def _rate_limiter(
    settings: Settings, metrics: Metrics, rate: float, burst: int
) -> RateLimiter | None:
    if rate <= 0:
        return None
    if settings.redis_url:
        return RedisRateLimiter(
            settings.redis_url,
            rate,
            burst,
            timeout=settings.redis_timeout,
            fail_closed=settings.rate_limit_fail_closed,
            outage=Outage("redis", metrics),
            bypassed=metrics.rate_limit_bypassed,
        )
    return MemoryRateLimiter(rate, burst)


def key_manager(
    settings: Settings, engine: Engine, environ: Mapping[str, str] | None = None
) -> KeyManager:
    kek, hsm = load_key_config(settings.database_url, environ)
    return KeyManager(engine, kek=kek, policy=settings.rotation_policy(), hsm=hsm, publishes=True)


def _key_states(km: KeyManager) -> Callable[[], dict[tuple[str, str], int]]:
    def collect() -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for info in km.loaded_keys():
            counts[(info.alg, info.state)] = counts.get((info.alg, info.state), 0) + 1
        return counts

    return collect


def build_context(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[ServerContext, KeyManager]:
    """Everything the endpoints share, ready to serve (migrates, creates keys if needed)."""
    if settings.unsafe_key_schedule:
        # A test setting: warn on every start (docs/keys.md).
        logger.warning(
            "unsafe_key_schedule is set: the key schedule is not checked against the resource "
            "servers' caches, and retired keys are kept for the token lifetime only"
        )
    engine = make_engine(
        settings.database_url,
        hide_parameters=True,
        connect_timeout=settings.database_connect_timeout,
        statement_timeout=settings.database_statement_timeout,
        pool_timeout=settings.database_pool_timeout,
    )
    try:
        upgrade(engine)
        km = key_manager(settings, engine, environ)
        km.ensure_ready()
        secret = load_server_secret(engine, settings.server_secret, kek=km.kek, clock=clock)
        login = build_login(settings, engine, secret, clock)
    except BaseException:
        engine.dispose()
        raise
    metrics = Metrics(_key_states(km))
    pool_size = getattr(engine.pool, "size", None)
    database = Database(
        settings.database_timeout,
        Outage("database", metrics),
        threads=pool_size() if callable(pool_size) else None,
        writer=SqliteWriter(engine) if engine.dialect.name == "sqlite" else None,
    )
    repository = ClientRepository(engine, clock=clock)
    clients = ClientCache(repository, ttl=settings.client_cache_ttl)
    jtis = JtiStore(engine)
    authenticator = ClientAuthenticator(
        clients=clients,
        hasher=SecretHasher(secret),
        jtis=jtis,
        jwks_fetcher=ClientJWKSFetcher(allowed_networks=settings.jwks_uri_allowed_networks),
        issuer=settings.issuer,
        token_endpoint=settings.token_endpoint,
        assertion_max_lifetime=settings.assertion_max_lifetime,
        token_endpoint_audience=settings.assertion_token_endpoint_audience,
        clock=clock,
        run=database.call,
    )
    context = ServerContext(
        settings=settings,
        engine=engine,
        keys=km,
        repository=repository,
        clients=clients,
        authenticator=authenticator,
        rate_limiter=_rate_limiter(settings, metrics, settings.rate_limit, settings.rate_burst),
        metrics=metrics,
        revocations=RevocationStore(engine),
        jtis=jtis,
        verifier=OwnTokenVerifier(km, settings.issuer, clock=clock),
        database=database,
        login=login,
        clock=clock,
        address_limiter=_rate_limiter(
            settings, metrics, settings.ip_rate_limit, settings.ip_rate_burst
        ),
    )
    return context, km
