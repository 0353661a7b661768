"""CPU per user grant in one process, without HTTP: the code exchange and the refresh, serially.

    .venv/bin/python bench/login_grant_cost.py [--count 1000] [--database-url URL] [--profile]

Calls the registered grant handlers (``authorization_code``, ``refresh_token``) the way the token
endpoint does, on Sealring's own stores over a SQLite file (default) or the database given,
spending a code or a refresh token per call, and prints CPU and wall microseconds per grant, with
signing the tokens alone for reference.  No threads, no HTTP, no contention: what one grant costs
the server's Python and the database driver.  ``--profile`` adds a ``cProfile`` table of the
second round (the first warms caches).  For comparisons, run before and after a change on the
same machine within minutes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sealring.db import make_engine, upgrade
from sealring.jose.jwk import JWK
from sealring.jose.jws import LocalSigner
from sealring.server.accounts import PasswordPolicy
from sealring.server.clients import Client
from sealring.server.grants import GRANTS, GrantRequest
from sealring.server.grants.user_tokens import Login, issue_user_tokens
from sealring.server.protocol.pkce import s256_challenge
from sealring.server.stores.accounts import DatabaseAccountStore
from sealring.server.stores.authorization_codes import AuthorizationCodeStore, CodeGrant
from sealring.server.stores.refresh_tokens import RefreshTokenStore
from sealring.server.stores.tables import ClientRow
from sealring.server.tokens.handles import HandleHasher
from sealring.server.user_grants import UserGrantStorage

ISSUER = "https://id.example"
AUDIENCE = "https://api.example"
REDIRECT = "https://app.example/cb"
VERIFIER = "dBjftJeZ4CVP-mJ0kFmVwsAkTvsB_jDqDSLsDsFnfFU"  # RFC 7636 appendix B


def per_call(label: str, calls: list[Callable[[], object]]) -> list[object]:
    wall, cpu = time.perf_counter(), time.process_time()
    results = [call() for call in calls]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{label:20} {len(calls):6} calls  cpu {cpu / len(calls) * 1e6:7.0f} us  "
        f"wall {wall / len(calls) * 1e6:7.0f} us",
        flush=True,
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="grants of each kind per round")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--profile", action="store_true", help="cProfile the second round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'grants.db'}"
        engine = make_engine(url)
        try:
            run(engine, args.count, args.profile)
        finally:
            engine.dispose()


def run(engine: Engine, count: int, profile: bool) -> None:
    upgrade(engine)
    now = time.time()
    client_id = f"bench-{int(now * 1000)}"
    with Session(engine) as session, session.begin():
        session.add(
            ClientRow(
                client_id=client_id, name="bench", auth_method="client_secret_basic",
                grant_types="authorization_code refresh_token", scope="api",
                audiences=AUDIENCE, redirect_uris=REDIRECT, public=False, created_at=now,
                updated_at=now,
            )
        )  # fmt: skip
    subject = DatabaseAccountStore(engine, PasswordPolicy()).create(client_id, None).subject
    secret = b"s" * 32
    hasher = HandleHasher(secret)
    codes = AuthorizationCodeStore(engine, hasher)
    storage = UserGrantStorage(codes, RefreshTokenStore(engine, hasher, secret))
    client = Client(
        client_id=client_id, name="bench", auth_method="client_secret_basic",
        grant_types=("authorization_code", "refresh_token"), scopes=("api",),
        redirect_uris=(REDIRECT,), audiences=(AUDIENCE,),
    )  # fmt: skip
    signer = LocalSigner(JWK.generate("ES256"), "ES256")
    bound = CodeGrant(
        client_id=client_id, subject=subject, session_id=None, redirect_uri=REDIRECT,
        redirect_uri_in_request=True, scope=("api",), code_challenge=s256_challenge(VERIFIER),
        auth_time=now, resources=(AUDIENCE,),
    )  # fmt: skip

    def grant(grant_type: str, parameters: dict[str, str | None]) -> Callable[[], object]:
        request = GrantRequest(
            client=client, scope=None, resources=(), issuer=ISSUER, lifetime=300,
            signer=signer, now=time.time(), parameters=parameters, store=storage,
        )  # fmt: skip
        # The endpoint signs when it serialises the response (grants.base.SignedLater).
        return lambda: GRANTS[grant_type].handler(request).response_body()

    def sign() -> object:
        return issue_user_tokens(
            client=client, login=Login(subject, now), scopes=("api",), resources=(AUDIENCE,),
            issuer=ISSUER, lifetime=300, id_token_lifetime=300, signer=signer, now=now,
            refresh_token="r" * 43, grant_id="g" * 32,
        ).response_body()  # fmt: skip

    per_call("signing alone", [sign] * count)
    profiler = cProfile.Profile()
    for round_no in (1, 2):
        minted = [codes.issue(bound, now=time.time()) for _ in range(count)]
        calls = [
            grant("authorization_code", {"code": c, "redirect_uri": REDIRECT,
                                         "code_verifier": VERIFIER})
            for c in minted
        ]  # fmt: skip
        if profile and round_no == 2:
            profiler.enable()
        issued = per_call("authorization_code", calls)
        refresh = [json.loads(body)["refresh_token"] for body in issued]  # type: ignore[arg-type]
        per_call("refresh_token", [grant("refresh_token", {"refresh_token": r}) for r in refresh])
        profiler.disable()
    if profile:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
