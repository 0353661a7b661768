"""The user grants while SQLite's write lock is held elsewhere (issue 11, docs/reliability.md).

On SQLite the token endpoint runs the grants' transaction on the event loop and never waits for
the write lock there: it retries after short sleeps until ``database_timeout``, then answers 503
with ``Retry-After``.  Nothing is consumed by a refused attempt, and the server keeps answering
other requests meanwhile.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sealring.server.protocol.pkce import s256_challenge
from sealring.server.stores.authorization_codes import CodeGrant
from tests.helpers.server import LiveServer, oauth_error, running_server

VERIFIER = "dBjftJeZ4CVP-mJ0kFmVwsAkTvsB_jDqDSLsDsFnfFU"  # RFC 7636 appendix B
REDIRECT = "https://app.example.test/cb"
TIMEOUT = 1.0

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[LiveServer, Path, str]]:
    path = tmp_path / "sealring.db"
    with running_server(f"sqlite:///{path}", database_timeout=TIMEOUT) as live:
        client_id, _ = live.create_client(
            public=True,
            grant_types=["authorization_code", "refresh_token"],
            scope="api",
            redirect_uris=[REDIRECT],
        )
        yield live, path, client_id


def _code(live: LiveServer, client_id: str) -> str:
    account = live.context.login.accounts.create("alice", "correct horse battery")
    return live.context.login.codes.issue(
        CodeGrant(
            client_id=client_id, subject=account.subject, session_id=None,
            redirect_uri=REDIRECT, redirect_uri_in_request=True, scope=("api",),
            code_challenge=s256_challenge(VERIFIER), auth_time=time.time(),
        ),
        now=time.time(),
    )  # fmt: skip


def _locked(path: Path) -> sqlite3.Connection:
    """Another process's writer, as SQLite sees it: a connection holding the write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def _refused_in_time(http: httpx.Client, form: dict[str, str]) -> None:
    started = time.monotonic()
    response = http.post("/token", data=form)
    waited = time.monotonic() - started
    oauth_error(response, 503, "temporarily_unavailable")
    assert response.headers["retry-after"] == "1"
    assert TIMEOUT * 0.9 <= waited < TIMEOUT + 4, waited


def test_a_code_exchange_under_a_held_sqlite_lock_is_a_503_and_burns_nothing(
    world: tuple[LiveServer, Path, str],
) -> None:
    live, path, client_id = world
    code = _code(live, client_id)
    form = {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER, "client_id": client_id,
    }  # fmt: skip
    with httpx.Client(base_url=live.url, timeout=15) as http:
        holder = _locked(path)
        try:
            _refused_in_time(http, form)
            # The event loop was never blocked: a read-only endpoint answers meanwhile.
            assert http.get("/.well-known/openid-configuration").status_code == 200
        finally:
            holder.rollback()
            holder.close()
        stored = live.context.login.codes.find(code)
        assert stored is not None
        assert stored.consumed_at is None
        exchanged = http.post("/token", data=form)
        assert exchanged.status_code == 200, exchanged.text
        first = exchanged.json()["refresh_token"]

        refresh = {"grant_type": "refresh_token", "refresh_token": first, "client_id": client_id}
        holder = _locked(path)
        try:
            _refused_in_time(http, refresh)
        finally:
            holder.rollback()
            holder.close()
        found = live.context.login.refresh_tokens.find(first)
        assert found is not None
        assert found.consumed_at is None  # still the live token of its family
        assert http.post("/token", data=refresh).status_code == 200
