"""Per-client token bucket: in memory, in Redis (127.0.0.1:6379), and failing closed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sealring.server.errors import RateLimited, TemporarilyUnavailable
from sealring.server.ratelimit import MemoryRateLimiter, RedisRateLimiter
from tests.helpers.server import LiveServer, start_server

REDIS = "redis://127.0.0.1:6379/0"
API = "https://api.example.test"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_bucket_refills_at_rate() -> None:
    clock = Clock()
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


def test_redis_down_fails_closed() -> None:
    async def run() -> None:
        limiter = RedisRateLimiter("redis://127.0.0.1:1/0", 10, 10)
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


def test_token_endpoint_503_when_redis_is_down(tmp_path: Path) -> None:
    server = start_server(
        f"sqlite:///{tmp_path / 'rl.db'}", redis_url="redis://127.0.0.1:1/0", rate_limit=5
    )
    try:
        client_id, secret = server.create_client(scope="s", audiences=[API])
        response = httpx.post(
            server.settings.token_endpoint,
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret or ""),
        )
        assert response.status_code == 503
        assert response.json()["error"] == "temporarily_unavailable"
    finally:
        server.stop()
