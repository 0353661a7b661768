"""The README's tour, pasted as a new user would: its shell blocks, run for real by bash.

The authorization server runs as `make run` would start it (``sealring serve`` in an empty
folder, no SEALRING_* settings); the blocks of "Five minutes with it" then run in one bash, in
that folder, in order. The only change to them: the ports 8000 and 8001 become free ones, so
that the test cannot collide with anything else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import SEALRING, clean_env, free_port, stop, wait_until_ready

README = Path(__file__).resolve().parents[2] / "README.md"
TOUR = "## Five minutes with it"


def tour_blocks(text: str) -> list[str]:
    """The ```sh blocks of the tour section, in order."""
    start = text.index(TOUR)
    end = text.find("\n## ", start + len(TOUR))
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def test_the_tour_has_the_blocks_a_new_user_needs() -> None:
    script = "\n".join(tour_blocks(README.read_text()))
    for needed in ("sealring clients create", "sealring token", "sealring verify",
                   "sealring example-api", "/api/hello"):  # fmt: skip
        assert needed in script
    assert "jq" not in script  # nothing beyond what the set-up installs


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    script = "\n".join(tour_blocks(README.read_text()))
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    script = script.replace("127.0.0.1:8001", f"127.0.0.1:{api_port}")
    script = script.replace("--port 8001", f"--port {api_port}")
    assert "8000" not in script
    assert "8001" not in script
    # `. .venv/bin/activate` in the folder where `make run` was typed: the clone's venv
    (tmp_path / ".venv").symlink_to(sys.prefix)
    env = clean_env()
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if Path(p) != Path(sys.executable).parent
    )  # the tour's own `activate` must put sealring on PATH
    server = subprocess.Popen(
        [*SEALRING, "serve", "--port", str(port)], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    shell = None
    # Files, not pipes: the example API the tour leaves in the background keeps its copies open.
    out_file, err_file = tmp_path / "tour.out", tmp_path / "tour.err"
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", server)
        with out_file.open("w") as out_sink, err_file.open("w") as err_sink:
            shell = subprocess.Popen(
                ["bash", "-e", "-c", script], cwd=tmp_path, env=env, start_new_session=True,
                stdout=out_sink, stderr=err_sink, text=True,
            )  # fmt: skip
            shell.wait(timeout=180)
    finally:
        if shell is not None:  # stop the example API the tour left running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGINT)
            if shell.poll() is None:
                shell.kill()
                shell.wait()
        stop(server)
    out, err = out_file.read_text(), err_file.read_text()
    assert shell.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in out + err
    client_id = re.search(r'"client_id": "([a-z2-7]{26})"', out)
    assert client_id, out  # sealring verify printed the token's claims
    assert '"aud": "https://api.example"' in out
    assert '"scope": "items:read"' in out
    assert '"token_type":"Bearer"' in out.replace(" ", "")  # the plain-OAuth curl
    assert f'"message":"hello, {client_id[1]}"' in out  # the example API accepted the token
    assert "The secret is shown only now" in err
