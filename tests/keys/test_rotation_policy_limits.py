"""RotationPolicy's bounds at their edge (docs/keys.md): each accepted exactly at its limit.

jwks_max_age >= 1 s, max_token_lifetime > 0, prepublication >= 2 x jwks_max_age, a rotation
interval longer than the pre-publication, and 0 < poll_interval <= (prepublication -
jwks_max_age) / 2, so that a new key is in every cached JWKS before it signs.
"""

from __future__ import annotations

import math

import pytest

from sealring.keys import KeyConfigError
from sealring.keys.schedule import (
    DEFAULT_MAX_TOKEN_LIFETIME,
    MIN_ROTATION_INTERVAL,
    SUPPORTED_REFETCH_COOLDOWN,
    RotationPolicy,
    followable_prepublication,
    unfollowable,
)


def test_defaults_and_derived_times() -> None:
    policy = RotationPolicy()
    assert policy.prepublication_time == 600
    assert policy.max_poll_interval == 150
    assert policy.poll_interval_time == 5
    assert policy.retention == DEFAULT_MAX_TOKEN_LIFETIME + 60 + 300
    assert RotationPolicy(jwks_max_age=4, max_token_lifetime=10).poll_interval_time == 2


def test_jwks_max_age_is_at_least_one_second() -> None:
    assert RotationPolicy(jwks_max_age=1).prepublication_time == 2
    with pytest.raises(KeyConfigError):
        RotationPolicy(jwks_max_age=0.999)


def test_max_token_lifetime_must_be_positive() -> None:
    assert RotationPolicy(max_token_lifetime=0.001).retention == 0.001 + 60 + 300
    with pytest.raises(KeyConfigError):
        RotationPolicy(max_token_lifetime=0)


@pytest.mark.parametrize(
    "name", ["rotation_interval", "jwks_max_age", "max_token_lifetime", "leeway"]
)
@pytest.mark.parametrize("value", [-1, math.nan, math.inf, "60"])
def test_times_must_be_finite_non_negative_numbers(name: str, value: object) -> None:
    with pytest.raises(KeyConfigError):
        RotationPolicy(**{name: value})  # type: ignore[arg-type]


def test_leeway_may_be_zero() -> None:
    assert RotationPolicy(leeway=0).retention == DEFAULT_MAX_TOKEN_LIFETIME + 300


def test_prepublication_is_at_least_twice_the_jwks_max_age() -> None:
    assert RotationPolicy(prepublication=600).prepublication_time == 600
    with pytest.raises(KeyConfigError):
        RotationPolicy(prepublication=599.9)
    with pytest.raises(KeyConfigError):
        RotationPolicy(prepublication=math.inf)


def test_rotation_interval_is_longer_than_the_prepublication() -> None:
    assert RotationPolicy(rotation_interval=600.001)
    with pytest.raises(KeyConfigError):
        RotationPolicy(rotation_interval=600)


def test_poll_interval_holds_at_its_bounds() -> None:
    assert RotationPolicy(poll_interval=150).poll_interval_time == 150
    assert RotationPolicy(poll_interval=0.001).poll_interval_time == 0.001
    for bad in (150.001, 0, -1, "5"):
        with pytest.raises(KeyConfigError):
            RotationPolicy(poll_interval=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithms", [(), ("ES256", "ES256"), ("HS256",), ("none",)])
def test_algorithms_are_a_non_empty_list_of_distinct_signing_algorithms(
    algorithms: tuple[str, ...],
) -> None:
    with pytest.raises(KeyConfigError):
        RotationPolicy(algorithms=algorithms)


@pytest.mark.parametrize(
    ("jwks_max_age", "prepublication"),
    [(10, 50), (39, 79), (40, 80), (41, 82), (300, 600)],
)
def test_the_default_prepublication_is_twice_max_age_and_at_least_a_cooldown_more(
    jwks_max_age: float, prepublication: float
) -> None:
    # max(2 x max-age, max-age + the 30 s refetch cooldown + 10 s for the poll): they meet at 40.
    assert SUPPORTED_REFETCH_COOLDOWN == 30
    assert followable_prepublication(jwks_max_age) == prepublication
    policy = RotationPolicy(jwks_max_age=jwks_max_age, prepublication=prepublication)
    assert unfollowable(policy) is None


def test_a_prepublication_is_followable_exactly_at_cooldown_plus_max_age_plus_poll() -> None:
    # A verifier refetching an unknown kid at most every 30 s must already have fetched the key.
    at_limit = RotationPolicy(jwks_max_age=10, prepublication=50, poll_interval=10)
    assert unfollowable(at_limit) is None
    short = RotationPolicy(jwks_max_age=10, prepublication=50, poll_interval=10.001)
    assert "cooldown" in (unfollowable(short) or "")
    slow_cache = RotationPolicy(jwks_max_age=12, prepublication=50, poll_interval=8.001)
    assert "cooldown" in (unfollowable(slow_cache) or "")


def test_a_rotation_interval_of_one_hour_is_followable_and_less_is_not() -> None:
    assert MIN_ROTATION_INTERVAL == 3600
    assert unfollowable(RotationPolicy(rotation_interval=3600)) is None
    assert "minimum" in (unfollowable(RotationPolicy(rotation_interval=3599.999)) or "")


def test_the_policy_is_read_from_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEALRING_JWKS_MAX_AGE", "60")
    assert RotationPolicy.from_env().jwks_max_age == 60
