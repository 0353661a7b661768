"""Schemathesis against the running server's own OpenAPI document: no 5xx, every response as
documented (status, content type, headers, schema).  Bounded: a few dozen examples per operation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.server import LiveServer, start_server

ST = Path(sys.executable).parent / "st"


@pytest.fixture(scope="module")
def sqlite_live(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = start_server(f"sqlite:///{tmp_path_factory.mktemp('st') / 'st.db'}")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "authenticated"])
def test_schemathesis(sqlite_live: LiveServer, tmp_path: Path, authenticated: bool) -> None:
    auth: list[str] = []
    if authenticated:
        client_id, secret = sqlite_live.create_client(scope="a b", audiences=["https://api"])
        auth = ["--auth", f"{client_id}:{secret}"]
    result = subprocess.run(
        [
            str(ST), "run", sqlite_live.url + "/openapi.json",
            "--checks", "all",
            # Valid-by-schema bodies cannot all succeed: credentials, scopes and tokens are
            # checked beyond what a schema can say.
            "--exclude-checks", "positive_data_acceptance",
            "--max-examples", "25",
            "--generation-database", "none",
            "--seed", "4",
            "--request-timeout", "10",
            *auth,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
