"""A real browser (Debian's chromium under Playwright) against a live Sealring and two RPs.

Playwright's own browser download does not work on this machine kind, so the tests launch
``/usr/bin/chromium`` (``scripts/system-deps.sh`` installs it; ``make test`` runs that first).
Each relying party runs in a child process of its own on a loopback port: Authlib's Starlette
client (tests/browser/authlib_rp.py) and node's openid-client (tests/node/browser_rp.mjs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.helpers.login import (
    SERVER_SETTINGS,
    LoginWorld,
    OffsetClock,
    RegisteredClient,
    build_world,
)
from tests.helpers.ports import free_port
from tests.helpers.server import running_server

CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).resolve().parent
NODE_DIR = HERE.parent / "node"


# Module scope, never session: while the sync Playwright driver runs, its event loop is the
# running loop of this thread, and every later asyncio.run() in the suite would refuse to start.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert CHROMIUM.exists(), "chromium is missing: run scripts/system-deps.sh (make test does)"
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    found = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
    yield found
    found.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoginWorld]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'sealring.db'}"
    clock = OffsetClock()
    with running_server(url, clock=clock, **SERVER_SETTINGS) as live:
        yield build_world(live.url, url, clock)


@dataclass
class RelyingParty:
    name: str
    url: str
    client: RegisteredClient


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the relying party exited:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(url + "/logged-out", timeout=1)
            return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.05)


def start_relying_party(
    world: LoginWorld, command: list[str], name: str, folder: Path, **config: str
) -> Iterator[RelyingParty]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client = world.create_client(
        name=name,
        public=True,
        redirect_uris=[f"{base}/callback"],
        post_logout_redirect_uri=f"{base}/logged-out",
        **config,
    )
    settings = {
        "issuer": world.issuer,
        "client_id": client.client_id,
        "port": port,
        "scope": "openid profile email offline_access",
        "alg": "RS256",
    }
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*command, json.dumps(settings)], stdout=out, stderr=out)
    try:
        _wait_ready(proc, base, log)
        yield RelyingParty(name, base, client)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def authlib_rp(
    world: LoginWorld, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelyingParty]:
    yield from start_relying_party(
        world, [sys.executable, str(HERE / "authlib_rp.py")], "Authlib RP",
        tmp_path_factory.mktemp("authlib-rp"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def node_rp(world: LoginWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelyingParty]:
    assert (NODE_DIR / "node_modules" / "openid-client").is_dir(), (
        "npm packages missing: run scripts/system-deps.sh (make test does)"
    )
    yield from start_relying_party(
        world, ["node", str(NODE_DIR / "browser_rp.mjs")], "openid-client RP",
        tmp_path_factory.mktemp("node-rp"), id_token_alg="RS256",
    )  # fmt: skip
