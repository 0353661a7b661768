"""private_key_jwt client assertions (RFC 7523 §3, OIDC Core §9) and how credentials are read.

The authenticator runs against a real SQLite database (migrated as the server migrates it) and
a frozen clock, so every time limit is tested exactly at its edge and one step past it.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from sealring.db import make_engine, upgrade
from sealring.jose.jwk import JWK
from sealring.jose.jws import LocalSigner, sign_compact
from sealring.jose.jwt import encode_jwt
from sealring.server.clients import Client, SecretHasher, new_client, new_secret
from sealring.server.errors import InvalidClient, InvalidRequest
from sealring.server.http.forms import Form
from sealring.server.protocol.client_auth import (
    JWT_BEARER,
    ClientAuthenticator,
    Credentials,
    extract_credentials,
)
from sealring.server.stores.assertion_jtis import JtiStore
from sealring.server.stores.client_keys import ClientJWKSFetcher
from sealring.server.stores.clients import ClientCache, ClientRepository

NOW = 1_800_000_000.0
ISSUER = "https://as.example"
TOKEN_ENDPOINT = "https://as.example/token"
INTROSPECTION = "https://as.example/introspect"
LIFETIME = 600.0
LEEWAY = 30.0  # RFC 7523 leeway the server allows for clock skew (client_auth.ASSERTION_LEEWAY)
KEY = JWK.generate("ES256")


@dataclass
class World:
    auth: ClientAuthenticator
    repository: ClientRepository
    hasher: SecretHasher
    jtis: JtiStore

    def add(self, client: Client, secret: str | None = None) -> Client:
        return self.repository.add(client, self.hasher.hash(secret) if secret else None)

    def jwt_client(self, key: JWK = KEY) -> Client:
        jwks = json.dumps({"keys": [key.public().to_dict()]})
        return self.add(new_client(name="jwt client", auth_method="private_key_jwt", jwks=jwks))

    def authenticate(self, creds: Credentials, endpoint: str = TOKEN_ENDPOINT) -> Client:
        async def run() -> Client:
            return await self.auth.authenticate(creds, endpoint=endpoint)

        return anyio.run(run)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = make_engine(f"sqlite:///{tmp_path / 'sealring.db'}")
    upgrade(engine)
    repository = ClientRepository(engine)
    hasher = SecretHasher(b"k" * 32)
    jtis = JtiStore(engine)
    auth = ClientAuthenticator(
        clients=ClientCache(repository, ttl=0),
        hasher=hasher,
        jtis=jtis,
        jwks_fetcher=ClientJWKSFetcher(),
        issuer=ISSUER,
        token_endpoint=TOKEN_ENDPOINT,
        assertion_max_lifetime=LIFETIME,
        clock=lambda: NOW,
    )
    try:
        yield World(auth, repository, hasher, jtis)
    finally:
        engine.dispose()


def assertion(client_id: str, key: JWK = KEY, **claims: object) -> str:
    """A valid assertion for ``client_id``; a claim given as None is left out."""
    body: dict[str, object] = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "exp": NOW + 60,
        "iat": NOW,
        "jti": uuid.uuid4().hex,
    }
    body.update(claims)
    return encode_jwt({k: v for k, v in body.items() if v is not None}, LocalSigner(key))


def creds(token: str, client_id: str = "") -> Credentials:
    return Credentials("private_key_jwt", client_id, assertion=token)


# -- the assertion -------------------------------------------------------------------------------


def test_a_valid_assertion_authenticates_its_client(world: World) -> None:
    client = world.jwt_client()
    assert world.authenticate(creds(assertion(client.client_id))).client_id == client.client_id
    named = creds(assertion(client.client_id), client.client_id)
    assert world.authenticate(named).client_id == client.client_id


def test_client_id_must_match_the_assertion_subject(world: World) -> None:
    # RFC 7523 §3: sub identifies the client; a form client_id naming another is refused.
    client = world.jwt_client()
    other = world.jwt_client()
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id), other.client_id))


@pytest.mark.parametrize("sub", [None, "", 42, ["x"], "c" * 65])
def test_a_malformed_subject_is_refused(world: World, sub: object) -> None:
    client = world.jwt_client()
    token = assertion(client.client_id, sub=sub)
    with pytest.raises(InvalidClient, match="malformed"):
        world.authenticate(creds(token))


def test_a_subject_of_exactly_the_client_id_limit_is_looked_up(world: World) -> None:
    # 64 characters is a well-formed client id: the assertion is judged, not its shape.
    with pytest.raises(InvalidClient) as caught:
        world.authenticate(creds(assertion("c" * 64)))
    assert "malformed" not in caught.value.description


@pytest.mark.parametrize("jti", ["", None, 7])
def test_a_missing_empty_or_non_string_jti_is_refused(world: World, jti: object) -> None:
    client = world.jwt_client()
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id, jti=jti)))


def test_jti_may_be_255_characters_and_not_256(world: World) -> None:
    client = world.jwt_client()
    assert world.authenticate(creds(assertion(client.client_id, jti="j" * 255)))
    with pytest.raises(InvalidClient, match="malformed"):
        world.authenticate(creds(assertion(client.client_id, jti="k" * 256)))


def test_an_assertion_is_single_use(world: World) -> None:
    client = world.jwt_client()
    token = assertion(client.client_id)
    world.authenticate(creds(token))
    with pytest.raises(InvalidClient, match="already used"):
        world.authenticate(creds(token))


def test_a_jti_is_remembered_until_the_assertion_could_no_longer_verify(world: World) -> None:
    client = world.jwt_client()
    world.authenticate(creds(assertion(client.client_id, jti="once", exp=NOW + 100)))
    # Kept past exp + leeway: pruning before that would let the assertion be replayed.
    assert world.jtis.prune(NOW + 100 + LEEWAY) == 0
    assert world.jtis.prune(NOW + 100 + LEEWAY + 0.001) == 1


def test_the_lifetime_limit_holds_at_its_edge(world: World) -> None:
    client = world.jwt_client()
    edge = NOW + LIFETIME + LEEWAY
    assert world.authenticate(creds(assertion(client.client_id, exp=edge)))
    with pytest.raises(InvalidClient, match="lifetime"):
        world.authenticate(creds(assertion(client.client_id, exp=edge + 0.001)))


def test_the_default_lifetime_limit_is_an_hour(world: World) -> None:
    auth = ClientAuthenticator(
        clients=ClientCache(world.repository, ttl=0),
        hasher=world.hasher,
        jtis=world.jtis,
        jwks_fetcher=ClientJWKSFetcher(),
        issuer=ISSUER,
        token_endpoint=TOKEN_ENDPOINT,
        clock=lambda: NOW,
    )
    client = world.jwt_client()

    def run(token: str) -> Client:
        async def go() -> Client:
            return await auth.authenticate(creds(token), endpoint=TOKEN_ENDPOINT)

        return anyio.run(go)

    assert run(assertion(client.client_id, exp=NOW + 3600 + LEEWAY))
    with pytest.raises(InvalidClient, match="lifetime"):
        run(assertion(client.client_id, exp=NOW + 3600 + LEEWAY + 0.001))


def test_expiry_allows_the_leeway_and_not_more(world: World) -> None:
    client = world.jwt_client()
    assert world.authenticate(creds(assertion(client.client_id, exp=NOW - LEEWAY + 0.001)))
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id, exp=NOW - LEEWAY)))


def test_iat_and_nbf_allow_the_leeway_and_not_more(world: World) -> None:
    client = world.jwt_client()
    assert world.authenticate(creds(assertion(client.client_id, iat=NOW + LEEWAY)))
    assert world.authenticate(creds(assertion(client.client_id, nbf=NOW + LEEWAY)))
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id, iat=NOW + LEEWAY + 0.001)))
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id, nbf=NOW + LEEWAY + 0.001)))


def test_the_audience_is_the_issuer_identifier(world: World) -> None:
    client = world.jwt_client()
    assert world.authenticate(creds(assertion(client.client_id, aud=ISSUER)))
    # The same assertion is good at any of the endpoints a client authenticates at.
    client2 = world.jwt_client()
    token = assertion(client2.client_id, aud=ISSUER)
    assert world.authenticate(creds(token), endpoint=INTROSPECTION) == client2


# draft-ietf-oauth-rfc7523bis: an array (even one naming the issuer) or an endpoint URL is the
# audience-injection class of CVE-2025-27370.
@pytest.mark.parametrize(
    "aud", [TOKEN_ENDPOINT, INTROSPECTION, [ISSUER], [ISSUER, "https://other"]]
)
def test_an_endpoint_or_array_audience_is_refused_by_default(world: World, aud: object) -> None:
    client = world.jwt_client()
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id, aud=aud)))
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id, aud=aud)), endpoint=INTROSPECTION)


@pytest.mark.parametrize("aud", [None, "https://other", ISSUER + "/"])
def test_another_or_missing_audience_is_refused(world: World, aud: object) -> None:
    client = world.jwt_client()
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id, aud=aud)))


def test_iss_must_be_the_client(world: World) -> None:
    client = world.jwt_client()
    for iss in (None, "someone-else"):
        with pytest.raises(InvalidClient):
            world.authenticate(creds(assertion(client.client_id, iss=iss)))


def test_exp_is_required(world: World) -> None:
    client = world.jwt_client()
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id, exp=None)))


def test_a_key_of_another_client_does_not_sign_for_this_one(world: World) -> None:
    client = world.jwt_client()
    stranger = JWK.generate("ES256")
    world.jwt_client(stranger)
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id, key=stranger)))


def test_a_secret_client_cannot_use_an_assertion(world: World) -> None:
    client = world.add(new_client(name="secret client"), new_secret())
    with pytest.raises(InvalidClient):
        world.authenticate(creds(assertion(client.client_id)))


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "e30.W10.AA"])
def test_a_malformed_assertion_is_named(world: World, token: str) -> None:
    with pytest.raises(InvalidClient, match="malformed"):
        world.authenticate(creds(token))


def test_an_assertion_whose_payload_is_not_an_object_is_malformed(world: World) -> None:
    token = sign_compact(b'["x"]', LocalSigner(KEY))
    with pytest.raises(InvalidClient, match="malformed"):
        world.authenticate(creds(token))


def test_a_registered_key_set_is_parsed_once_and_reused(world: World) -> None:
    client = world.jwt_client()
    world.authenticate(creds(assertion(client.client_id)))
    world.authenticate(creds(assertion(client.client_id)))
    assert len(world.auth._keysets) == 1


# -- reading the credentials ---------------------------------------------------------------------


def _form(**fields: str) -> Form:
    return Form({name: [value] for name, value in fields.items()})


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def test_client_ids_of_up_to_64_characters_are_read() -> None:
    assert extract_credentials(None, _form(client_id="c" * 64)).client_id == "c" * 64
    with pytest.raises(InvalidClient):
        extract_credentials(None, _form(client_id="c" * 65))
    with pytest.raises(InvalidClient):
        extract_credentials(_basic("c" * 65, "s"), _form())
    assert extract_credentials(_basic("c" * 64, "s"), _form()).client_id == "c" * 64


def test_an_assertion_needs_the_jwt_bearer_type() -> None:
    read = extract_credentials(
        None, _form(client_assertion="x.y.z", client_assertion_type=JWT_BEARER)
    )
    assert (read.method, read.client_id, read.assertion) == ("private_key_jwt", "", "x.y.z")
    with pytest.raises(InvalidRequest):
        extract_credentials(None, _form(client_assertion="x.y.z", client_assertion_type="other"))
    with pytest.raises(InvalidRequest):
        extract_credentials(None, _form(client_assertion="x.y.z"))
    with pytest.raises(InvalidRequest):
        extract_credentials(None, _form(client_assertion_type=JWT_BEARER))


def test_one_authorization_header_of_a_list_is_read() -> None:
    read = extract_credentials([_basic("a", "s")], _form())
    assert (read.method, read.client_id, read.secret) == ("client_secret_basic", "a", "s")
    assert extract_credentials([], _form(client_id="p")).method == "none"
    with pytest.raises(InvalidRequest):
        extract_credentials([_basic("a", "s"), _basic("a", "s")], _form())


# -- secrets and public clients ------------------------------------------------------------------


def _secret_creds(method: str, client_id: str, secret: str) -> Credentials:
    return Credentials(method, client_id, secret=secret)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_secret_client_authenticates_only_with_its_secret_and_method(
    world: World, method: str
) -> None:
    secret = new_secret()
    client = world.add(new_client(name="s", auth_method=method), secret)
    assert world.authenticate(_secret_creds(method, client.client_id, secret)) == client
    other = "client_secret_post" if method == "client_secret_basic" else "client_secret_basic"
    for creds in (
        _secret_creds(method, client.client_id, secret + "x"),
        _secret_creds(method, client.client_id, ""),
        _secret_creds(other, client.client_id, secret),
        _secret_creds(method, "unknown-client", secret),
    ):
        with pytest.raises(InvalidClient):
            world.authenticate(creds)


def test_a_public_client_authenticates_only_where_public_clients_are_allowed(world: World) -> None:
    def run(client_id: str, allow_public: bool) -> Client:
        async def go() -> Client:
            return await world.auth.authenticate(
                Credentials("none", client_id), endpoint=TOKEN_ENDPOINT, allow_public=allow_public
            )

        return anyio.run(go)

    client = world.add(new_client(name="p", public=True))
    assert run(client.client_id, True) == client
    with pytest.raises(InvalidClient):
        run(client.client_id, False)
    confidential = world.add(new_client(name="c"), new_secret())
    for client_id in (confidential.client_id, "unknown-client"):
        with pytest.raises(InvalidClient):
            run(client_id, True)


def test_public_clients_are_refused_unless_the_endpoint_allows_them(world: World) -> None:
    client = world.add(new_client(name="p", public=True))
    with pytest.raises(InvalidClient):
        world.authenticate(Credentials("none", client.client_id))


def test_an_rsa_client_key_without_alg_may_sign_with_any_assertion_rsa_algorithm(
    world: World,
) -> None:
    rsa = JWK.from_key(JWK.generate("RS256").private_key())  # no alg
    client = world.jwt_client(rsa)
    for alg in ("RS256", "PS256"):
        body = {"iss": client.client_id, "sub": client.client_id, "aud": ISSUER}
        token = encode_jwt(
            {**body, "exp": NOW + 60, "iat": NOW, "jti": uuid.uuid4().hex},
            LocalSigner(rsa, alg),
        )
        assert world.authenticate(creds(token)) == client


def test_parsed_registered_key_sets_are_capped(world: World) -> None:
    doc = json.dumps({"keys": [KEY.public().to_dict()]})

    def parse(n: int) -> None:
        client = Client("c", "c", "private_key_jwt", jwks=doc + " " * n)
        anyio.run(world.auth._keys_of, client, None)

    for n in range(1001):
        parse(n)
    assert len(world.auth._keysets) == 1001
    parse(1001)  # past the cap: the parsed sets are dropped and this one kept
    assert len(world.auth._keysets) == 1


class _Publisher:
    """A client's jwks_uri host: serves ``keys`` and counts fetches."""

    def __init__(self, *keys: JWK) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.now = NOW

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        body = json.dumps({"keys": [k.public().to_dict() for k in self.keys]})
        return httpx.Response(200, content=body.encode(), headers={"Cache-Control": "max-age=600"})


