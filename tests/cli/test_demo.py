"""``sealring demo`` end to end, as a user runs it: its story, its servers, its Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from tests.helpers.cli import SEALRING, clean_env

STORY_TIMEOUT = 240  # seconds; the staged rotation alone waits 30


@pytest.mark.slow
@pytest.mark.timeout(STORY_TIMEOUT + 60)
def test_demo_walks_through_the_story_and_stops_at_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*SEALRING, "demo"], cwd=tmp_path, env=clean_env(COLUMNS="200"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    waiting = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                waiting.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert waiting.wait(STORY_TIMEOUT), "".join(lines) + proc.stderr.read()  # type: ignore[union-attr]
        story = "".join(lines)
        # both servers really are left running, with the credentials printed
        issuer = re.search(r"authorization server\s+(http://127\.0\.0\.1:\d+)", story)
        api = re.search(r"example API\s+(http://127\.0\.0\.1:\d+)/api/hello", story)
        client_id = re.search(r"export CLIENT_ID=(\S+)", story)
        secret = re.search(r"export CLIENT_SECRET=(\S+)", story)
        assert issuer, story
        assert api, story
        assert client_id, story
        assert secret, story
        token = httpx.post(
            issuer[1] + "/token", data={"grant_type": "client_credentials"},
            auth=(client_id[1], secret[1]), timeout=10,
        ).json()["access_token"]  # fmt: skip
        hello = httpx.get(api[1] + "/api/hello", headers={"Authorization": f"Bearer {token}"})
        assert hello.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        reader.join(10)
    err = proc.stderr.read()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    story = "".join(lines)
    assert proc.returncode == 0, story + err
    assert "Traceback" not in story + err

    # the story, in order
    chapters = [
        "1. Start the authorization server",
        "2. Register a client",
        "3. Get an access token",
        "4. Call the API with it",
        "5. Change one character of the token and call again",
        "6. Rotate the signing keys, in stages",
        "Both servers keep running",
        "Stopped both servers and deleted the demo folder.",
    ]
    positions = [story.index(c) for c in chapters]
    assert positions == sorted(positions)
    # the decoded header and claims
    assert '"typ": "at+jwt"' in story
    assert '"aud": "https://api.example"' in story
    assert f'"client_id": "{client_id[1]}"' in story
    # 200, then 401 with the reason, for the tampered token
    tampered = story[story.index("5. Change") : story.index("6. Rotate")]
    assert "HTTP 401" in tampered
    assert 'error="invalid_token", error_description="signature verification failed"' in tampered
    # the JWKS before and after: one new ES256 key, the old ones still published
    before = _kids(story, "JWKS before")
    after = _kids(story, "JWKS after")
    assert len(before) == 2
    assert set(before) < set(after)
    assert len(after) == 3
    new = (set(after) - set(before)).pop()
    rotation = story[story.index("JWKS after") : story.index("Both servers keep running")]
    assert rotation.count("HTTP 200") == 2  # the old token still works; so does a new one
    assert f"A new token is signed with the new key {new}" in rotation
    # Ctrl-C stopped both servers and removed the folder
    folder = re.search(r"development key-encryption key in (\S+)\.", story)
    assert folder is not None
    assert not Path(folder[1]).exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(issuer[1] + "/readyz", timeout=2)
    with pytest.raises(httpx.TransportError):
        httpx.get(api[1] + "/healthz", timeout=2)
    assert secret[1] not in err


def _kids(story: str, title: str) -> list[str]:
    block = story[story.index(title) :].splitlines()[1:]
    kids = []
    for line in block:
        match = re.match(r"\s+(ES256|RS256)\s+(\S+)", line)
        if not match:
            break
        kids.append(match[2])
    return kids


def test_demo_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run(
            [*SEALRING, "demo", "--port", str(port)], cwd=tmp_path, env=clean_env(),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"sealring demo: port {port} on 127.0.0.1 is already in use (--port)\n"
    assert json.dumps(done.stdout) == '""'
