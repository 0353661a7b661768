"""Redirect URI registration and matching (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §4.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealring.server.protocol.redirect_uri import (
    MAX_REDIRECT_URI_LENGTH,
    InvalidRedirectUri,
    check_redirect_uri,
    match_redirect_uri,
)

WEB = "https://app.example.com/cb"


# -- registration -----------------------------------------------------------------------------


@pytest.mark.parametrize("native", [True, False])
def test_https_is_accepted_for_every_client(native: bool) -> None:
    assert check_redirect_uri(WEB, native=native) == WEB
    assert check_redirect_uri("https://app.example.com/cb?tenant=1", native=native)


@pytest.mark.parametrize("uri", ["http://127.0.0.1/cb", "http://[::1]:8080/cb", "http://127.0.0.1"])
def test_http_loopback_ip_is_accepted_for_native_clients(uri: str) -> None:
    assert check_redirect_uri(uri, native=True) == uri


@pytest.mark.parametrize("uri", ["http://127.0.0.1/cb", "http://[::1]/cb"])
def test_http_loopback_is_refused_for_web_clients(uri: str) -> None:
    with pytest.raises(InvalidRedirectUri, match="native"):
        check_redirect_uri(uri, native=False)


@pytest.mark.parametrize("uri", ["http://localhost/cb", "http://localhost:8080/cb"])
def test_http_localhost_is_refused_even_for_native_clients(uri: str) -> None:
    with pytest.raises(InvalidRedirectUri, match="localhost"):
        check_redirect_uri(uri, native=True)


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example.com/cb",
        "http://127.0.0.1.evil.example/cb",
        "http://127.0.0.2/cb",
        "http://127.0.0.1:0/cb",
        "http://127.0.0.1:65536/cb",
        "http://127.0.0.1:080/cb",
        "http://127.0.0.1:8080@evil.example/cb",
    ],
)
def test_http_other_than_a_loopback_ip_literal_is_refused(uri: str) -> None:
    with pytest.raises(InvalidRedirectUri):
        check_redirect_uri(uri, native=True)


@pytest.mark.parametrize("uri", [WEB + "#", WEB + "#frag", "com.example.app:/cb#x"])
def test_fragment_is_refused(uri: str) -> None:
    with pytest.raises(InvalidRedirectUri):
        check_redirect_uri(uri, native=True)


def test_userinfo_is_refused() -> None:
    with pytest.raises(InvalidRedirectUri, match="userinfo"):
        check_redirect_uri("https://app.example.com@evil.example/cb", native=False)


@pytest.mark.parametrize(
    "uri", ["/cb", "app.example.com/cb", "", "https:/app.example.com", "https://", "https:app"]
)
def test_relative_or_hostless_uri_is_refused(uri: str) -> None:
    with pytest.raises(InvalidRedirectUri):
        check_redirect_uri(uri, native=False)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/c b",
        "https://app.example.com/\u00e9",
        "https://app\\evil/cb",
        "https://[::1/cb",
    ],
)
def test_spaces_non_ascii_backslash_and_broken_hosts_are_refused(uri: str) -> None:
    with pytest.raises(InvalidRedirectUri):
        check_redirect_uri(uri, native=False)


def test_upper_case_scheme_is_refused() -> None:
    with pytest.raises(InvalidRedirectUri, match="lower-case"):
        check_redirect_uri("HTTPS://app.example.com/cb", native=False)


def test_over_long_uri_is_refused() -> None:
    with pytest.raises(InvalidRedirectUri):
        check_redirect_uri("https://app.example.com/" + "a" * 2000, native=False)


def test_a_redirect_uri_may_be_2000_characters_and_no_longer() -> None:
    base = "https://app.example.com/"
    longest = base + "a" * (MAX_REDIRECT_URI_LENGTH - len(base))
    assert len(longest) == MAX_REDIRECT_URI_LENGTH == 2000
    assert check_redirect_uri(longest, native=False) == longest
    with pytest.raises(InvalidRedirectUri):
        check_redirect_uri(longest + "a", native=False)


def test_the_highest_loopback_port_is_65535() -> None:
    assert check_redirect_uri("http://127.0.0.1:65535/cb", native=True)
    with pytest.raises(InvalidRedirectUri):
        check_redirect_uri("http://127.0.0.1:65536/cb", native=True)


def test_reverse_domain_private_scheme_is_accepted_for_native_only() -> None:
    assert check_redirect_uri("com.example.app:/oauth2redirect", native=True)
    with pytest.raises(InvalidRedirectUri):
        check_redirect_uri("com.example.app:/oauth2redirect", native=False)


@pytest.mark.parametrize(
    "uri", ["javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "myapp:/cb"]
)
def test_dangerous_or_non_reverse_domain_schemes_are_refused(uri: str) -> None:
    with pytest.raises(InvalidRedirectUri):
        check_redirect_uri(uri, native=True)


# -- matching ---------------------------------------------------------------------------------


def test_exact_string_matches() -> None:
    assert match_redirect_uri(WEB, ["https://other.example/cb", WEB], native=False) == WEB


@pytest.mark.parametrize(
    "requested",
    [
        WEB + "/",  # trailing slash
        "https://app.example.com/cb/extra",  # appended path (conformance CreateBadRedirectUriByAppending)
        "https://APP.example.com/cb",  # host case
        "https://app.example.com/CB",  # path case
        "https://app.example.com/c%62",  # percent-encoding of an unreserved character
        "https://app.example.com:443/cb",  # default port spelled out
        WEB + "?x=1",  # query added
        "https://app.example.com/cb#",  # empty fragment
        "https://evil@app.example.com/cb",  # userinfo
        "https://app.example.com/x/..;/cb",  # path traversal trick
        "https://app.example.com.evil.example/cb",
    ],
)
def test_anything_but_the_exact_string_is_refused(requested: str) -> None:
    assert match_redirect_uri(requested, [WEB], native=False) is None
    assert match_redirect_uri(requested, [WEB], native=True) is None


def test_registered_query_must_be_repeated_exactly() -> None:
    registered = "https://app.example.com/cb?tenant=1"
    assert match_redirect_uri(registered, [registered], native=False) == registered
    for requested in ["https://app.example.com/cb", "https://app.example.com/cb?tenant=2"]:
        assert match_redirect_uri(requested, [registered], native=False) is None


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:9999/cb"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1/cb"),
        ("http://[::1]/cb", "http://[::1]:61000/cb"),
        ("http://127.0.0.1/cb?x=1", "http://127.0.0.1:1234/cb?x=1"),
    ],
)
def test_loopback_ip_any_port_for_native_clients(registered: str, requested: str) -> None:
    assert match_redirect_uri(requested, [registered], native=True) == requested


def test_loopback_any_port_does_not_apply_to_web_clients() -> None:
    assert (
        match_redirect_uri("http://127.0.0.1:5000/cb", ["http://127.0.0.1/cb"], native=False)
        is None
    )


def test_loopback_any_port_does_not_apply_to_localhost() -> None:
    assert (
        match_redirect_uri("http://localhost:5000/cb", ["http://localhost/cb"], native=True) is None
    )
    assert match_redirect_uri("http://localhost/cb", ["http://localhost/cb"], native=True)


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:1234/cb/",  # path differs
        "http://127.0.0.1:1234/cb?x=1",  # query differs
        "http://[::1]:1234/cb",  # other loopback address
        "http://127.0.0.1:080/cb",  # non-canonical port
        "http://127.0.0.1:70000/cb",  # no such port
        "https://127.0.0.1:1234/cb",  # other scheme
        "http://127.0.0.1:1234@evil.example/cb",
    ],
)
def test_loopback_rule_relaxes_only_the_port(requested: str) -> None:
    assert match_redirect_uri(requested, ["http://127.0.0.1/cb"], native=True) is None


def test_the_any_port_rule_reaches_port_65535_and_no_further() -> None:
    registered = ["http://127.0.0.1/cb"]
    top = "http://127.0.0.1:65535/cb"
    assert match_redirect_uri(top, registered, native=True) == top
    assert match_redirect_uri("http://127.0.0.1:65536/cb", registered, native=True) is None
    # Nor from the other side: a registered URI with an impossible port matches no request.
    assert match_redirect_uri(top, ["http://127.0.0.1:65536/cb"], native=True) is None


def test_no_registered_uri_matches_nothing() -> None:
    assert match_redirect_uri(WEB, [], native=True) is None


@given(st.text(max_size=60))
def test_a_web_client_matches_only_exact_strings(requested: str) -> None:
    registered = ["https://app.example.com/cb", "http://127.0.0.1/cb"]
    result = match_redirect_uri(requested, registered, native=False)
    assert result == (requested if requested in registered else None)


@given(
    st.sampled_from(["http://", "https://", "HTTP://"]),
    st.sampled_from(["127.0.0.1", "[::1]", "localhost", "127.0.0.1.nip.io"]),
    st.text(alphabet="0123456789:", max_size=7),
    st.sampled_from(["/cb", "/cb/", "/c", "/cb?x", ""]),
)
def test_a_native_match_differs_from_the_registered_uri_at_most_in_the_port(
    scheme: str, host: str, port: str, path: str
) -> None:
    requested = f"{scheme}{host}{port}{path}"
    canonical_port = port == "" or (
        port[0] == ":"
        and port[1:].isdigit()
        and port[1] != "0"
        and len(port) <= 6
        and int(port[1:]) <= 65535
    )
    expected = scheme == "http://" and host == "127.0.0.1" and path == "/cb" and canonical_port
    result = match_redirect_uri(requested, ["http://127.0.0.1/cb"], native=True)
    assert result == (requested if expected else None)
