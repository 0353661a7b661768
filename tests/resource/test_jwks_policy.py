"""The JWKS cache policy's pure rules, without a client: RFC 9111 freshness, metadata URLs,
checked settings."""

from __future__ import annotations

import pytest

from sealring.resource import JWKSSettings
from sealring.resource.jwks._policy import KeySetCache, freshness_lifetime, metadata_urls


@pytest.mark.parametrize(
    ("cache_control", "expected"),
    [
        ("max-age=120", 120),
        ("public, max-age=1", 30),  # floor
        ("max-age=999999999", 86400),  # ceiling
        ("", 600),  # default when absent
        ("no-cache", 30),
        ("max-age=nonsense", 600),
    ],
)
def test_freshness_lifetime_bounds(cache_control: str, expected: float) -> None:
    headers = {"cache-control": cache_control} if cache_control else {}
    assert freshness_lifetime(headers, JWKSSettings()) == expected


def test_age_header_is_subtracted() -> None:
    assert freshness_lifetime({"cache-control": "max-age=300", "age": "100"}, JWKSSettings()) == 200


@pytest.mark.parametrize(
    ("cache_control", "age", "expected"),
    [
        ("max-age=600", "1" + "0" * 400, 30),  # once an OverflowError
        ("max-age=1" + "0" * 400, "0", 86400),  # once an OverflowError
        ("max-age=1" + "0" * 5000, "0", 86400),
        ("max-age=\u0666\u0660\u0660", "0", 600),  # not ASCII digits: as if absent
        ('max-age="120"', "junk", 120),
        ("max-age=-1", "0", 30),  # negative: not fresh, so the floor
        ("max-age=300", "-5", 300),
    ],
    ids=["huge-age", "huge-max-age", "over-int-limit", "arabic-digits", "quoted", "neg", "neg-age"],
)
def test_cache_control_numbers_are_parsed_strictly(
    cache_control: str, age: str, expected: float
) -> None:
    headers = {"cache-control": cache_control, "age": age}
    assert freshness_lifetime(headers, JWKSSettings()) == expected


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        JWKSSettings(min_max_age=100, max_max_age=10)
    with pytest.raises(ValueError):
        JWKSSettings(default_max_age=5)
    with pytest.raises(ValueError):
        JWKSSettings(timeout=0)
    with pytest.raises(ValueError):
        JWKSSettings(cooldown=float("nan"))
    with pytest.raises(ValueError):
        KeySetCache(None, None, JWKSSettings())


def test_metadata_urls() -> None:
    assert metadata_urls("https://as.example") == (
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration",
    )
    assert metadata_urls("https://as.example/tenant/a") == (
        "https://as.example/.well-known/oauth-authorization-server/tenant/a",
        "https://as.example/tenant/a/.well-known/openid-configuration",
    )
