"""Real OS processes sharing one database: racing rotations, and a SIGKILL mid-rotation."""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from sealring.keys import KEKRing, KeyManager
from tests.helpers.clock import T0, FakeClock
from tests.helpers.keys import POLICY, Spawn, wait_for


@pytest.fixture
def kek_text() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _race(
    spawn: Spawn, url: str, now: float, folder: Path, kek: str
) -> list[list[list[str | None]]]:
    folder.mkdir()
    procs = [spawn("race", url, now, folder, f"w{i}", kek) for i in range(2)]
    for i in range(2):
        wait_for(folder / f"w{i}.ready", procs)
    (folder / "go").touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_two_processes_racing_make_exactly_one_rotation(
    spawn: Spawn,
    database_url: str,
    managers: Callable[..., KeyManager],
    clock: FakeClock,
    kek_text: str,
    tmp_path: Path,
) -> None:
    manager = managers(database_url, kek=KEKRing.from_string(kek_text))
    manager.ensure_ready()
    first = manager.signer("ES256").kid

    # Round 1: both see the pre-publication due; exactly one new key results.
    due = T0 + POLICY.rotation_interval - POLICY.prepublication_time
    results = _race(spawn, database_url, due, tmp_path / "r1", kek_text)
    made = [step for result in results for step in result]
    assert [s[1:] for s in made] == [[None, "pending"]], results
    assert sorted(len(r) for r in results) == [0, 1]  # one winner, one that found it done

    # Round 2: both see the activation due; it happens once.
    results = _race(
        spawn, database_url, due + POLICY.prepublication_time, tmp_path / "r2", kek_text
    )
    made = [step for result in results for step in result]
    assert sorted(s[2] or "" for s in made) == ["active", "retired"], results
    clock.now = due + POLICY.prepublication_time
    manager.refresh()
    states = sorted((k.state, k.kid == first) for k in manager.list_keys())
    assert states == [("active", False), ("retired", True)]
    events = manager.events()
    assert len(events) == 5  # first key: 2, second key: 2, retirement: 1 -- no duplicates


def test_sigkill_inside_the_rotation_transaction_leaves_a_consistent_state(
    spawn: Spawn,
    database_url: str,
    managers: Callable[..., KeyManager],
    kek_text: str,
    tmp_path: Path,
) -> None:
    manager = managers(database_url, kek=KEKRing.from_string(kek_text))
    manager.ensure_ready()
    before = [k.to_dict() for k in manager.list_keys()]
    events_before = manager.events()
    due = T0 + POLICY.rotation_interval - POLICY.prepublication_time

    proc = spawn("kill", database_url, due, tmp_path, "victim", kek_text)
    wait_for(tmp_path / "victim.inside", [proc])
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # Nothing of the half-done rotation is visible...
    assert manager.refresh() is False
    assert [k.to_dict() for k in manager.list_keys()] == before
    assert manager.events() == events_before
    # ...and the next replica to run the schedule completes it, once.
    survivor = managers(database_url, kek=KEKRing.from_string(kek_text), clock=lambda: due)
    survivor.ensure_ready()
    assert sorted(k.state for k in survivor.list_keys()) == ["active", "pending"]
    assert survivor.run_due(force=True) == []
