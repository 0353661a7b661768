"""Per-client rate limit on the token endpoint: a token bucket.

``rate`` tokens per second refill a bucket of ``burst``; each token request takes one.  In memory
(per process) by default; shared by every replica through Redis when ``SEALRING_REDIS_URL`` is
set, where one Lua script reads the Redis clock and updates the bucket atomically.

If Redis cannot be reached or does not answer within ``redis_timeout`` the limit fails open by
default: the request goes through unlimited, counted in ``sealring_rate_limit_bypassed``, with one
warning per outage (availability of the token endpoint over a per-client quota; client
authentication and the assertion replay check, which live in the database, are unaffected).
``rate_limit_fail_closed`` answers 503 instead.  While Redis is down it is asked again at most
once per ``PROBE_INTERVAL``, so a hung Redis does not add its timeout to every request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sealring.errors import MissingDependency
from sealring.server.errors import RateLimited, TemporarilyUnavailable

if TYPE_CHECKING:
    from prometheus_client import Counter
    from redis.asyncio import Redis

    from sealring.server.availability import Outage

PROBE_INTERVAL = 1.0

__all__ = ["MemoryRateLimiter", "RateLimiter", "RedisRateLimiter"]


class RateLimiter(Protocol):
    async def check(self, key: str) -> None:
        """Take one token for ``key``; raise :class:`RateLimited` if the bucket is empty."""

    async def healthy(self) -> bool:
        """Whether the bucket store answers now (``/readyz``)."""

    async def aclose(self) -> None: ...


class MemoryRateLimiter:
    """Buckets in this process; at most ``max_keys`` buckets (least recently used dropped)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def check(self, key: str) -> None:
        wait = self.take(key)
        if wait:
            raise RateLimited(wait)

    def take(self, key: str) -> float:
        """Take one token for ``key`` now: ``0.0``, or the seconds until the bucket holds one
        (and nothing taken)."""
        now = self._clock()
        tokens = self._refilled(key, now)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate
        self._buckets[key] = (tokens - 1.0, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return 0.0

    def admits(self, key: str) -> bool:
        """Whether :meth:`take` would take a token for ``key`` now; changes nothing."""
        return self._refilled(key, self._clock()) >= 1.0

    def _refilled(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self._burst, now))
        return min(self._burst, tokens + (now - last) * self._rate)

    async def healthy(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every replica; the Redis server's clock is the only clock."""

    def __init__(
        self,
        url: str,
        rate: float,
        burst: int,
        *,
        prefix: str = "sealring:ratelimit:",
        timeout: float = 0.5,
        fail_closed: bool = False,
        outage: Outage | None = None,
        bypassed: Counter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            from redis.asyncio import Redis
            from redis.exceptions import RedisError
        except ImportError:
            raise MissingDependency(
                "SEALRING_REDIS_URL is set but the redis package is not installed: "
                "pip install 'sealring[redis]'"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (
            RedisError,
            OSError,
            ValueError,
            TimeoutError,
        )
        self._redis: Redis = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._script = self._redis.register_script(_BUCKET_SCRIPT)
        self._rate = rate
        self._burst = burst
        self._prefix = prefix
        self._timeout = timeout
        self._fail_closed = fail_closed
        self._outage = outage
        self._bypassed = bypassed
        self._clock = clock
        self._down_until = -math.inf

    async def check(self, key: str) -> None:
        if self._clock() < self._down_until:
            return self._unavailable(None)
        try:
            # The socket timeouts bound each read; this bounds the whole exchange.
            async with asyncio.timeout(self._timeout):
                raw = await self._script(keys=[self._prefix + key], args=[self._rate, self._burst])
            wait = float(raw)
        except self._errors as exc:
            self._down_until = self._clock() + PROBE_INTERVAL
            if self._outage is not None:
                self._outage.failed(exc)
            return self._unavailable(exc)
        self._down_until = -math.inf
        if self._outage is not None:
            self._outage.recovered()
        if wait > 0 and math.isfinite(wait):
            raise RateLimited(wait)
        return None

    def _unavailable(self, exc: BaseException | None) -> None:
        if self._fail_closed:
            raise TemporarilyUnavailable("rate limiter unavailable") from exc
        if self._bypassed is not None:
            self._bypassed.inc()

    async def healthy(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.ping()
        except self._errors:
            return False
        return True

    async def aclose(self) -> None:
        await self._redis.aclose()
