"""``sealring example-api`` as a user runs it: a subprocess against a real local issuer."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
from typer.testing import CliRunner

from sealring.cli import app
from tests.helpers.issuer import IssuerServer
from tests.helpers.ports import free_port
from tests.helpers.tokens import AUDIENCE, mint, new_key


def test_example_api_command_serves_the_api(issuer_server: IssuerServer) -> None:
    key = new_key("ES256")
    issuer_server.publish(key)
    port = free_port()
    command = [sys.executable, "-m", "sealring", "example-api", "--issuer", issuer_server.issuer]
    command += ["--audience", AUDIENCE, "--port", str(port)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    assert http.get("/healthz").json() == {"status": "ok"}
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "example-api did not start"
                    time.sleep(0.1)
            token = mint(key, issuer=issuer_server.issuer, now=time.time())
            hello = http.get("/api/hello", headers={"Authorization": f"Bearer {token}"})
            assert hello.status_code == 200
            assert hello.json()["scopes"] == ["items:read"]
            assert http.get("/api/hello").status_code == 401
    finally:
        child.terminate()
        child.wait(10)
    # the JWKS URI was discovered from the issuer's metadata
    assert [s.path for s in issuer_server.seen[:2]] == [
        "/.well-known/oauth-authorization-server",
        "/jwks",
    ]


def test_example_api_command_refuses_an_insecure_issuer() -> None:
    result = CliRunner().invoke(
        app, ["example-api", "--issuer", "http://as.example", "--audience", AUDIENCE]
    )
    assert result.exit_code == 2
    assert "https" in result.output


def test_verify_command_discovers_the_jwks_from_the_issuer(issuer_server: IssuerServer) -> None:
    key = new_key("ES256")
    issuer_server.publish(key)
    token = mint(key, issuer=issuer_server.issuer, now=time.time())
    args = ["verify", token, "--issuer", issuer_server.issuer, "--token-type", "at+jwt", "--json"]
    result = CliRunner().invoke(app, [*args, "--audience", AUDIENCE])
    assert result.exit_code == 0, result.output
    assert '"valid":true' in result.output
    assert [s.path for s in issuer_server.seen] == [
        "/.well-known/oauth-authorization-server",
        "/jwks",
    ]
    other = new_key("ES256")
    forged = mint(other, issuer=issuer_server.issuer, now=time.time())
    assert (
        CliRunner().invoke(app, ["verify", forged, "--issuer", issuer_server.issuer]).exit_code == 1
    )


def test_verify_command_needs_jwks_or_issuer(issuer_server: IssuerServer) -> None:
    assert CliRunner().invoke(app, ["verify", "a.b.c"]).exit_code == 2
    issuer_server.routes.clear()  # no metadata: a usage error, not a verdict on the token
    result = CliRunner().invoke(app, ["verify", "a.b.c", "--issuer", issuer_server.issuer])
    assert result.exit_code == 2


def test_example_api_jwks_options_set_its_cache_and_cooldown(issuer_server: IssuerServer) -> None:
    """Issue 12: the cooldown and cache bounds are settable, so the example API can follow a
    fast test schedule; with the default 30 s cooldown the new kid below would get 401."""
    old, new = new_key("ES256", kid="old"), new_key("ES256", kid="new")
    issuer_server.publish(old, max_age=300)
    port = free_port()
    command = [sys.executable, "-m", "sealring", "example-api", "--issuer", issuer_server.issuer]
    command += ["--audience", AUDIENCE, "--port", str(port), "--jwks-cooldown", "1"]
    command += ["--jwks-min-max-age", "1", "--jwks-max-max-age", "60", "--jwks-timeout", "2"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "example-api did not start"
                    time.sleep(0.1)

            def hello(kid: str) -> int:
                key = old if kid == "old" else new
                token = mint(key, issuer=issuer_server.issuer, now=time.time())
                headers = {"Authorization": f"Bearer {token}"}
                return http.get("/api/hello", headers=headers).status_code

            assert hello("old") == 200
            issuer_server.publish(old, new, max_age=300)
            time.sleep(1.2)  # past the 1 s cooldown
            assert hello("new") == 200
            assert "sealring_resource_jwks_refused" in http.get("/metrics").text
    finally:
        child.terminate()
        child.wait(10)


def test_example_api_refuses_bad_jwks_options() -> None:
    args = ["example-api", "--issuer", "https://as.example", "--audience", AUDIENCE]
    result = CliRunner().invoke(app, [*args, "--jwks-cooldown", "-1"])
    assert result.exit_code == 2
    assert "cooldown" in result.output
