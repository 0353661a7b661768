"""The rotation schedule as pure functions: policy checks and property tests."""

from __future__ import annotations

import itertools

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
