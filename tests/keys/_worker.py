"""A separate OS process acting as one server replica, for the race and SIGKILL tests.

usage: _worker.py MODE DATABASE_URL NOW DIR NAME POLICY_JSON   (keys config: SEALRING_KEK / _HSM_*)

MODE ``race``: say ready, wait for DIR/go, run the due schedule once (holding the write
transaction for a moment so the rivals really overlap), print the transitions as JSON.
MODE ``kill``: run the due schedule and announce DIR/NAME.inside from inside the rotation
transaction, then hang there until the test SIGKILLs us.

"Inside the rotation transaction" is where the manager's session releases its savepoint: the
rows are written, the outer transaction (and its write lock) not yet committed. SQLAlchemy's
``release_savepoint`` event reaches it from outside, so the product carries no test hook.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sqlalchemy import event

from sealring.db import make_engine
from sealring.keys import KeyManager, RotationPolicy, load_key_config


def main() -> None:
    mode, url, now, directory, name, policy = sys.argv[1:7]
    folder = Path(directory)
    engine = make_engine(url)
    kek, hsm = load_key_config(url)
    manager = KeyManager(
        engine,
        kek=kek,
        hsm=hsm,
        policy=RotationPolicy(**json.loads(policy)),
        clock=lambda: float(now),
        publishes=True,  # a replica
    )
    if mode == "race":
        event.listen(engine, "release_savepoint", lambda *args: time.sleep(0.3))
        (folder / f"{name}.ready").touch()
        while not (folder / "go").exists():
            time.sleep(0.005)
    else:

        def hang(*args: object) -> None:
            (folder / f"{name}.inside").touch()
            time.sleep(120)

        event.listen(engine, "release_savepoint", hang)
    steps = manager.run_due(force=True)
    print(json.dumps([[t.kid, t.from_state, t.to_state] for t in steps]))
    engine.dispose()


if __name__ == "__main__":
    main()
