"""A client's ``jwks_uri`` cannot make the server connect to a non-public address (issue 10,
item 8: SSRF).

An unauthenticated request naming a ``private_key_jwt`` client makes the server fetch that
client's ``jwks_uri``; so loopback, private, link-local (the cloud metadata service at
169.254.169.254), shared, multicast and reserved addresses are refused at registration, and again
at connect time after the name is resolved (a name can resolve to anything, and differently
later), unless the ``jwks_uri_allowed_networks`` setting names them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import anyio
import pytest

from sealring.server.clients import ClientMetadataError, address_allowed, new_client
from sealring.server.errors import InvalidClient
from sealring.server.stores.client_keys import ClientJWKSFetcher

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
REFUSED_HOSTS = [
    "169.254.169.254", "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1",
    "0.0.0.0", "[::1]", "[fe80::1]", "[fd00::1]", "[::ffff:127.0.0.1]", "[::ffff:169.254.169.254]",
    "224.0.0.1", "localhost",
]  # fmt: skip


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_registration_refuses_a_non_public_address(host: str) -> None:
    with pytest.raises(ClientMetadataError, match="not a public address"):
        new_client(name="x", jwks_uri=f"https://{host}/jwks.json")


def test_registration_accepts_an_allowed_network_and_public_addresses() -> None:
    new_client(name="x", jwks_uri="http://127.0.0.1:8080/jwks", jwks_uri_networks=LOOPBACK)
    new_client(name="x", jwks_uri="https://93.184.215.14/jwks")
    new_client(name="x", jwks_uri="https://[2606:4700::1111]/jwks")
    with pytest.raises(ClientMetadataError):  # the allow-list names 127/8, not 10/8
        new_client(name="x", jwks_uri="https://10.0.0.1/jwks", jwks_uri_networks=LOOPBACK)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A bare TCP listener on loopback: it tells whether anything connected at all."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    try:
        yield sock
    finally:
        sock.close()


def _connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except TimeoutError:
        return False
    conn.close()
    return True


def _fetch(url: str, networks: tuple[ipaddress.IPv4Network, ...] = ()) -> None:
    async def run() -> None:
        fetcher = ClientJWKSFetcher(allowed_networks=networks)
        try:
            await fetcher.get(url, None)
        finally:
            await fetcher.aclose()

    anyio.run(run)


def test_connect_time_check_after_resolution(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that was public at registration and now resolves to loopback is not connected
    to: the check runs on the addresses the name resolves to when the server connects."""
    port = listener.getsockname()[1]
    real = socket.getaddrinfo

    def rebinding(host: object, *args: object, **kwargs: object) -> object:
        # anyio passes the name IDNA-encoded, as bytes.
        rebound = host in ("keys.client.example", b"keys.client.example")
        return real("127.0.0.1" if rebound else host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(InvalidClient):
        _fetch(f"https://keys.client.example:{port}/jwks.json")
    assert not _connected(listener)
    with pytest.raises(InvalidClient):
        _fetch(f"http://127.0.0.1:{port}/jwks.json")
    assert not _connected(listener)


def test_the_allow_list_lets_a_loopback_host_through(
    jwks_host: tuple[str, dict[str, bytes]],
) -> None:
    """The tests' own set-up: a key host on loopback, reached because the setting names it."""
    url = jwks_host[0]
    with pytest.raises(InvalidClient):
        _fetch(url)
    _fetch(url, LOOPBACK)


EVERYTHING = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


@pytest.mark.parametrize(
    "value", ["", "localhost", "example.com", "999.1.1.1", "1.2.3", "%eth0", "::g", "1.2.3.4/32"]
)
def test_address_allowed_fails_closed_on_what_is_not_an_address(value: str) -> None:
    # Not an address: refused even when the allow list covers every address there is.
    assert address_allowed(value) is False
    assert address_allowed(value, EVERYTHING) is False


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("::ffff:93.184.215.14", True),  # judged as the IPv4 address it carries
        ("127.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("fe80::1%eth0", False),  # the zone is cut off, the address still judged
        ("10.0.0.1", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("ff0e::1", False),  # global scope, but multicast
        ("0.0.0.0", False),
    ],
)
def test_address_allowed_only_for_global_unicast(address: str, allowed: bool) -> None:
    assert address_allowed(address) is allowed


def test_address_allowed_lets_the_named_network_through_and_nothing_next_to_it() -> None:
    assert address_allowed("127.0.0.1", LOOPBACK) is True
    assert address_allowed("::ffff:127.0.0.5", LOOPBACK) is True
    assert address_allowed("10.0.0.1", LOOPBACK) is False
    assert address_allowed("128.0.0.1", LOOPBACK) is True  # public anyway


def _resolver(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    """A resolver that knows only ``names`` (each to its addresses) and no other name, as on a
    host without DNS; IP literals never reach it at registration."""

    def resolve(host: object, port: object, *args: object, **kwargs: object) -> object:
        if not isinstance(host, str) or host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
            for a in names[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_registration_judges_every_address_a_name_resolves_to_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolver(
        monkeypatch,
        {
            "public.client.example": ["93.184.215.14", "2606:4700::1111"],
            "inside.client.example": ["10.0.0.7"],
            "mixed.client.example": ["93.184.215.14", "169.254.169.254"],
        },
    )
    jwks_uri = "https://public.client.example/jwks"
    assert new_client(name="x", jwks_uri=jwks_uri).jwks_uri == jwks_uri
    with pytest.raises(ClientMetadataError, match=r": 10\.0\.0\.7 is not a public address"):
        new_client(name="x", jwks_uri="https://inside.client.example/jwks")
    with pytest.raises(ClientMetadataError, match=r": 169\.254\.169\.254 is not a public"):
        new_client(name="x", jwks_uri="https://mixed.client.example/jwks")
    # A name that resolves to nothing yet is left to the connect-time check.
    new_client(name="x", jwks_uri="https://not-yet.client.example/jwks")


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "keys.localhost", "Keys.LocalHost", "a.b.localhost"]
)
def test_a_localhost_name_is_refused_even_when_the_resolver_does_not_know_it(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 6761 §6.3: localhost and every name under it mean the loopback interface, whatever
    the resolver (here one that knows no name) says."""
    _resolver(monkeypatch, {})
    with pytest.raises(ClientMetadataError, match=r": 127\.0\.0\.1 is not a public address"):
        new_client(name="x", jwks_uri=f"https://{host}/jwks")


def test_a_name_that_only_looks_like_localhost_is_left_to_the_resolver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolver(monkeypatch, {})
    for host in ("notlocalhost", "localhost.example", "localhost-keys.example"):
        assert new_client(name="x", jwks_uri=f"https://{host}/jwks").jwks_uri


@pytest.mark.parametrize("zone", ["%eth0", "%a%b"])
def test_a_zone_never_changes_the_verdict_on_an_address(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zone after '%' is cut off and the address judged without it, on both families; at
    registration a literal with a zone is judged as that literal, never looked up as a name."""
    assert address_allowed(f"93.184.215.14{zone}") is True
    assert address_allowed(f"10.0.0.1{zone}") is False
    assert address_allowed(f"10.0.0.1{zone}", (ipaddress.ip_network("10.0.0.0/8"),)) is True
    assert address_allowed(f"fe80::1{zone}") is False
    _resolver(monkeypatch, {})
    with pytest.raises(ClientMetadataError, match="not a public address"):
        new_client(name="x", jwks_uri=f"https://10.0.0.1{zone}/jwks")
    new_client(name="x", jwks_uri=f"https://93.184.215.14{zone}/jwks")