def test_a_jwks_uri_client_is_verified_with_its_published_keys(tmp_path: Path) -> None:
    new_key = JWK.generate("ES256")
    host = _Publisher(KEY)
    engine = make_engine(f"sqlite:///{tmp_path / 'sealring.db'}")
    upgrade(engine)
    try:
        repository = ClientRepository(engine)
        auth = ClientAuthenticator(
            clients=ClientCache(repository, ttl=0),
            hasher=SecretHasher(b"k" * 32),
            jtis=JtiStore(engine),
            jwks_fetcher=ClientJWKSFetcher(
                transport=httpx.MockTransport(host.handler), clock=lambda: host.now
            ),
            issuer=ISSUER,
            token_endpoint=TOKEN_ENDPOINT,
            clock=lambda: NOW,
        )
        client = repository.add(new_client(name="u", jwks_uri="https://client.example/jwks"), None)

        def run(token: str) -> Client:
            async def go() -> Client:
                return await auth.authenticate(creds(token), endpoint=TOKEN_ENDPOINT)

            return anyio.run(go)

        assert run(assertion(client.client_id)) == client
        assert host.fetches == 1
        # The client publishes a new key; its first assertion makes the server refetch (after
        # the 30 s cooldown), because the assertion's kid is not in the cached set.
        host.keys.append(new_key)
        host.now = NOW + 31
        assert run(assertion(client.client_id, key=new_key)) == client
        assert host.fetches == 2
        with pytest.raises(InvalidClient):
            run(assertion(client.client_id, key=JWK.generate("ES256")))
    finally:
        engine.dispose()
