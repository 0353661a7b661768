"""The central promise, across real processes: keys rotate without breaking anyone.

"The next key is published before it signs, the old one stays published until every token it
signed has expired", with several ``sealring serve`` replicas sharing PostgreSQL, one issuer
(what a load-balanced deployment looks like: the issuer is an identifier, each replica listens on
its own port) and a resource server whose ``JWKSClient`` reads the JWKS of one replica.

A client takes tokens round-robin from the replicas; the resource side verifies each one right
after issue and again later, before it expires (a resource server receiving old tokens), with the
verified-token cache off so that every check is a full signature check against its cached JWKS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from sealring.jose.jws import parse_compact
from sealring.keys import RotationPolicy
from sealring.resource import AccessTokenVerifier, InvalidToken, JWKSClient, JWKSSettings
from tests.helpers.deployment import (
    AUDIENCE,
    ISSUER,
    JWKS_MAX_AGE,
    TOKEN_LIFETIME,
    Deployment,
    Replica,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# What the replicas run: the server's key manager with its defaults and these settings.
POLICY = RotationPolicy(jwks_max_age=JWKS_MAX_AGE)

ROTATE_EVERY = 6.0  # an operator's `sealring keys rotate`; activation: +2 x max-age
REVERIFY_AFTER = 8.0  # verify again once at least one more rotation has happened
ISSUE_PAUSE = 0.04
JWKS_SNAPSHOT_EVERY = 0.25  # how often the test reads every replica's JWKS


@dataclass
class Issued:
    token: str
    kid: str
    replica: str
    at: float
    exp: float
    reverified: bool = False


class FetchLog(httpx.BaseTransport):
    """The resource server's transport, recording when each JWKS fetch happened."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.times: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(time.time())
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Run:
    """What one run observed."""

    issued: list[Issued] = field(default_factory=list)
    verified: int = 0
    failures: list[str] = field(default_factory=list)
    unavailable: dict[str, int] = field(default_factory=dict)
    key_lists: list[list[dict[str, object]]] = field(default_factory=list)
    published: list[tuple[float, str, frozenset[str]]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    final_checks: int = 0


class Operator(threading.Thread):
    """Starts a rotation every ROTATE_EVERY s and lists the keys in between (the CLI)."""

    def __init__(self, deployment: Deployment, run: Run, rotations: int) -> None:
        super().__init__(daemon=True)
        self.deployment, self.run_, self.rotations = deployment, run, rotations
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            next_rotation = time.monotonic() + 1.0
            done = 0
            while not self.stop.is_set():
                if done < self.rotations and time.monotonic() >= next_rotation:
                    self.deployment.cli("keys", "rotate")
                    done += 1
                    next_rotation += ROTATE_EVERY
                self.run_.key_lists.append(self.deployment.keys())
                self.stop.wait(1.5)
        except BaseException as exc:
            self.run_.errors.append(exc)


# The floor lowered to the compressed max-age; the cooldown too, or it would hold back the
# max-age refreshes themselves (it counts from the last fetch of any kind).
RESOURCE_JWKS = JWKSSettings(
    min_max_age=JWKS_MAX_AGE, default_max_age=JWKS_MAX_AGE, cooldown=JWKS_MAX_AGE
)


def _check(verifier: AccessTokenVerifier, run: Run, item: Issued, when: str) -> None:
    try:
        claims = verifier.verify(item.token)
    except InvalidToken as exc:
        run.failures.append(f"{when}: {item.replica} kid {item.kid} at {item.at:.2f}: {exc}")
        return
    assert claims.kid == item.kid
    run.verified += 1


def _publications(http: httpx.Client, replicas: list[Replica], run: Run) -> None:
    """Every replica's JWKS now; each live token's key must be in every one of them."""
    now = time.time()
    for replica in replicas:
        try:
            body = http.get(replica.url + "/jwks.json").json()
        except httpx.TransportError:
            continue
        kids = frozenset(str(k["kid"]) for k in body["keys"])
        run.published.append((now, replica.name, kids))
        for item in run.issued:
            if item.exp > now and item.kid not in kids:
                run.failures.append(f"{replica.name} unpublished live kid {item.kid}")


def _drive(
    deployment: Deployment,
    seconds: float,
    rotations: int,
    during: Callable[[float, list[Replica]], None] = lambda elapsed, live: None,
) -> tuple[Run, FetchLog]:
    """Issue, verify and re-verify for ``seconds``; ``during`` may kill and restart replicas."""
    run = Run()
    replicas = deployment.replicas
    client_id, secret = deployment.create_client()
    fetches = FetchLog()
    operator = Operator(deployment, run, rotations)
    with (
        httpx.Client(auth=(client_id, secret), timeout=5) as http,
        JWKSClient(
            replicas[0].url + "/jwks.json", settings=RESOURCE_JWKS, transport=fetches
        ) as jwks,
        AccessTokenVerifier(ISSUER, audience=AUDIENCE, keys=jwks, cache_size=0) as verifier,
    ):
        started = time.monotonic()
        operator.start()
        try:
            i = 0
            next_jwks_check = 0.0
            while (elapsed := time.monotonic() - started) < seconds and not run.errors:
                during(elapsed, replicas)
                replica = replicas[i % len(replicas)]
                i += 1
                try:
                    response = http.post(
                        replica.url + "/token", data={"grant_type": "client_credentials"}
                    )
                except httpx.TransportError:
                    run.unavailable[replica.name] = run.unavailable.get(replica.name, 0) + 1
                    continue
                assert response.status_code == 200, response.text
                token = response.json()["access_token"]
                kid = parse_compact(token).kid
                assert kid is not None
                item = Issued(token, kid, replica.name, time.time(), time.time() + TOKEN_LIFETIME)
                run.issued.append(item)
                _check(verifier, run, item, "fresh")
                for old in run.issued:
                    if not old.reverified and item.at - old.at >= REVERIFY_AFTER:
                        old.reverified = True
                        _check(verifier, run, old, "later")
                if elapsed >= next_jwks_check:
                    next_jwks_check = elapsed + JWKS_SNAPSHOT_EVERY
                    _publications(http, replicas, run)
                time.sleep(ISSUE_PAUSE)
        finally:
            operator.stop.set()
            operator.join(timeout=60)
        if run.errors:
            raise run.errors[0]
        # Every token still unexpired, once more: they span more than one rotation. On a loaded
        # machine the loop can overrun (a CLI rotation taking seconds), so the oldest tokens may
        # have expired by now; a resource server refuses those anyway, so they are not asked.
        live = [item for item in run.issued if item.exp > time.time() + 1.0]
        assert len({item.kid for item in live}) >= 2, (len(live), len(run.issued))
        for item in live:
            _check(verifier, run, item, "final")
        run.final_checks = len(live)
        _publications(http, replicas, run)
    run.key_lists.append(deployment.keys())
    return run, fetches


def _activations(run: Run, alg: str | None = "ES256", since: float = 0.0) -> dict[str, float]:
    """kid -> activated_at of every key of ``alg`` (None: any) created after ``since``, from
    `sealring keys list --json`."""
    found: dict[str, float] = {}
    for infos in run.key_lists:
        for info in infos:
            at, created = info["activated_at"], info["created_at"]
            assert isinstance(created, float)
            if alg in (None, info["alg"]) and isinstance(at, float) and created > since:
                found[str(info["kid"])] = at
    return found


def _prepublication_leads(run: Run, replicas: list[str], since: float) -> list[float]:
    """For every key that started as pending after ``since``, on every replica: how long before
    its activation the replica's JWKS was first seen publishing it (at most JWKS_SNAPSHOT_EVERY
    less than the truth)."""
    leads = []
    for kid, at in _activations(run, None, since).items():
        for name in replicas:
            seen = [t for t, where, kids in run.published if where == name and kid in kids]
            assert seen, (kid, name)
            leads.append(at - min(seen))
    return leads


def _check_invariants(run: Run) -> None:
    for infos in run.key_lists:
        for alg in ("ES256", "RS256"):
            active = [i["kid"] for i in infos if i["alg"] == alg and i["state"] == "active"]
            assert len(active) == 1, (alg, infos)
            pending = [i for i in infos if i["alg"] == alg and i["state"] == "pending"]
            assert len(pending) <= 1, (alg, infos)
    # Nothing ever signed with a key before it was active.
    activations = _activations(run, None)
    for item in run.issued:
        assert item.kid in activations, item
        assert item.at >= activations[item.kid], (item, activations[item.kid])


def _switch_delays(run: Run, replicas: list[str]) -> list[float]:
    """For each rotation seen in tokens: when the last replica first signed with the new key,
    measured from the activation recorded in the database."""
    activations = sorted(_activations(run).items(), key=lambda kv: kv[1])
    first_use: dict[tuple[str, str], float] = {}
    for item in run.issued:
        first_use.setdefault((item.replica, item.kid), item.at)
    delays = []
    for kid, at in activations[1:]:
        seen = [first_use.get((name, kid)) for name in replicas]
        if all(t is not None for t in seen):
            delays.append(max(t for t in seen if t is not None) - at)
    return delays


def _report(
    title: str, run: Run, fetches: FetchLog, delays: list[float], leads: list[float]
) -> None:
    kids = [item.kid for item in run.issued]
    print(
        f"\n{title}: {len(run.issued)} tokens issued, {run.verified} verifications, "
        f"{len(run.failures)} failures, {len(set(kids))} signing kids, {len(delays)} rotations "
        f"seen by every replica, max switch delay {max(delays, default=float('nan')):.3f} s, "
        f"min pre-publication lead {min(leads, default=float('nan')):.3f} s, "
        f"{len(fetches.times)} JWKS fetches, unavailable {run.unavailable}"
    )


def _refetches_on_unknown_kid(fetches: FetchLog) -> int:
    """Fetches sooner than one max-age after the previous one: an unknown ``kid`` forced them."""
    gaps = [b - a for a, b in zip(fetches.times, fetches.times[1:], strict=False)]
    return sum(1 for gap in gaps if gap < JWKS_MAX_AGE - 0.05)


def test_rotation_under_three_replicas(deployment: Deployment) -> None:
    replicas = deployment.add_replicas(3)
    ready = time.time()
    run, fetches = _drive(deployment, seconds=25, rotations=3)
    names = [r.name for r in replicas]
    delays = _switch_delays(run, names)
    leads = _prepublication_leads(run, names, since=ready)
    _report("three replicas", run, fetches, delays, leads)

    assert run.failures == []
    assert run.unavailable == {}
    _check_invariants(run)
    assert len(delays) >= 2, delays  # at least two rotations, each reaching every replica
    assert len({item.kid for item in run.issued}) >= 3
    assert run.final_checks > 0
    assert run.verified == len(run.issued) + run.final_checks + sum(
        i.reverified for i in run.issued
    )
    # Pre-publication did the work: every replica published each new key at least one max-age
    # before it signed, and the resource server never had to refetch for a new kid.
    assert len(leads) >= 2 * 2 * len(replicas)  # two algorithms
    assert min(leads) >= JWKS_MAX_AGE, leads
    assert _refetches_on_unknown_kid(fetches) == 0, fetches.times
    assert max(delays) < POLICY.max_poll_interval + 1.5


def test_rotation_survives_a_replica_killed_and_restarted(deployment: Deployment) -> None:
    replicas = deployment.add_replicas(2)
    events: dict[str, float] = {}

    def fault(elapsed: float, live: list[Replica]) -> None:
        victim = live[1]
        if "killed" not in events and elapsed >= 3.0:  # a pending key is waiting to activate
            victim.sigkill()
            events["killed"] = time.time()
        elif "restarted" not in events and elapsed >= 6.0:
            victim.start()
            victim.wait_ready()
            events["restarted"] = time.time()

    run, fetches = _drive(deployment, seconds=24, rotations=3, during=fault)
    names = [r.name for r in replicas]
    delays = _switch_delays(run, names)
    leads = _prepublication_leads(run, names, since=events["restarted"])
    _report("replica killed and restarted", run, fetches, delays, leads)

    assert run.failures == []
    _check_invariants(run)
    assert set(run.unavailable) <= {"replica1"}
    assert replicas[1].starts == 2
    # The restarted replica joined: it issued tokens, and signed with a key activated after
    # its restart, as did the survivor.
    activations = _activations(run)
    later = {kid for kid, at in activations.items() if at > events["restarted"]}
    assert later, activations
    for name in ("replica0", "replica1"):
        assert any(i.replica == name and i.kid in later for i in run.issued), name
    assert len(delays) >= 2, delays
    assert leads, leads
    assert min(leads) >= JWKS_MAX_AGE, leads
    assert _refetches_on_unknown_kid(fetches) == 0, fetches.times
