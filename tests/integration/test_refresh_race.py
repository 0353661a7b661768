"""Twenty concurrent uses of one refresh token across two ``sealring serve`` processes.

docs/login.md, "Refresh tokens": of N concurrent uses of one token, one rotation wins, every
other request gets ``invalid_grant``, and the family ends up revoked.  The two processes share
one database and nothing else, so only the database can decide the race; a check-then-write in
Python would let two requests win.  On PostgreSQL the row lock and the guarded ``UPDATE``
decide; on SQLite the write lock, taken by each process's writer for a group of grants that
commit together (``sealring.server.sqlite_writer``), so several uses of the token land in one
group and the reuse revocation must survive its own request's error.
"""

from __future__ import annotations

import threading
from collections import Counter
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers.deployment import Deployment, Replica
from tests.helpers.login import OffsetClock, RegisteredClient, UserAgent, build_world, tokens
from tests.helpers.ports import free_port

pytestmark = pytest.mark.timeout(180)

USES = 20


def _on(replica: Replica, url: str) -> str:
    """The same endpoint path on ``replica``'s own address."""
    return replica.url + urlsplit(url).path


@pytest.mark.parametrize(
    "database", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
)
def test_concurrent_refresh_across_two_processes(
    database: str, request: pytest.FixtureRequest
) -> None:
    deployment: Deployment = request.getfixturevalue(
        "deployment" if database == "postgresql" else "sqlite_deployment"
    )
    first_port = free_port()
    env = {
        **deployment.env,
        "SEALRING_ISSUER": f"http://127.0.0.1:{first_port}",
    }
    replicas = [Replica("replica0", first_port, env, deployment.folder)]
    replicas.append(Replica("replica1", free_port(), env, deployment.folder))
    deployment.replicas.extend(replicas)
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.wait_ready()

    world = build_world(
        replicas[0].url,
        env["SEALRING_DATABASE_URL"],
        OffsetClock(),
        environ={"SEALRING_KEK": env["SEALRING_KEK"]},
    )
    agent = UserAgent(world.issuer)
    try:
        _, body = tokens(
            world, agent, world.confidential, scope="openid offline_access", prompt="consent"
        )
    finally:
        agent.close()
    client: RegisteredClient = world.confidential
    assert client.secret is not None
    refresh_token = body["refresh_token"]
    token_urls = [_on(replica, world.provider.token_endpoint) for replica in replicas]

    barrier = threading.Barrier(USES)
    answers: list[httpx.Response | None] = [None] * USES

    def use(i: int) -> None:
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            answers[i] = http.post(
                token_urls[i % 2],
                data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                auth=(client.client_id, client.secret or ""),
            )

    threads = [threading.Thread(target=use, args=(i,)) for i in range(USES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done = [answer for answer in answers if answer is not None]
    assert len(done) == USES

    outcome = Counter(
        "ok" if r.status_code == 200 else f"{r.status_code} {r.json().get('error')}" for r in done
    )
    assert outcome == {"ok": 1, "400 invalid_grant": USES - 1}, outcome
    # The family is revoked: the winner's successor and access token are dead too.
    winner = next(r for r in done if r.status_code == 200).json()
    for url in token_urls:
        late = httpx.post(
            url,
            data={"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]},
            auth=(client.client_id, client.secret),
            timeout=10,
        )
        assert late.status_code == 400
        assert late.json()["error"] == "invalid_grant"
    for replica in replicas:
        info = httpx.get(
            _on(replica, world.provider.userinfo_endpoint),
            headers={"Authorization": f"Bearer {winner['access_token']}"},
            timeout=10,
        )
        assert info.status_code == 401
    # No process logged a server error while losing the race.
    for replica in replicas:
        assert "Traceback" not in replica.output()
