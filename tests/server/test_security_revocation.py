"""Revoking a signing key wins over availability on every replica (issue 10, item 1).

The failure seen before: mid KEK rotation (the operator's shell has ``NEW,OLD``, a replica
still runs with ``OLD``) ``sealring keys revoke`` makes the replacement key under ``NEW``; the
replica could not reload, kept its old snapshot, and went on signing with the revoked key,
publishing it, calling its tokens active and saying it was ready.
"""

from __future__ import annotations

import time

import httpx

from sealring.db import make_engine
from sealring.jose.jws import parse_compact
from sealring.keys import KEKRing, KeyManager
from tests.helpers.server import KEK, LiveServer, running_server

API = "https://api.example.test"


def _issue(http: httpx.Client, client: tuple[str, str]) -> httpx.Response:
    return http.post("/token", data={"grant_type": "client_credentials"}, auth=client)


def _revoke_with_a_kek_the_replica_lacks(replica: LiveServer, kid: str) -> str:
    """``keys revoke`` from an operator holding ``NEW,OLD``; returns NEW's id."""
    new = KEKRing.generate_text()
    engine = make_engine(replica.settings.database_url)
    try:
        operator = KeyManager(
            engine,
            kek=KEKRing.from_string(f"{new},{KEK}"),
            policy=replica.settings.rotation_policy(),
        )
        operator.ensure_ready()
        operator.revoke(kid, "compromised (test)")
        operator.close()
    finally:
        engine.dispose()
    return KEKRing.from_string(new).primary_id


def test_a_replica_that_cannot_open_the_replacement_stops_signing(
    module_database_url: str,
) -> None:
    with running_server(module_database_url, key_poll_interval=0.05) as replica:
        client_id, secret = replica.create_client(scope="read", audiences=[API])
        assert secret is not None
        client = (client_id, secret)
        with httpx.Client(base_url=replica.url, timeout=10) as http:
            before = _issue(http, client).json()["access_token"]
            revoked = parse_compact(before).kid
            assert revoked is not None
            new_id = _revoke_with_a_kek_the_replica_lacks(replica, revoked)

            deadline = time.monotonic() + 15
            while http.get("/readyz").status_code == 200:
                assert time.monotonic() < deadline, "the replica never noticed the revocation"
                time.sleep(0.05)
            ready = http.get("/readyz")
            assert ready.status_code == 503
            assert new_id in ready.json()["reason"]

            refused = _issue(http, client)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "temporarily_unavailable"
            kids = {k["kid"] for k in http.get("/jwks.json").json()["keys"]}
            assert revoked not in kids
            introspected = http.post("/introspect", data={"token": before}, auth=client)
            assert introspected.json() == {"active": False}
