"""RotationPolicy's bounds at their edge (docs/keys.md): each accepted exactly at its limit.

jwks_max_age >= 1 s, max_token_lifetime > 0, prepublication >= 2 x jwks_max_age, a rotation
interval longer than the pre-publication, and 0 < poll_interval <= (prepublication -
jwks_max_age) / 2, so that a new key is in every cached JWKS before it signs.
"""

from __future__ import annotations

import math

import pytest

from sealring.keys import KeyConfigError
from sealring.keys.schedule import DEFAULT_MAX_TOKEN_LIFETIME, RotationPolicy


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
