"""The fault-injection services themselves: a private PostgreSQL cluster and Redis server that
stop, hang and come back as the fault tests need (tests/helpers/services.py)."""

from __future__ import annotations

import time

import psycopg
import pytest
import redis

from tests.helpers.services import postgres_cluster, redis_server

pytestmark = pytest.mark.slow


def _pg(port: int, timeout: float = 2.0) -> psycopg.Connection:
    return psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=timeout, autocommit=True
    )


def test_private_postgres_stops_hangs_and_keeps_its_data() -> None:
    with postgres_cluster() as cluster:
        assert cluster.port != 5432
        with _pg(cluster.port) as conn:
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")

        cluster.pause()
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            _pg(cluster.port, timeout=1)
        assert time.monotonic() - started < 5  # hung: the client gives up, nothing answers
        cluster.resume()

        cluster.stop()
        with pytest.raises(psycopg.OperationalError):
            _pg(cluster.port)
        cluster.start()
        with _pg(cluster.port) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]


def test_private_redis_stops_and_hangs() -> None:
    with redis_server() as server:
        assert server.port != 6379
        client = redis.Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        assert client.ping()
        server.pause()
        with pytest.raises(redis.TimeoutError):
            client.ping()
        server.resume()
        assert redis.Redis.from_url(server.url, socket_timeout=2).ping()
        server.stop()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(server.url, socket_connect_timeout=0.5).ping()
        client.close()
