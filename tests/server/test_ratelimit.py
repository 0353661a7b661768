"""Per-client token bucket: in memory, in Redis (127.0.0.1:6379), failing open or closed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sealring.server.availability import Outage
from sealring.server.errors import RateLimited, TemporarilyUnavailable
from sealring.server.metrics import Metrics
from sealring.server.protocol.client_auth import JWT_BEARER
from sealring.server.ratelimit import MemoryRateLimiter, RedisRateLimiter
from tests.helpers.clock import FakeClock
from tests.helpers.server import LiveServer, start_server

REDIS = "redis://127.0.0.1:6379/0"
API = "https://api.example.test"


def test_memory_bucket_refills_at_rate() -> None:
    clock = FakeClock(1000.0)
    limiter = MemoryRateLimiter(2.0, 3, clock=clock)

    async def run() -> None:
        for _ in range(3):
            await limiter.check("c")
        with pytest.raises(RateLimited) as err:
            await limiter.check("c")
        assert err.value.retry_after == 1  # half a second, rounded up to whole seconds
        await limiter.check("other")  # buckets are per client
        clock.now += 0.5
        await limiter.check("c")
        with pytest.raises(RateLimited):
            await limiter.check("c")
        clock.now += 100
        for _ in range(3):  # refilled, capped at burst
            await limiter.check("c")
        with pytest.raises(RateLimited):
            await limiter.check("c")

    asyncio.run(run())


def test_memory_bucket_is_bounded() -> None:
    limiter = MemoryRateLimiter(1.0, 1, max_keys=10)

    async def run() -> None:
        for i in range(100):
            await limiter.check(str(i))

    asyncio.run(run())
    assert len(limiter._buckets) == 10


def test_redis_bucket_is_shared() -> None:
    prefix = f"sealring-test:{secrets.token_hex(4)}:"

    async def run() -> None:
        a = RedisRateLimiter(REDIS, 0.01, 2, prefix=prefix)
        b = RedisRateLimiter(REDIS, 0.01, 2, prefix=prefix)  # another replica
        try:
            await a.check("c")
            await b.check("c")
            with pytest.raises(RateLimited) as err:
                await a.check("c")
            assert err.value.retry_after >= 90
            await b.check("d")
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(run())


def test_redis_down_fails_open_by_default_and_counts() -> None:
    metrics = Metrics()

    async def run() -> None:
        limiter = RedisRateLimiter(
            "redis://127.0.0.1:1/0",
            10,
            10,
            outage=Outage("redis", metrics),
            bypassed=metrics.rate_limit_bypassed,
        )
        try:
            for _ in range(3):
                await limiter.check("c")
            assert not await limiter.healthy()
        finally:
            await limiter.aclose()

    asyncio.run(run())
    assert metrics.registry.get_sample_value("sealring_rate_limit_bypassed_total") == 3
    assert metrics.registry.get_sample_value("sealring_dependency_up", {"dependency": "redis"}) == 0
    outages = {"dependency": "redis"}
    assert metrics.registry.get_sample_value("sealring_dependency_outages_total", outages) == 1


def test_redis_down_fails_closed_when_asked() -> None:
    async def run() -> None:
        limiter = RedisRateLimiter("redis://127.0.0.1:1/0", 10, 10, fail_closed=True)
        try:
            with pytest.raises(TemporarilyUnavailable):
                await limiter.check("c")
        finally:
            await limiter.aclose()

    asyncio.run(run())


@pytest.fixture(params=["memory", "redis"])
def limited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    redis_url = REDIS if request.param == "redis" else None
    server = start_server(
        f"sqlite:///{tmp_path / 'rl.db'}", rate_limit=0.5, rate_burst=3, redis_url=redis_url
    )
    try:
        yield server
    finally:
        server.stop()


def test_token_endpoint_answers_429(limited: LiveServer) -> None:
    client_id, secret = limited.create_client(scope="s", audiences=[API])
    auth = (client_id, secret or "")
    with httpx.Client(base_url=limited.url) as http:
        codes = [
            http.post("/token", data={"grant_type": "client_credentials"}, auth=auth).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 200]
        response = http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
        assert response.status_code == 429
        assert response.json()["error"] == "temporarily_unavailable"
        assert int(response.headers["retry-after"]) >= 1
        # Failed authentication does not spend a client's budget.
        other_id, other_secret = limited.create_client(scope="s", audiences=[API])
        for _ in range(5):
            http.post("/token", data={"grant_type": "client_credentials"}, auth=(other_id, "bad"))
        ok = http.post(
            "/token", data={"grant_type": "client_credentials"}, auth=(other_id, other_secret or "")
        )
        assert ok.status_code == 200


@pytest.mark.parametrize(("fail_closed", "status"), [(False, 200), (True, 503)])
def test_token_endpoint_when_redis_is_down(tmp_path: Path, fail_closed: bool, status: int) -> None:
    server = start_server(
        f"sqlite:///{tmp_path / 'rl.db'}",
        redis_url="redis://127.0.0.1:1/0",
        rate_limit=5,
        rate_limit_fail_closed=fail_closed,
    )
    try:
        client_id, secret = server.create_client(scope="s", audiences=[API])
        response = httpx.post(
            server.settings.token_endpoint,
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret or ""),
        )
        assert response.status_code == status
        if fail_closed:
            assert response.json()["error"] == "temporarily_unavailable"
            assert response.headers["Retry-After"] == "1"
    finally:
        server.stop()


def test_a_rate_limited_assertion_stays_usable(limited: LiveServer) -> None:
    """Issue 12 item 7: the 429 must not record the assertion's jti (RFC 7523 §3 item 7 is
    about assertions the server accepted), so the client's retry with it succeeds."""
    client_id, key = limited.create_jwt_client(scope="s", audiences=[API])
    with httpx.Client(base_url=limited.url) as http:

        def token(assertion: str) -> httpx.Response:
            return http.post(
                "/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": JWT_BEARER,
                    "client_assertion": assertion,
                },
            )

        for _ in range(3):
            assert token(limited.assertion(client_id, key)).status_code == 200
        kept = limited.assertion(client_id, key)
        assert token(kept).status_code == 429
        # A full bucket again, without waiting for the refill.
        limiter = limited.context.rate_limiter
        if isinstance(limiter, MemoryRateLimiter):
            limiter._buckets.clear()
        else:
            asyncio.run(_forget_redis_bucket(client_id))
        retried = token(kept)
        assert retried.status_code == 200, retried.text
        replayed = token(kept)  # accepted once: now it is used
        assert replayed.status_code == 401
        assert replayed.json()["error_description"] == "client assertion already used"


async def _forget_redis_bucket(client_id: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS)
    try:
        await redis.delete("sealring:ratelimit:" + client_id)
    finally:
        await redis.aclose()
