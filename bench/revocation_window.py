"""How long after ``sealring keys revoke`` returns can a replica still sign with the revoked key?

Starts ``sealring serve --workers 2`` on a fresh PostgreSQL database, issues tokens as fast as
one client can, runs ``sealring keys revoke`` for the active kid as a separate process (as an
operator would), and keeps issuing for a while.  Reports, per key poll interval, the tokens
carrying the revoked kid issued after the revoke command returned and the time from its return
to the last of them.  Run: ``.venv/bin/python bench/revocation_window.py [POLL_SECONDS ...]``
(default: ``5`` (the default poll) and ``1``).  Figures go to docs/security.md.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time

import httpx
import psycopg

from sealring.jose.jws import parse_compact

PG_ADMIN = os.environ.get("SEALRING_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SEALRING = os.path.join(os.path.dirname(sys.executable), "sealring")
AFTER = 8.0  # seconds to keep issuing after the revocation


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def measure(poll: float) -> dict[str, float]:
    name = "sealring_revwin_" + secrets.token_hex(4)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    port = _free_port()
    env = {
        **os.environ,
        "SEALRING_KEK": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SEALRING_DATABASE_URL": url,
        "SEALRING_KEY_POLL_INTERVAL": str(poll),
        "SEALRING_RATE_LIMIT": "0",
        "SEALRING_IP_RATE_LIMIT": "0",
        "SEALRING_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [SEALRING, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        created = subprocess.run(
            [SEALRING, "clients", "create", "--name", "bench", "--audience", "https://api", "--json"],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        client = json.loads(created.stdout)
        auth = (client["client_id"], client["client_secret"])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start")
                time.sleep(0.1)

            def issue() -> tuple[float, str | None, int]:
                response = http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
                kid = None
                if response.status_code == 200:
                    kid = parse_compact(response.json()["access_token"]).kid
                return time.monotonic(), kid, response.status_code

            kid = issue()[1]
            # Make sure both workers have served (and so loaded) the key before revoking.
            for _ in range(50):
                issue()
            subprocess.run(
                [SEALRING, "keys", "revoke", str(kid), "--reason", "bench"],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            revoked_at = time.monotonic()
            late: list[float] = []
            total = 0
            while time.monotonic() - revoked_at < AFTER:
                at, got, _ = issue()
                total += 1
                if got == kid:
                    late.append(at - revoked_at)
        return {
            "poll_s": poll,
            "tokens_after_revoke": total,
            "with_revoked_kid": len(late),
            "window_s": round(max(late), 3) if late else 0.0,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    polls = [float(a) for a in sys.argv[1:]] or [5.0, 1.0]
    for poll in polls:
        print(json.dumps(measure(poll)))


if __name__ == "__main__":
    main()
