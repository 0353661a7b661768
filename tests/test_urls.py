"""The one loopback rule (sealring.urls), used wherever plain http is allowed."""

from __future__ import annotations

import pytest

from sealring.server.clients import ClientMetadataError, new_client
from sealring.server.settings import Settings, SettingsError
from sealring.urls import is_loopback_host


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", ["localhost.example.com", "128.0.0.1", "0.0.0.0", "::", "10.0.0.1", "example", ""]
)
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize("host", ["127.0.0.2", "[::1]", "localhost"])
def test_an_issuer_may_use_http_on_any_loopback_host(host: str) -> None:
    url = f"http://{host}:8080"
    assert Settings.load({"issuer": url}, environ={}).issuer == url


@pytest.mark.parametrize(("host", "ok"), [("127.0.0.1", True), ("[::1]", True),
                                          ("127.0.0.2", False), ("localhost", False)])  # fmt: skip
def test_a_redirect_uri_may_use_http_only_on_the_loopback_ip(host: str, ok: bool) -> None:
    # RFC 8252 §7.3 and §8.3: the loopback IP literal, not a name that may resolve elsewhere.
    url = f"http://{host}:8080/cb"
    if ok:
        assert new_client(name="x", public=True, redirect_uris=[url]).redirect_uris == (url,)
    else:
        with pytest.raises(ClientMetadataError):
            new_client(name="x", public=True, redirect_uris=[url])


@pytest.mark.parametrize("host", ["127.0.0.1.nip.io", "10.0.0.1", "example.com"])
def test_plain_http_elsewhere_is_refused_by_both(host: str) -> None:
    url = f"http://{host}:8080"
    with pytest.raises(SettingsError):
        Settings.load({"issuer": url}, environ={})
    with pytest.raises(ClientMetadataError):
        new_client(name="x", public=True, redirect_uris=[url + "/cb"])
