"""Fixtures for the keys tests: real databases, a real SoftHSM2 token, an injected clock."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from sealring.db import make_engine, upgrade
from sealring.keys import HSMConfig, KEKRing, KeyManager
from tests.helpers.clock import FakeClock
from tests.helpers.keys import POLICY, Spawn

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
WORKER = Path(__file__).with_name("_worker.py")
POLICY_JSON = json.dumps(
    {
        "algorithms": list(POLICY.algorithms),
        "rotation_interval": POLICY.rotation_interval,
        "jwks_max_age": POLICY.jwks_max_age,
        "max_token_lifetime": POLICY.max_token_lifetime,
        "leeway": POLICY.leeway,
    }
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kek() -> KEKRing:
    return KEKRing.from_string(KEKRing.generate_text())


@pytest.fixture
def engines() -> Iterator[Callable[[str], Engine]]:
    """Make migrated engines; every one is disposed at teardown (ResourceWarnings fail)."""
    made: list[Engine] = []

    def make(url: str) -> Engine:
        engine = make_engine(url)
        made.append(engine)
        upgrade(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def managers(
    engines: Callable[[str], Engine], kek: KEKRing, clock: FakeClock
) -> Iterator[Callable[..., KeyManager]]:
    """``managers(url, **overrides)``: a KeyManager on its own engine (a replica)."""
    made: list[KeyManager] = []

    def make(url: str, **kwargs: object) -> KeyManager:
        # A replica serves the JWKS it holds (publishes=True); pass False for a CLI run.
        options: dict[str, object] = {
            "kek": kek,
            "policy": POLICY,
            "clock": clock,
            "publishes": True,
        }
        options.update(kwargs)
        manager = KeyManager(engines(url), **options)  # type: ignore[arg-type]
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()


@pytest.fixture(scope="session")
def softhsm_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SoftHSM2 configuration with its own token directory (never the system one).

    SoftHSM reads SOFTHSM2_CONF once per process, so the whole test session shares it; each
    test gets a token of its own from the ``hsm_config`` fixture.
    """
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    yield conf
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture(scope="session")
def softhsm_token(softhsm_conf: Path) -> tuple[str, str]:
    """One initialised token for the session: (label, user PIN)."""
    assert Path(SOFTHSM_MODULE).exists(), "SoftHSM2 is missing: run scripts/system-deps.sh"
    label, pin = "sealring-test", secrets.token_hex(8)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin",
         secrets.token_hex(8), "--pin", pin],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(softhsm_conf)},
    )  # fmt: skip
    return label, pin


@pytest.fixture
def hsm_config(softhsm_token: tuple[str, str]) -> HSMConfig:
    """The session token, with a label prefix of this test's own (so tests do not collide)."""
    label, pin = softhsm_token
    return HSMConfig(
        module=SOFTHSM_MODULE,
        token_label=label,
        pin=pin,
        label_prefix=f"t{secrets.token_hex(4)}-",
    )


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start worker processes; whatever a test leaves running is killed and reaped."""
    running: list[subprocess.Popen[str]] = []

    def start(
        mode: str, url: str, now: float, folder: Path, name: str, config: str | dict[str, str]
    ) -> subprocess.Popen[str]:
        """``config`` is a KEK, or the environment of an HSM configuration."""
        extra = {"SEALRING_KEK": config} if isinstance(config, str) else config
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), mode, url, repr(now), str(folder), name, POLICY_JSON],
            env={**os.environ, **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running.append(proc)
        return proc

    yield start
    for proc in running:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
