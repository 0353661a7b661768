"""The JWKS cache policy's pure rules, without a client: RFC 9111 freshness, metadata URLs,
checked settings."""

from __future__ import annotations

import json

import pytest

from sealring.jose import JWK, KeySet
from sealring.resource import JWKSSettings
from sealring.resource.errors import JWKSError
from sealring.resource.jwks._policy import (
    HTTPRequest,
    HTTPResponse,
    KeySetCache,
    freshness_lifetime,
    metadata_urls,
)


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


# -- at the edges the mutation run found untested (docs/testing.md) ---------------------------

WIDE = JWKSSettings(max_max_age=1e12)  # a ceiling above 2**31 s shows the delta-seconds cap


@pytest.mark.parametrize(
    ("max_age", "expected"),
    [
        ("1000000000", 1_000_000_000),  # ten digits, below 2**31: as written
        ("9999999999", 2**31),  # ten digits, above: read as 2**31 (RFC 9111 §1.2.2)
        ("9" * 11, 2**31),
        ("0" * 20 + "120", 120),  # leading zeros are still delta-seconds
    ],
)
def test_delta_seconds_are_capped_at_2_to_the_31(max_age: str, expected: float) -> None:
    assert freshness_lifetime({"cache-control": f"max-age={max_age}"}, WIDE) == expected


@pytest.mark.parametrize("max_age", ["X120", "-abc", "-\u0663", "- 5"])
def test_a_max_age_that_is_not_delta_seconds_is_ignored(max_age: str) -> None:
    """Not digits (nor a minus and ASCII digits): as if absent, the default applies."""
    assert freshness_lifetime({"cache-control": f"max-age={max_age}"}, JWKSSettings()) == 600


def test_no_cache_means_zero_before_the_floor() -> None:
    floorless = JWKSSettings(min_max_age=0)
    assert freshness_lifetime({"cache-control": "no-cache"}, floorless) == 0
    assert freshness_lifetime({"cache-control": "max-age=-7"}, floorless) == 0


def test_the_metadata_urls_of_an_issuer_with_a_trailing_slash() -> None:
    assert metadata_urls("https://as.example/tenant/") == (
        "https://as.example/.well-known/oauth-authorization-server/tenant",
        "https://as.example/tenant/.well-known/openid-configuration",
    )
    assert metadata_urls("https://as.example/X/")[0] == (
        "https://as.example/.well-known/oauth-authorization-server/X"
    )


def _first_request(cache: KeySetCache) -> HTTPRequest:
    return next(cache.refresh_flow(0.0))


def test_the_requests_ask_for_json_within_their_caps() -> None:
    settings = JWKSSettings(max_size=1000)
    metadata = _first_request(KeySetCache(None, "https://as.example", settings))
    assert dict(metadata.headers) == {"Accept": "application/json"}
    assert metadata.max_size == 64 * 1024
    jwks = _first_request(KeySetCache("https://as.example/jwks", None, settings))
    assert dict(jwks.headers) == {"Accept": "application/jwk-set+json, application/json"}
    assert jwks.max_size == 1000


@pytest.mark.parametrize(
    ("status", "code"),
    [(300, "jwks_redirect_refused"), (399, "jwks_redirect_refused"), (400, "jwks_bad_status")],
)
def test_statuses_at_the_redirect_edges(status: int, code: str) -> None:
    cache = KeySetCache("https://as.example/jwks", None, JWKSSettings())
    flow = cache.refresh_flow(0.0)
    next(flow)
    with pytest.raises(JWKSError) as caught:
        flow.send(HTTPResponse(status, {}, b""))
    assert caught.value.code == code


def test_the_policy_caps_the_key_set_document_itself() -> None:
    """The drivers cap the body as they read it; the policy holds the same cap on what it is
    given, so another driver cannot hand it more."""
    body = json.dumps(KeySet.of(JWK.generate("ES256")).to_dict()).encode()
    cache = KeySetCache("https://as.example/jwks", None, JWKSSettings(max_size=len(body) - 1))
    flow = cache.refresh_flow(0.0)
    next(flow)
    with pytest.raises(JWKSError) as caught:
        flow.send(HTTPResponse(200, {}, body))
    assert caught.value.code == "jwks_invalid"
