"""Properties of the pure parts: header parsing and Cache-Control never misbehave on any input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sealring.resource.bearer import extract_token
from sealring.resource.errors import BearerError, InvalidRequest
from sealring.resource.jwks._policy import JWKSSettings, freshness_lifetime

B64TOKEN = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/", min_size=1
)


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_any_authorization_header_yields_a_token_or_a_bearer_error(header: str) -> None:
    try:
        token = extract_token(header)
    except BearerError as exc:
        status = exc.status_code
    else:
        status = 200
        assert token
        assert " " not in token
        assert header.lower().lstrip().startswith("bearer")
    assert status in (200, 400, 401)


@given(
    B64TOKEN, st.integers(min_value=0, max_value=3), st.sampled_from(["Bearer", "bearer", "BEARER"])
)
def test_well_formed_bearer_tokens_are_returned_exactly(token: str, pad: int, scheme: str) -> None:
    value = token + "=" * pad
    assert extract_token(f"{scheme} {value}") == value


@given(B64TOKEN)
def test_two_methods_are_refused(token: str) -> None:
    try:
        extract_token(f"Bearer {token}", query_values=[token])
    except InvalidRequest:
        return
    raise AssertionError("a token sent twice was accepted")


@given(st.text(max_size=100), st.text(max_size=10))
@settings(max_examples=300)
def test_freshness_is_always_within_bounds(cache_control: str, age: str) -> None:
    bounds = JWKSSettings()
    lifetime = freshness_lifetime({"cache-control": cache_control, "age": age}, bounds)
    assert bounds.min_max_age <= lifetime <= bounds.max_max_age
