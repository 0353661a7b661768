"""KeyManager on SQLite and PostgreSQL: lifecycle timing with an injected clock, JWKS,
revocation, KEK handling and replicas."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select

from sealring.jose.jwks import DEFAULT_MAX_KEYS as MAX_JWKS_KEYS
from sealring.jose.jwks import KeySet
from sealring.jose.jws import sign_compact, verify_compact
from sealring.keys import (
    JWKSDocument,
    KEKMismatch,
    KEKRing,
    KeyConfigError,
    KeyManager,
    KeyUnavailable,
    RotationPolicy,
    UnknownKey,
)
from sealring.keys.models import SigningKeyRow
from tests.helpers.clock import T0, FakeClock
from tests.helpers.keys import POLICY

Managers = Callable[..., KeyManager]


def _started(managers: Managers, url: str, **kwargs: object) -> KeyManager:
    manager = managers(url, **kwargs)
    manager.ensure_ready()
    return manager


def _states(manager: KeyManager) -> list[tuple[str, str]]:
    return sorted((k.alg, k.state) for k in manager.list_keys())


def _published(manager: KeyManager) -> set[str]:
    return {k["kid"] for k in json.loads(manager.jwks().body)["keys"]}


def test_first_start_creates_one_active_key_per_algorithm(
    database_url: str, managers: Managers
) -> None:
    manager = managers(database_url, policy=RotationPolicy(jwks_max_age=10))
    with pytest.raises(KeyUnavailable):
        manager.signer("ES256")
    manager.ensure_ready()
    assert _states(manager) == [("ES256", "active"), ("RS256", "active")]
    for alg in ("ES256", "RS256"):
        signer = manager.signer(alg)
        assert signer.alg == alg
        assert signer.kid == signer.public_jwk().thumbprint()  # RFC 7638 kid
        token = sign_compact(b"payload", signer)
        assert verify_compact(token, KeySet.from_json(manager.jwks().body)).payload == b"payload"
    with pytest.raises(KeyUnavailable):
        manager.signer("PS256")
    manager.ensure_ready()  # a second start changes nothing
    assert len(manager.list_keys()) == 2


def test_lifecycle_timeline(database_url: str, managers: Managers, clock: FakeClock) -> None:
    manager = _started(managers, database_url)
    first = manager.signer("ES256").kid
    etag = manager.jwks().etag

    clock.advance(1000 - 20 - 1)  # just before pre-publication starts
    assert manager.run_due() == []
    clock.advance(1)
    [created] = manager.run_due()
    assert (created.from_state, created.to_state) == (None, "pending")
    second = created.kid
    assert _published(manager) == {first, second}
    assert manager.jwks().etag != etag
    assert manager.signer("ES256").kid == first  # pending keys never sign

    clock.advance(20 - 0.5)
    assert manager.run_due() == []
    clock.advance(0.5)  # exactly 2 x max-age after publication
    steps = manager.run_due()
    assert [(t.kid, t.to_state) for t in steps] == [(first, "retired"), (second, "active")]
    assert manager.signer("ES256").kid == second
    assert _published(manager) == {first, second}

    clock.advance(POLICY.retention - 0.5)
    assert manager.run_due() == []
    clock.advance(0.5)
    [removed] = manager.run_due()
    assert (removed.kid, removed.to_state) == (first, "removed")
    assert _published(manager) == {second}
    with manager.engine.connect() as conn:
        row = conn.execute(select(SigningKeyRow).where(SigningKeyRow.kid == first)).one()
    assert row.private_enc is None
    assert row.kek_id is None

    trail = [(t.kid, t.from_state, t.to_state) for t in manager.events()]
    assert trail == [
        (first, None, "pending"),
        (first, "pending", "active"),
        (second, None, "pending"),
        (first, "active", "retired"),
        (second, "pending", "active"),
        (first, "retired", "removed"),
    ]
    info = {k.kid: k for k in manager.list_keys()}
    assert info[second].activated_at == T0 + 1000
    assert info[second].retires_at == T0 + 2000
    assert info[first].removed_at == T0 + 1000 + POLICY.retention


def test_long_outage_catches_up_in_one_tick(
    database_url: str, managers: Managers, clock: FakeClock
) -> None:
    manager = _started(managers, database_url)
    first = manager.signer("ES256").kid
    clock.advance(10 * 1000)  # nobody ran the schedule for ten rotation intervals
    manager.run_due()
    # The old key keeps signing until a successor has been published long enough.
    assert manager.signer("ES256").kid == first
    clock.advance(20)
    manager.run_due()
    assert manager.signer("ES256").kid != first
    assert _states(manager) == [("ES256", "active"), ("ES256", "retired")]


def test_manual_rotation_respects_prepublication_unless_now(
    database_url: str, managers: Managers, clock: FakeClock
) -> None:
    manager = _started(managers, database_url)
    first = manager.signer("ES256").kid
    [pending] = manager.rotate()
    assert pending.to_state == "pending"
    assert manager.rotate() == []  # already rotating
    assert manager.signer("ES256").kid == first
    clock.advance(20)
    manager.run_due()
    assert manager.signer("ES256").kid == pending.kid

    steps = manager.rotate("ES256", immediate=True)
    assert [t.to_state for t in steps] == ["pending", "retired", "active"]
    assert steps[-1].reason == "manual rotation (--now)"
    assert manager.events()[-1].reason == "manual rotation (--now)"
    assert manager.signer("ES256").kid == steps[0].kid


def test_revoking_the_active_key_promotes_the_pending_one(
    database_url: str, managers: Managers, clock: FakeClock
) -> None:
    manager = _started(managers, database_url)
    first = manager.signer("ES256").kid
    [pending] = manager.rotate()
    steps = manager.revoke(first, "key leaked in a backup")
    assert [(t.kid, t.to_state) for t in steps] == [(first, "revoked"), (pending.kid, "active")]
    assert first not in _published(manager)  # unpublished at once
    assert manager.signer("ES256").kid == pending.kid
    info = {k.kid: k for k in manager.list_keys()}
    assert info[first].revoke_reason == "key leaked in a backup"
    # Without a pending key a new one is made and signs at once.
    steps = manager.revoke(pending.kid, "again")
    assert [t.to_state for t in steps] == ["revoked", "pending", "active"]
    assert len(_published(manager)) == 1
    with pytest.raises(UnknownKey):
        manager.revoke("no-such-kid", "x")


def test_jwks_document_is_serialised_once_per_change(database_url: str, managers: Managers) -> None:
    manager = _started(managers, database_url)
    doc = manager.jwks()
    assert isinstance(doc, JWKSDocument)
    assert doc.max_age == 10
    assert doc.cache_control == "public, max-age=10"
    assert doc.etag.startswith('"')
    assert doc.etag.endswith('"')
    assert not doc.etag.startswith("W/")
    assert doc.matches(doc.etag)
    assert doc.matches(f'"x", {doc.etag}')
    assert not doc.matches('"x"')
    manager.refresh()
    manager.ensure_ready()
    assert manager.jwks() is doc  # nothing changed: the very same bytes
    for key in json.loads(doc.body)["keys"]:
        assert set(key) <= {"kty", "crv", "x", "y", "n", "e", "kid", "alg", "use"}


def test_replicas_see_each_others_changes(
    database_url: str, managers: Managers, clock: FakeClock
) -> None:
    a = managers(database_url)
    b = managers(database_url)
    a.ensure_ready()
    b.ensure_ready()
    assert a.jwks().body == b.jwks().body
    assert b.refresh() is False  # the cheap check: nothing changed
    [pending] = a.rotate()
    assert pending.kid not in _published(b)
    assert b.refresh() is True
    assert pending.kid in _published(b)
    # Both replicas reach the activation; only one performs it.
    clock.advance(20)
    done = a.run_due() + b.run_due()
    assert [t.to_state for t in done] == ["retired", "active"]
    assert a.signer("ES256").kid == b.signer("ES256").kid == pending.kid


def _visibility_delay(a: KeyManager, b: KeyManager, interval: float | None) -> float:
    """Seconds until ``b``, running its schedule, publishes a key that ``a`` just created."""
    a.ensure_ready()
    b.ensure_ready()

    async def scenario() -> float:
        task = asyncio.create_task(b.run_forever(interval))
        await asyncio.sleep(0.05)
        [pending] = await asyncio.to_thread(a.rotate)
        started = time.monotonic()
        deadline = started + 5
        while pending.kid not in _published(b) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        delay = time.monotonic() - started
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return delay

    return asyncio.run(scenario())


def test_run_forever_propagates_within_the_poll_interval(
    database_url: str, managers: Managers
) -> None:
    interval = 0.2
    delay = _visibility_delay(managers(database_url), managers(database_url), interval)
    print(
        f"replica visibility delay: {delay * 1000:.0f} ms (poll interval {interval * 1000:.0f} ms)"
    )
    assert delay < interval + 0.5


@pytest.mark.parametrize("interval", [5.0, None])
def test_run_forever_never_polls_slower_than_the_policy_allows(
    database_url: str, managers: Managers, interval: float | None
) -> None:
    """A 5 s poll (the server's) against a 1 s JWKS max-age would let a replica serve a JWKS
    without the pending key until after that key signs: the poll is lowered to 0.5 s."""
    policy = RotationPolicy(algorithms=("ES256",), rotation_interval=1000, jwks_max_age=1)
    assert policy.max_poll_interval == 0.5
    a, b = managers(database_url, policy=policy), managers(database_url, policy=policy)
    assert _visibility_delay(a, b, interval) < 0.5 + 0.5


def test_wrong_kek_names_the_keys_and_changes_nothing(
    database_url: str, managers: Managers, clock: FakeClock
) -> None:
    good = _started(managers, database_url)
    kid = good.signer("ES256").kid
    before = [k.to_dict() for k in good.list_keys()]
    clock.advance(5000)  # a rotation is overdue: a wrong KEK must still not start one
    wrong = managers(database_url, kek=KEKRing.from_string(KEKRing.generate_text()))
    with pytest.raises(KEKMismatch) as caught:
        wrong.ensure_ready()
    assert caught.value.code == "kek_mismatch"
    assert kid in str(caught.value)
    with pytest.raises(KEKMismatch):
        wrong.run_due(force=True)
    with pytest.raises(KEKMismatch):
        wrong.rotate()
    assert [k.to_dict() for k in good.list_keys()] == before


def test_kek_rotation_with_rewrap(
    database_url: str, managers: Managers, kek: KEKRing, clock: FakeClock
) -> None:
    old_text = KEKRing.generate_text()
    old = KEKRing.from_string(old_text)
    manager = managers(database_url, kek=old)
    manager.ensure_ready()
    kid = manager.signer("ES256").kid
    new_text = KEKRing.generate_text()
    both = managers(database_url, kek=KEKRing.from_string(f"{new_text},{old_text}"))
    both.ensure_ready()
    assert both.rewrap() == 1
    assert both.rewrap() == 0
    only_new = managers(database_url, kek=KEKRing.from_string(new_text))
    only_new.ensure_ready()
    assert only_new.signer("ES256").kid == kid
    with pytest.raises(KEKMismatch):
        managers(database_url, kek=old).ensure_ready()


def test_revocation_wins_over_a_replacement_this_replica_cannot_open(
    database_url: str, managers: Managers
) -> None:
    """Issue 10, item 1: mid KEK rotation the operator has ``NEW,OLD`` and a replica ``OLD``.

    ``keys revoke`` makes the replacement under NEW.  The replica cannot open it, yet it must
    stop signing with the revoked key and stop publishing it, and say which KEK it lacks.
    """
    old_text, new_text = KEKRing.generate_text(), KEKRing.generate_text()
    new_id = KEKRing.from_string(new_text).primary_id
    policy = dataclasses.replace(POLICY, algorithms=("ES256", "RS256"))
    old, both = KEKRing.from_string(old_text), KEKRing.from_string(f"{new_text},{old_text}")
    replica = _started(managers, database_url, kek=old, policy=policy)
    revoked = replica.signer("ES256").kid
    untouched = replica.signer("RS256").kid
    operator = _started(managers, database_url, kek=both, policy=policy)
    operator.revoke(revoked, "compromised")
    replacement = operator.signer("ES256").kid

    with pytest.raises(KEKMismatch) as caught:
        replica.tick()
    assert new_id in str(caught.value)
    assert replacement in str(caught.value)
    with pytest.raises(KeyUnavailable) as unavailable:
        replica.signer("ES256")
    assert new_id in str(unavailable.value)
    assert revoked not in _published(replica)
    assert replacement in _published(replica)  # its public key needs no KEK
    assert replica.signer("RS256").kid == untouched  # what it can open, it still signs with
    # Every later poll fails the same way and keeps the revoked key out.
    with pytest.raises(KEKMismatch):
        replica.tick()
    assert revoked not in _published(replica)


def test_prepublication_counts_from_the_first_serving_publication(
    database_url: str, managers: Managers, clock: FakeClock
) -> None:
    """Issue 12 item 6: a key created while no server ran (``sealring keys rotate``) went live
    at the server's start without its pre-publication window; it must wait the window from the
    moment a serving key manager first published it."""
    cli = managers(database_url, publishes=False)  # `sealring keys`: it serves no JWKS
    cli.ensure_ready()
    (made,) = [t for t in cli.rotate() if t.to_state == "pending"]
    clock.advance(10 * POLICY.prepublication_time)  # no server ran meanwhile
    cli.run_due(force=True)
    assert ("pending", made.kid) in {(k.state, k.kid) for k in cli.list_keys()}

    server = managers(database_url)
    server.ensure_ready()
    started = clock.now
    assert made.kid in _published(server)
    assert server.signer("ES256").kid != made.kid
    clock.advance(POLICY.prepublication_time - 1)
    server.tick()
    assert server.signer("ES256").kid != made.kid
    clock.advance(1)
    server.tick()
    assert server.signer("ES256").kid == made.kid
    info = next(k for k in server.list_keys() if k.kid == made.kid)
    assert info.published_at == started
    assert info.activated_at == started + POLICY.prepublication_time


def test_a_key_the_server_creates_is_published_when_created(
    database_url: str, managers: Managers, clock: FakeClock
) -> None:
    server = managers(database_url)
    server.ensure_ready()
    clock.advance(POLICY.rotation_interval - POLICY.prepublication_time)
    (made,) = [t for t in server.tick() if t.to_state == "pending"]
    info = next(k for k in server.list_keys() if k.kid == made.kid)
    assert info.published_at == clock.now
    assert info.activates_at == clock.now + POLICY.prepublication_time


def test_manual_rotations_never_publish_more_keys_than_verifiers_accept(
    database_url: str, managers: Managers, clock: FakeClock
) -> None:
    manager = _started(managers, database_url)
    refused = None
    for _ in range(MAX_JWKS_KEYS + 5):
        try:
            manager.rotate("ES256", immediate=True)
        except KeyConfigError as exc:
            refused = exc
            break
        clock.advance(0.01)  # far inside the tokens' lifetime: nothing retires for good
    assert refused is not None, "a loop of --now rotations went past the JWK Set cap"
    assert f"more than {MAX_JWKS_KEYS} keys" in refused.message
    # The published set is as large as allowed and no larger, and a verifier takes it whole.
    document = manager.jwks()
    keys = json.loads(document.body)["keys"]
    assert MAX_JWKS_KEYS - len(POLICY.algorithms) < len(keys) <= MAX_JWKS_KEYS
    KeySet.from_dict({"keys": keys})
    # The refusal changed nothing: the next scheduled step still works.
    assert manager.signer("ES256").kid in {k["kid"] for k in keys}
