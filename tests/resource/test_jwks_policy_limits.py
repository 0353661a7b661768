"""The JWKS client's caching policy at its edges (RFC 9111 §4.2 freshness, the cooldown,
stale-if-error and the body cap), through the public client on a mock transport and a frozen clock.
"""

from __future__ import annotations

import json

import httpx
import pytest

from sealring.jose import JWK, KeySet
from sealring.resource import JWKSClient, JWKSSettings
from sealring.resource.errors import JWKSError, KeySetUnavailable
from tests.helpers.waiting import eventually

URL = "https://as.example/jwks"
T0 = 1_800_000_000.0
KEY = JWK.generate("ES256")
BODY = json.dumps(KeySet.of(KEY).to_dict()).encode()


class Issuer:
    def __init__(self, headers: dict[str, str] | None = None, body: bytes = BODY) -> None:
        self.headers = headers or {}
        self.body = body
        self.status = 200
        self.fetches = 0
        self.now = T0
        self.clock = lambda: self.now

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(self.status, content=self.body, headers=self.headers)

    def client(self, settings: JWKSSettings | None = None) -> JWKSClient:
        return JWKSClient(
            URL, transport=httpx.MockTransport(self.handler), clock=self.clock, settings=settings
        )


def _fresh_for(headers: dict[str, str], settings: JWKSSettings | None = None) -> float:
    """How long the first fetch stays fresh, read from when the client refetches."""
    issuer = Issuer(headers)
    client = issuer.client(settings)
    client.get_key_set()
    fresh = client.fresh_kids()
    assert fresh is not None
    return fresh[1] - T0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, 600),  # no Cache-Control: the default
        ({"Cache-Control": "max-age=120"}, 120),
        ({"Cache-Control": "max-age=30"}, 30),  # exactly the minimum
        ({"Cache-Control": "max-age=29"}, 30),  # raised to it
        ({"Cache-Control": "max-age=86400"}, 86400),  # exactly the maximum
        ({"Cache-Control": "max-age=86401"}, 86400),  # lowered to it
        ({"Cache-Control": "max-age=" + "9" * 400}, 86400),
        ({"Cache-Control": "max-age=120", "Age": "60"}, 60),
        ({"Cache-Control": "max-age=120", "Age": "100"}, 30),
        ({"Cache-Control": "no-store, max-age=600"}, 30),
        ({"Cache-Control": "max-age=-5"}, 30),
        ({"Cache-Control": "max-age=abc"}, 600),
    ],
)
def test_freshness_follows_max_age_within_the_bounds(
    headers: dict[str, str], seconds: float
) -> None:
    assert _fresh_for(headers) == seconds


def test_a_key_set_is_fresh_until_max_age_and_refetched_at_it() -> None:
    issuer = Issuer({"Cache-Control": "max-age=120"})
    client = issuer.client()
    client.get_key_set()
    issuer.now = T0 + 119.999
    client.get_key_set()
    assert issuer.fetches == 1
    issuer.now = T0 + 120
    client.get_key_set()  # stale: answered at once, refreshed in the background
    eventually(lambda: issuer.fetches == 2, what="the background refresh")
    assert client.fresh_kids() is not None


def test_an_unknown_kid_refetches_once_the_cooldown_has_passed() -> None:
    issuer = Issuer({"Cache-Control": "max-age=600"})
    client = issuer.client()
    client.get_key_set()
    issuer.now = T0 + 29.999
    assert client.get_key_set("unknown").kids == frozenset({KEY.kid})
    assert issuer.fetches == 1  # within the 30 s cooldown: the cached set answers
    issuer.now = T0 + 30
    client.get_key_set("unknown")
    assert issuer.fetches == 2


def test_the_last_good_set_serves_for_stale_if_error_and_not_longer() -> None:
    settings = JWKSSettings(stale_if_error=100)
    issuer = Issuer({"Cache-Control": "max-age=60"})
    client = issuer.client(settings)
    client.get_key_set()
    issuer.status = 500
    issuer.now = T0 + 60  # stale: refetch fails, the last good set still serves
    assert client.get_key_set().kids == frozenset({KEY.kid})
    issuer.now = T0 + 60 + 99.999
    assert client.get_key_set().kids == frozenset({KEY.kid})
    issuer.now = T0 + 60 + 100
    with pytest.raises(KeySetUnavailable):
        client.get_key_set()


def test_the_body_cap_holds_at_its_value() -> None:
    exact = Issuer(body=BODY)
    assert exact.client(JWKSSettings(max_size=len(BODY))).get_key_set().kids == {KEY.kid}
    over = Issuer(body=BODY)
    with pytest.raises(JWKSError):
        over.client(JWKSSettings(max_size=len(BODY) - 1)).get_key_set()


@pytest.mark.parametrize(
    "settings",
    [
        {"min_max_age": -1},
        {"cooldown": float("nan")},
        {"stale_if_error": float("inf")},
        {"min_max_age": 100, "max_max_age": 99, "default_max_age": 99},
        {"default_max_age": 10},
        {"default_max_age": 86401},
        {"timeout": 0},
        {"max_size": 0},
        {"max_size": 1.5},
    ],
)
def test_settings_that_would_switch_a_bound_off_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        JWKSSettings(**settings)  # type: ignore[arg-type]


def test_settings_exactly_at_their_bounds_are_accepted() -> None:
    assert JWKSSettings(min_max_age=0, default_max_age=0, max_max_age=0, cooldown=0)
    assert JWKSSettings(default_max_age=30).default_max_age == 30
    assert JWKSSettings(default_max_age=86400).default_max_age == 86400
    assert JWKSSettings(max_size=1).max_size == 1
