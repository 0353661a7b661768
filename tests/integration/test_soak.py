"""Rotation soak (issue 12, docs/reliability.md): two replicas on one private PostgreSQL cluster
rotate as fast as the schedule rules allow with ``unsafe_key_schedule`` for verifiers with a 2 s
refetch cooldown, while ``sealring example-api`` and a node ``jose`` resource server verify every
token at once and again later. No valid token may be rejected, no request may get a 5xx.

The suite runs it for ``SOAK_SECONDS`` (60 s, about 7 rotations); the long run of
docs/reliability.md sets ``SEALRING_SOAK_SECONDS``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.helpers.deployment import AUDIENCE, ISSUER, Deployment
from tests.helpers.services import PostgresCluster, free_port, postgres_cluster, wait_for_port
from tests.integration.test_faults import _env

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SOAK_SECONDS = float(os.environ.get("SEALRING_SOAK_SECONDS", "60"))
# The schedule: the rule (pre-publication >= cooldown + max-age + poll) for 2 s cooldowns.
COOLDOWN = 2.0
JWKS_MAX_AGE = 1
POLL = 0.5
PREPUBLICATION = 5.0  # >= 2 + 1 + 0.5
ROTATION = 8.0
TOKEN_LIFETIME = 30
REVERIFY_AFTER = 5.0


@dataclass
class Counts:
    issued: int = 0
    verified: int = 0
    rejected: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    kids: set[str] = field(default_factory=set)


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with postgres_cluster() as found:
        yield found


def _spawn(command: list[str], log: Path, port: int) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30)
    except TimeoutError:
        child.kill()
        raise AssertionError(log.read_text()[-2000:]) from None
    return child


def _verify(http: httpx.Client, url: str, token: str, counts: Counts, what: str) -> None:
    response = http.get(url, headers={"Authorization": f"Bearer {token}"})
    counts.verified += 1
    if response.status_code >= 500:
        counts.server_errors.append(f"{what}: {response.status_code}")
    elif response.status_code != 200:
        counts.rejected.append(f"{what}: {response.status_code} {response.text[:200]}")


def test_rotation_soak_rejects_no_valid_token(cluster: PostgresCluster, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is required (scripts/system-deps.sh)"
    env = _env(
        cluster.url,
        SEALRING_KEY_ALGORITHMS="ES256",
        SEALRING_JWKS_MAX_AGE=str(JWKS_MAX_AGE),
        SEALRING_KEY_PREPUBLICATION=str(PREPUBLICATION),
        SEALRING_KEY_POLL_INTERVAL=str(POLL),
        SEALRING_ROTATION_INTERVAL=str(ROTATION),
        SEALRING_TOKEN_LIFETIME=str(TOKEN_LIFETIME),
        SEALRING_KEY_LEEWAY="5",
        SEALRING_UNSAFE_KEY_SCHEDULE="true",
        SEALRING_CLIENT_CACHE_TTL="5",
    )
    deployment = Deployment(env, tmp_path)
    children: list[subprocess.Popen[bytes]] = []
    try:
        replicas = deployment.add_replicas(2)
        client = deployment.create_client()
        api_port, node_port = free_port(), free_port()
        children.append(
            _spawn(
                [sys.executable, "-m", "sealring", "example-api", "--issuer", ISSUER,
                 "--audience", AUDIENCE, "--jwks-uri", replicas[0].url + "/jwks.json",
                 "--port", str(api_port), "--jwks-cooldown", str(COOLDOWN),
                 "--jwks-min-max-age", str(JWKS_MAX_AGE)],
                tmp_path / "example-api.log", api_port,
            )
        )  # fmt: skip
        children.append(
            _spawn(
                [node, str(NODE_DIR / "jose_api.mjs"), str(node_port),
                 replicas[1].url + "/jwks.json", ISSUER, AUDIENCE,
                 str(int(COOLDOWN * 1000)), str(JWKS_MAX_AGE * 1000)],
                tmp_path / "jose.log", node_port,
            )
        )  # fmt: skip
        verifiers = {
            "example-api": f"http://127.0.0.1:{api_port}/api/hello",
            "jose": f"http://127.0.0.1:{node_port}/verify",
        }
        counts = Counts()
        later: deque[tuple[float, str]] = deque()
        started = time.monotonic()
        with httpx.Client(auth=client, timeout=10) as http, httpx.Client(timeout=10) as api:
            i = 0
            while time.monotonic() - started < SOAK_SECONDS:
                replica = replicas[i % 2]
                i += 1
                response = http.post(
                    replica.url + "/token", data={"grant_type": "client_credentials"}
                )
                if response.status_code >= 500:
                    counts.server_errors.append(f"{replica.name} /token: {response.status_code}")
                    continue
                assert response.status_code == 200, response.text
                token = response.json()["access_token"]
                counts.issued += 1
                counts.kids.add(_kid(token))
                for name, url in verifiers.items():
                    _verify(api, url, token, counts, f"{name} fresh")
                later.append((time.monotonic() + REVERIFY_AFTER, token))
                while later and later[0][0] <= time.monotonic():
                    _, old = later.popleft()
                    for name, url in verifiers.items():
                        _verify(api, url, old, counts, f"{name} later")
                time.sleep(0.02)
        for replica in replicas:
            assert replica.proc is not None
            assert replica.proc.poll() is None
        rotations = len(counts.kids) - 1
        print(
            f"soak {SOAK_SECONDS:.0f} s: {rotations} rotations, {counts.issued} tokens, "
            f"{counts.verified} verifications, {len(counts.rejected)} rejected, "
            f"{len(counts.server_errors)} 5xx"
        )
        assert counts.rejected == []
        assert counts.server_errors == []
        assert rotations >= SOAK_SECONDS / ROTATION - 2
    finally:
        for child in children:
            child.terminate()
            child.wait(10)
        for replica in deployment.replicas:
            replica.stop()


def _kid(token: str) -> str:
    from sealring.jose.jws import parse_compact

    kid = parse_compact(token).kid
    assert kid is not None
    return kid
