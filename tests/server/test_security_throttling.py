"""Throttling before authentication (issue 10, item 11).

Unknown client ids used to cost a database query each and to push real clients out of the
client cache, and ``/introspect``, ``/revoke`` and ``/readyz`` had no limit at all.  Now every
caller address has a token bucket that is taken before anything is read or looked up, and
unknown ids are cached apart from known clients.
"""

from __future__ import annotations

import httpx
from sqlalchemy import event

from sealring.db import make_engine, upgrade
from sealring.server.clients import new_client
from sealring.server.stores.clients import ClientCache, ClientRepository
from tests.helpers.server import running_server


def test_a_flood_of_unknown_ids_neither_evicts_real_clients_nor_requeries(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    statements: list[str] = []
    try:
        upgrade(engine)
        repository = ClientRepository(engine)
        real = repository.add(new_client(name="real", scope="s"), b"\0" * 32)
        cache = ClientCache(repository, ttl=60.0, max_entries=10)
        assert cache.get(real.client_id) is not None
        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(str(args[2])))
        for n in range(50):
            assert cache.get(f"unknown-{n}") is None
        assert _lookups(statements) == 50  # one query per unknown id...
        for n in range(40, 50):
            assert cache.get(f"unknown-{n}") is None
        assert _lookups(statements) == 50  # ...the last ten are answered from memory...
        assert cache.cached(real.client_id) == (True, real)  # ...and the real client stays
    finally:
        engine.dispose()


def _lookups(statements: list[str]) -> int:
    return sum("FROM oauth_clients" in s for s in statements)


def test_every_caller_address_is_limited_before_authentication(module_database_url: str) -> None:
    with (
        running_server(module_database_url, ip_rate_limit=0.01, ip_rate_burst=4) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        # Four unauthenticated requests, across the endpoints: one bucket per address.
        form = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}
        assert http.post("/token", data=form).status_code == 401
        assert http.post("/introspect", data={"token": "x"}).status_code == 401
        assert http.post("/revoke", data={"token": "x"}).status_code == 401
        assert http.get("/readyz").status_code == 200
        for path in ("/token", "/introspect", "/revoke"):
            refused = http.post(path, data=form)
            assert refused.status_code == 429, path
            assert int(refused.headers["retry-after"]) >= 1
        assert http.get("/readyz").status_code == 429
        assert http.get("/healthz").status_code == 200  # liveness stays free: no I/O behind it
