"""What the access log adds to a token request, in one process: the log on and off, alternating.

    .venv/bin/python bench/access_log_cost.py [--rounds 15] [--requests 3000]

Builds the authorization server on a SQLite file (rate limits off) and calls it in-process with
ASGI messages, ``POST /token`` (``client_credentials`` with ``client_secret_basic``), in batches
with the access log switched on and off in turn (its lines go to /dev/null through the real
writer thread). CPU time per request covers every thread of the process, so the writer thread's
formatting counts too. No socket and no other process, so the difference is the log's own cost,
which over HTTP on a 2-core machine drowns in process-to-process noise (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

from asgi_bench import ENVIRON, SERVER_SECRET, _call  # the same in-process caller
from sealring.db import make_engine
from sealring.server import create_app
from sealring.server.clients import SecretHasher, new_client, new_secret
from sealring.server.logging import access_log
from sealring.server.settings import Settings
from sealring.server.stores.clients import ClientRepository


async def _run(args: argparse.Namespace, database_url: str, sink: TextIO) -> None:
    settings = Settings.load(
        {"database_url": database_url, "server_secret": SERVER_SECRET, "rate_limit": 0,
         "ip_rate_limit": 0},
        environ={},
    )  # fmt: skip
    app = create_app(settings, environ=ENVIRON)
    client = new_client(name="bench", scope="items:read", audiences=["https://api.example"])
    secret = new_secret()
    engine = make_engine(database_url)
    basic = base64.b64encode(f"{client.client_id}:{secret}".encode())
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"authorization", b"Basic " + basic),
    ]
    body = b"grant_type=client_credentials&scope=items:read"
    saved = access_log.stream, access_log.enabled
    access_log.stream = sink
    try:
        async with app.router.lifespan_context(app):
            ClientRepository(engine).add(client, SecretHasher(SERVER_SECRET).hash(secret))
            engine.dispose()
            for _ in range(300):  # warm: caches filled, every answer as expected
                assert await _call(app, "POST", "/token", headers, body) == 200
            spent: dict[bool, list[float]] = {True: [], False: []}
            for round_no in range(args.rounds):
                for enabled in (True, False) if round_no % 2 == 0 else (False, True):
                    access_log.enabled = enabled
                    started = time.process_time()
                    for _ in range(args.requests):
                        await _call(app, "POST", "/token", headers, body)
                    access_log.flush()  # the batch's lines are written inside its own window
                    spent[enabled].append((time.process_time() - started) / args.requests * 1e6)
    finally:
        access_log.flush()
        access_log.stream, access_log.enabled = saved
    on, off = spent[True], spent[False]
    print(f"µs of CPU per token request, median of {args.rounds} rounds of {args.requests}")
    print(f"access log on: {statistics.median(on):.1f}   off: {statistics.median(off):.1f}")
    print(f"the log's cost (median of per-round differences): "
          f"{statistics.median(a - b for a, b in zip(on, off, strict=True)):.2f} µs")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as sink:
        asyncio.run(_run(args, f"sqlite:///{Path(tmp) / 'sealring.db'}", sink))


if __name__ == "__main__":
    main()
