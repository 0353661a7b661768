"""The rotation schedule as pure functions: policy checks and property tests."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealring.keys import InvalidTransition, KeyConfigError, RotationPolicy
from sealring.keys.schedule import (
    ACTIVE,
    PENDING,
    PUBLISHED,
    REMOVED,
    RETIRED,
    REVOKED,
    KeyRecord,
    advance,
    mark_published,
    move,
    next_due,
)


def test_default_policy_matches_the_documented_defaults() -> None:
    policy = RotationPolicy()
    assert policy.algorithms == ("ES256", "RS256")
    assert policy.rotation_interval == 30 * 86400
    assert policy.jwks_max_age == 300
    assert policy.prepublication_time == 600
    assert policy.retention == 3600 + 60 + 300
    assert policy.poll_interval_time == 5
    assert policy.max_poll_interval == 150


@pytest.mark.parametrize(
    ("max_age", "prepublication", "bound", "poll"),
    [(300, None, 150, 5), (2, None, 1, 1), (1, None, 0.5, 0.5), (2, 30, 14, 5)],
)
def test_poll_interval_stays_within_what_pre_publication_covers(
    max_age: int, prepublication: float | None, bound: float, poll: float
) -> None:
    """poll + max-age <= pre-publication, with half the slack kept: a replica's JWKS, and every
    cache of it, has a pending key before any replica signs with it."""
    policy = RotationPolicy(
        rotation_interval=1000, jwks_max_age=max_age, prepublication=prepublication
    )
    assert policy.max_poll_interval == bound
    assert policy.poll_interval_time == poll
    assert policy.poll_interval_time + policy.jwks_max_age <= policy.prepublication_time


@pytest.mark.parametrize(
    "kwargs",
    [
        {"algorithms": ()},
        {"algorithms": ("HS256",)},
        {"algorithms": ("none",)},
        {"algorithms": ("ES256", "ES256")},
        {"prepublication": 599},  # less than twice the JWKS max-age
        {"rotation_interval": 600},  # not longer than pre-publication
        {"jwks_max_age": 0},
        {"leeway": -1},
        {"max_token_lifetime": float("inf")},
        {"poll_interval": 0},
        {"poll_interval": 151},  # slower than (600 - 300) / 2: a key could sign unseen
        {"poll_interval": float("nan")},
    ],
)
def test_policy_refuses_unsafe_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(KeyConfigError):
        RotationPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_from_env() -> None:
    policy = RotationPolicy.from_env(
        {"SEALRING_KEY_ALGORITHMS": "ES256, EdDSA", "SEALRING_JWKS_MAX_AGE": "60"}
    )
    assert policy.algorithms == ("ES256", "EdDSA")
    assert policy.prepublication_time == 120
    assert RotationPolicy.from_env({"SEALRING_ROTATION_INTERVAL": "7200"}).rotation_interval == 7200
    assert RotationPolicy.from_env({"SEALRING_KEY_POLL_INTERVAL": "2"}).poll_interval_time == 2
    with pytest.raises(KeyConfigError, match="SEALRING_KEY_LEEWAY"):
        RotationPolicy.from_env({"SEALRING_KEY_LEEWAY": "soon"})


def test_policy_from_env_reads_the_server_settings_as_the_server_does() -> None:
    """`sealring keys` beside a server configured by SEALRING_* applies the server's policy:
    the same algorithms (space- or comma-separated, plus the signing algorithm) and a max
    token lifetime covering the access-token lifetime."""
    server_env = {
        "SEALRING_KEY_ALGORITHMS": "ES256 RS256",
        "SEALRING_SIGNING_ALG": "PS256",
        "SEALRING_TOKEN_LIFETIME": "7200",
    }
    policy = RotationPolicy.from_env(server_env)
    assert policy.algorithms == ("ES256", "RS256", "PS256")
    assert policy.max_token_lifetime == 7200
    assert RotationPolicy.from_env({"SEALRING_TOKEN_LIFETIME": "600"}).max_token_lifetime == 3600
    explicit = {**server_env, "SEALRING_KEY_MAX_TOKEN_LIFETIME": "9000"}
    assert RotationPolicy.from_env(explicit).max_token_lifetime == 9000
    assert RotationPolicy.from_env({"SEALRING_SIGNING_ALG": "ES256"}) == RotationPolicy()
    with pytest.raises(KeyConfigError, match="SEALRING_TOKEN_LIFETIME"):
        RotationPolicy.from_env({"SEALRING_TOKEN_LIFETIME": "long"})


def test_state_machine_refuses_illegal_steps() -> None:
    record = KeyRecord(kid="k", alg="ES256", state=REMOVED, created_at=0)
    with pytest.raises(InvalidTransition):
        move(record, ACTIVE, 1)
    record = KeyRecord(kid="k", alg="ES256", state=PENDING, created_at=0)
    with pytest.raises(InvalidTransition):
        move(record, RETIRED, 1)


def _kids() -> object:
    counter = itertools.count()
    return lambda alg: f"{alg}-{next(counter)}"


policies = st.builds(
    lambda max_age, extra_prepub, interval_factor, lifetime, leeway, two: RotationPolicy(
        algorithms=("ES256", "RS256") if two else ("ES256",),
        jwks_max_age=max_age,
        prepublication=2 * max_age + extra_prepub,
        rotation_interval=(2 * max_age + extra_prepub) * interval_factor,
        max_token_lifetime=lifetime,
        leeway=leeway,
    ),
    st.floats(1, 1000),
    st.floats(0, 1000),
    st.floats(1.01, 50),
    st.floats(1, 50_000),
    st.floats(0, 300),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    policy=policies,
    gaps=st.lists(st.floats(0, 1), min_size=1, max_size=60),
    scale=st.floats(0.01, 3),
    sign_at=st.lists(st.floats(0, 1), min_size=60, max_size=60),
    lifetimes=st.lists(st.floats(0, 1), min_size=60, max_size=60),
)
def test_rotation_schedule_properties(
    policy: RotationPolicy,
    gaps: list[float],
    scale: float,
    sign_at: list[float],
    lifetimes: list[float],
) -> None:
    """Ticks arrive at arbitrary times (late, early, after long outages); between two ticks
    tokens are signed with whatever key the last tick left active. Then:

    * at every instant each algorithm has exactly one active key (something can sign);
    * a key that starts signing on schedule was published for at least the pre-publication;
    * every token ever signed has its key published until the token expires (plus leeway).
    """
    records: list[KeyRecord] = []
    new_kid = _kids()
    now = 0.0
    advance(records, policy, now, new_kid)  # type: ignore[arg-type]
    mark_published(records, policy, now)  # what a serving replica does after each tick
    tokens: list[tuple[str, float]] = []  # (kid, exp)
    for index, gap in enumerate(gaps):
        step = gap * scale * policy.rotation_interval
        for alg in policy.algorithms:
            active = [r for r in records if r.alg == alg and r.state == ACTIVE]
            pending = [r for r in records if r.alg == alg and r.state == PENDING]
            assert len(active) == 1
            assert len(pending) <= 1
            # A token signed somewhere before the next tick, by the key active right now.
            signed = now + sign_at[index] * step
            tokens.append((active[0].kid, signed + lifetimes[index] * policy.max_token_lifetime))
        now += step
        for t in advance(records, policy, now, new_kid):  # type: ignore[arg-type]
            if t.to_state == ACTIVE and t.reason == "scheduled rotation":
                record = next(r for r in records if r.kid == t.kid)
                assert t.at - record.created_at >= policy.prepublication_time - 1e-6
                assert record.published_at is not None
                assert t.at - record.published_at >= policy.prepublication_time - 1e-6
        mark_published(records, policy, now)
        published = {r.kid for r in records if r.state in PUBLISHED}
        for kid, exp in tokens:
            if exp + policy.leeway > now:
                assert kid in published, "a key was unpublished before its tokens expired"
        assert next_due(records, policy) > now


def test_next_due_is_when_advance_acts() -> None:
    policy = RotationPolicy(algorithms=("ES256",), jwks_max_age=10, rotation_interval=1000)
    records: list[KeyRecord] = []
    advance(records, policy, 0.0, _kids())  # type: ignore[arg-type]
    due = next_due(records, policy)
    assert due == 1000 - 20
    assert advance(records, policy, due - 0.001, _kids()) == []  # type: ignore[arg-type]
    assert [t.to_state for t in advance(records, policy, due, _kids())] == [PENDING]  # type: ignore[arg-type]


def test_mark_published_reports_whether_it_published_anything() -> None:
    policy = RotationPolicy(algorithms=("ES256",), jwks_max_age=10, rotation_interval=1000)
    records: list[KeyRecord] = []
    new_kid = _kids()
    advance(records, policy, 0.0, new_kid)  # type: ignore[arg-type]
    assert not mark_published(records, policy, 1.0)  # only an active key: nothing to publish
    advance(records, policy, 980.0, new_kid)  # type: ignore[arg-type]
    assert mark_published(records, policy, 981.0)  # the new pending key
    assert not mark_published(records, policy, 982.0)  # already stamped


def test_a_new_pending_key_carries_its_planned_activation_before_it_is_published() -> None:
    # `sealring keys list` shows it; a replica publishing it later can only push it back.
    policy = RotationPolicy(algorithms=("ES256",), jwks_max_age=10, rotation_interval=1000)
    records: list[KeyRecord] = []
    new_kid = _kids()
    advance(records, policy, 0.0, new_kid)  # type: ignore[arg-type]
    [made] = advance(records, policy, 985.0, new_kid)  # type: ignore[arg-type]
    pending = next(r for r in records if r.kid == made.kid)
    assert (made.from_state, made.to_state, made.at) == (None, PENDING, 985.0)
    assert (pending.state, pending.published_at, pending.activates_at) == (PENDING, None, 1005.0)


def test_publishing_never_brings_an_activation_forward() -> None:
    # A replica whose clock is behind the one that planned the key publishes it "earlier": the
    # key still waits for its planned activation, never less than a pre-publication from now.
    policy = RotationPolicy(algorithms=("ES256",), jwks_max_age=10, rotation_interval=1000)
    records: list[KeyRecord] = []
    new_kid = _kids()
    advance(records, policy, 0.0, new_kid)  # type: ignore[arg-type]
    advance(records, policy, 985.0, new_kid)  # type: ignore[arg-type]
    pending = next(r for r in records if r.state == PENDING)
    assert mark_published(records, policy, 980.0)
    assert (pending.published_at, pending.activates_at) == (980.0, 1005.0)


def test_every_scheduled_transition_records_why() -> None:
    # The audit trail (`sealring keys events`) says why each key moved.
    policy = RotationPolicy(
        algorithms=("ES256",), jwks_max_age=10, rotation_interval=1000, max_token_lifetime=100
    )
    records: list[KeyRecord] = []
    new_kid = _kids()

    def steps(now: float) -> list[tuple[str, str | None, str, str | None]]:
        made = advance(records, policy, now, new_kid)  # type: ignore[arg-type]
        mark_published(records, policy, now)
        return [(t.kid, t.from_state, t.to_state, t.reason) for t in made]

    assert steps(0.0) == [
        ("ES256-0", None, PENDING, None),
        ("ES256-0", PENDING, ACTIVE, "no active key"),
    ]
    first = records[0]
    assert (first.activates_at, first.activated_at, first.retires_at) == (0.0, 0.0, 1000.0)
    assert steps(980.0) == [("ES256-1", None, PENDING, None)]
    assert steps(1000.0) == [
        ("ES256-0", ACTIVE, RETIRED, "superseded by ES256-1"),
        ("ES256-1", PENDING, ACTIVE, "scheduled rotation"),
    ]
    assert first.removes_at == 1000.0 + policy.retention == 1170.0
    assert steps(1169.0) == []
    assert steps(1170.0) == [("ES256-0", RETIRED, REMOVED, "retention over")]
    assert steps(1980.0) == [("ES256-2", None, PENDING, None)]
    move(records[1], REVOKED, 1981.0, "leaked")
    assert steps(1981.0) == [("ES256-2", PENDING, ACTIVE, "no active key")]
    assert (records[1].revoked_at, records[1].revoke_reason) == (1981.0, "leaked")
    dropped = RotationPolicy(algorithms=("RS256",), jwks_max_age=10, rotation_interval=1000)
    made = advance(records, dropped, 1982.0, new_kid)  # type: ignore[arg-type]
    assert [(t.kid, t.to_state, t.reason) for t in made if t.alg == "ES256"] == [
        ("ES256-2", RETIRED, "algorithm no longer in the policy")
    ]


def test_an_active_key_without_a_planned_retirement_is_succeeded_now() -> None:
    # A stored active row whose retires_at is empty: its successor is planned at once.
    policy = RotationPolicy(algorithms=("ES256",), jwks_max_age=10, rotation_interval=1000)
    records = [KeyRecord(kid="old", alg="ES256", state=ACTIVE, created_at=0.0)]
    [made] = advance(records, policy, 500.0, _kids())  # type: ignore[arg-type]
    assert (made.from_state, made.to_state) == (None, PENDING)
    assert records[-1].activates_at == 520.0


def test_the_keys_of_an_algorithm_dropped_from_the_policy_retire_or_go() -> None:
    # Its active key is retired with a full retention (its tokens stay verifiable); a pending
    # one never signed and is removed; the keys of the algorithms still listed are left alone.
    policy = RotationPolicy(algorithms=("RS256",), jwks_max_age=10, rotation_interval=1000)
    records = [
        KeyRecord(kid="rs", alg="RS256", state=ACTIVE, created_at=0.0, retires_at=2000.0),
        KeyRecord(kid="es", alg="ES256", state=ACTIVE, created_at=0.0, retires_at=2000.0),
        KeyRecord(kid="es-next", alg="ES256", state=PENDING, created_at=0.0, published_at=0.0),
    ]
    made = advance(records, policy, 100.0, _kids())  # type: ignore[arg-type]
    reason = "algorithm no longer in the policy"
    assert [(t.kid, t.from_state, t.to_state, t.at, t.reason) for t in made] == [
        ("es", ACTIVE, RETIRED, 100.0, reason),
        ("es-next", PENDING, REMOVED, 100.0, reason),
    ]
    assert [r.state for r in records] == [ACTIVE, RETIRED, REMOVED]
    assert records[1].removes_at == 100.0 + policy.retention
    assert (records[1].retired_at, records[2].removed_at) == (100.0, 100.0)


def test_next_due_is_now_whenever_advance_has_work_at_once() -> None:
    # -inf ("now"): nothing can sign, a pending key awaits publication, a stored time is
    # missing, or an algorithm left the policy with a key still published.
    policy = RotationPolicy(algorithms=("ES256",), jwks_max_age=10, rotation_interval=1000)

    def record(state: str, alg: str = "ES256", **times: float) -> KeyRecord:
        return KeyRecord(kid=f"{alg}-{state}", alg=alg, state=state, created_at=0.0, **times)

    settled = [record(ACTIVE, retires_at=1000.0)]
    assert next_due(settled, policy) == 980.0
    now = -math.inf
    assert next_due([], policy) == now
    assert next_due([record(ACTIVE, retires_at=1000.0), record(PENDING)], policy) == now
    assert (
        next_due([record(ACTIVE, retires_at=1000.0), record(PENDING, published_at=1.0)], policy)
        == now
    )
    assert next_due([record(ACTIVE)], policy) == now
    for state in (ACTIVE, PENDING):
        assert next_due([*settled, record(state, alg="RS256", retires_at=1000.0)], policy) == now
    for state in (RETIRED, REMOVED, REVOKED):
        assert next_due([*settled, record(state, alg="RS256")], policy) == 980.0
