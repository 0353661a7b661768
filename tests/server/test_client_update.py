"""``ClientRepository.update``: every registered field replaced, on both databases."""

from __future__ import annotations

import dataclasses

from sealring.db import make_engine, upgrade
from sealring.server.clients import new_client
from sealring.server.stores.clients import ClientRepository


def test_update_replaces_every_field_and_keeps_the_creation_time(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        repo = ClientRepository(engine, clock=lambda: 100.0)
        client = new_client(name="a", scope="x", audiences=["https://a"], now=50.0)
        other = new_client(name="b", scope="y", audiences=["https://b"], now=60.0)
        repo.add(client, b"h" * 32)
        repo.add(other, b"o" * 32)
        changed = new_client(
            name="renamed",
            scope="x y",
            audiences=["https://api", "https://other"],
            redirect_uris=["https://app.example/cb"],
            auth_method="client_secret_post",
        )
        changed = dataclasses.replace(
            changed, client_id=client.client_id, created_at=50.0, secret_hash=b"n" * 32
        )
        assert repo.update(changed) is True
        stored = repo.get(client.client_id)
        assert stored == dataclasses.replace(changed, created_at=50.0)
        assert stored.secret_hash == b"n" * 32
        # the other client is untouched
        assert repo.get(other.client_id) == dataclasses.replace(other, secret_hash=b"o" * 32)
        # a public client: no secret hash, no grant
        public = dataclasses.replace(
            new_client(name="p", public=True), client_id=client.client_id, created_at=50.0
        )
        assert repo.update(public) is True
        again = repo.get(client.client_id)
        assert again is not None
        assert (again.public, again.secret_hash, again.grant_types) == (True, None, ())
        missing = dataclasses.replace(public, client_id="nosuchclient")
        assert repo.update(missing) is False
        assert repo.get("nosuchclient") is None
    finally:
        engine.dispose()
