"""Fault test (issue 12): the JWK Set source hangs, then goes down, under a running
``sealring example-api``.

The source is a real HTTP server on loopback (:class:`IssuerServer`) publishing a key set with
max-age 1 s, so the API's cached set goes stale every second. Hung: the server accepts each
request and never answers. Down: the server is stopped (connection refused). Throughout, tokens
signed with the known key must get 200 without waiting on the source (the set is refreshed in
the background), a token with an unknown kid gets 401 within the fetch timeout and, once a fetch
has failed, at once; never a 5xx, never a hang, and the process keeps running.

The figures of docs/reliability.md come from this test's printed summary (``-s``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sealring.jose.jwk import JWK
from tests.helpers.issuer import IssuerServer
from tests.helpers.ports import free_port
from tests.helpers.tokens import AUDIENCE, mint, new_key

TIMEOUT = 2.0  # --jwks-timeout
COOLDOWN = 2.0  # --jwks-cooldown
PHASE = 6.0  # seconds of load per fault: six max-ages, three cooldowns
#: A request with a known key must not wait on the source at all: far below TIMEOUT, with room
#: for a loaded machine (two cores shared with other test suites).
KNOWN_KID_BOUND = 1.0
#: A request with an unknown kid may wait for one fetch: TIMEOUT, plus the same room.
UNKNOWN_KID_BOUND = TIMEOUT + 1.0


@pytest.fixture
def example_api(issuer_server: IssuerServer, tmp_path: Path) -> Iterator[tuple[str, JWK]]:
    """``sealring example-api`` trusting ``issuer_server``; yields its URL and the signing key."""
    key = new_key("ES256", kid="k1")
    issuer_server.publish(key, max_age=1)
    port = free_port()
    command = [
        sys.executable, "-m", "sealring", "example-api",
        "--issuer", issuer_server.issuer, "--audience", AUDIENCE,
        "--jwks-uri", issuer_server.jwks_uri, "--port", str(port),
        "--jwks-min-max-age", "1", "--jwks-max-max-age", "1",
        "--jwks-cooldown", str(COOLDOWN), "--jwks-timeout", str(TIMEOUT),
        "--jwks-stale-if-error", "600",
    ]  # fmt: skip
    log = (tmp_path / "example-api.log").open("wb")
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                assert child.poll() is None, (tmp_path / "example-api.log").read_text()
                assert time.monotonic() < deadline, "example-api did not start"
                time.sleep(0.1)
        yield url, key
        assert child.poll() is None, "example-api exited during the faults"
    finally:
        child.terminate()
        child.wait(10)
        log.close()


class Load:
    """Calls ``/api/hello`` and records each answer's status and latency by kind of token."""

    def __init__(self, http: httpx.Client, issuer: str, key: JWK) -> None:
        self.http = http
        self.issuer = issuer
        self.key = key
        self.stranger = new_key("ES256", kid="k-unknown")
        self.repeated = mint(key, issuer=issuer, now=time.time(), lifetime=3600)
        self.seen: dict[str, list[tuple[int, float]]] = {"new": [], "repeated": [], "unknown": []}

    def call(self, kind: str) -> int:
        if kind == "new":  # a token never seen: the full verification, with the key set
            token = mint(self.key, issuer=self.issuer, now=time.time())
        elif kind == "repeated":  # the verified-token cache's path
            token = self.repeated
        else:
            token = mint(self.stranger, issuer=self.issuer, now=time.time())
        start = time.monotonic()
        response = self.http.get("/api/hello", headers={"Authorization": f"Bearer {token}"})
        self.seen[kind].append((response.status_code, time.monotonic() - start))
        return response.status_code

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            self.call("new")
            self.call("repeated")
            if i % 10 == 0:
                self.call("unknown")
            i += 1
            time.sleep(0.02)

    def check(self, label: str) -> None:
        for kind, bound, status in (
            ("new", KNOWN_KID_BOUND, 200),
            ("repeated", KNOWN_KID_BOUND, 200),
            ("unknown", UNKNOWN_KID_BOUND, 401),
        ):
            answers = self.seen[kind]
            assert answers, kind
            statuses = {s for s, _ in answers}
            assert statuses == {status}, (label, kind, statuses)
            slowest = max(t for _, t in answers)
            assert slowest < bound, (label, kind, slowest)
            print(
                f"{label}: {kind} kid: {len(answers)} x {status}, median "
                f"{statistics.median(t for _, t in answers):.3f} s, slowest {slowest:.3f} s"
            )
        # Only the first unknown kid after a fetch failed may wait; the others are answered at once.
        fast = [t for _, t in self.seen["unknown"] if t < KNOWN_KID_BOUND]
        assert len(fast) >= len(self.seen["unknown"]) // 2, (label, self.seen["unknown"])


def test_example_api_keeps_answering_while_the_jwks_source_hangs_then_is_down(
    example_api: tuple[str, JWK], issuer_server: IssuerServer
) -> None:
    url, key = example_api
    with httpx.Client(base_url=url, timeout=30) as http:
        healthy = Load(http, issuer_server.issuer, key)
        healthy.run(1.0)
        healthy.check("source up")

        issuer_server.delay = 3600  # accepts every request, never answers
        hung = Load(http, issuer_server.issuer, key)
        hung.run(PHASE)
        hung.check("source hung")
        assert len(issuer_server.jwks_fetches()) >= 3  # it was asked, in the background

        issuer_server.stop()
        down = Load(http, issuer_server.issuer, key)
        down.run(PHASE)
        down.check("source down")

        metrics = http.get("/metrics").text
        stale = [
            line
            for line in metrics.splitlines()
            if line.startswith("sealring_resource_jwks_stale_served_total ")
        ]
        assert stale, metrics
        assert float(stale[0].split()[1]) > 0
        assert 'sealring_resource_jwks_refresh_failures_total{code="jwks_fetch_failed"}' in metrics
