"""``sealring demo``: the story of docs/concepts.md, run for real in a terminal.

It starts the authorization server and the example API on an embedded database in a temporary
folder, then walks through: register a client, get a token, read its header and claims, call the
API (200), change one character and call again (401, and why), rotate the signing keys in stages
with the JWKS shown before and after while the old token keeps working, and finally leaves both
servers running with their URLs and the client's credentials until Ctrl-C.

Every step runs the same command or HTTP request a user would, and prints it first.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from sealring.cli._common import Command, ensure_port_free, fail

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["demo", "register"]

AUDIENCE = "https://api.example"
SCOPE = "items:read items:write"
START_TIMEOUT = 60.0
# A short JWKS max-age, so a staged rotation takes half a minute, not the production ten: a new
# key is published 2 x jwks_max_age before it signs (docs/keys.md). Not shorter: the example
# API caches a JWKS for at least 30 s and refetches for an unknown kid at most every 30 s
# (JWKSSettings), and the new key must be in its cache by the time it signs.
JWKS_MAX_AGE = 15
DEMO_SETTINGS = {
    "SEALRING_JWKS_MAX_AGE": str(JWKS_MAX_AGE),
    "SEALRING_KEY_POLL_INTERVAL": "0.5",
    "SEALRING_LOG_LEVEL": "warning",
    # The demo explains the development KEK itself; the log line would only interrupt.
    "SEALRING_DEV_KEK_WARNED": "1",
}


class DemoError(Exception):
    """A step of the demo failed; the message says which and where its log is."""


def _fail(message: str, code: int = 1) -> NoReturn:
    fail("demo", message, code)


def demo(
    port: Annotated[
        int,
        typer.Option(metavar="PORT", help="Port of the authorization server (0: any free one)."),
    ] = 0,
    api_port: Annotated[
        int, typer.Option(metavar="PORT", help="Port of the example API (0: any free one).")
    ] = 0,
) -> None:
    """Run both servers in a temporary folder and walk through issuing, verifying and rotating.

    Stops both servers and deletes the folder at Ctrl-C.
    """
    from rich.console import Console

    for value, option in ((port, "--port"), (api_port, "--api-port")):
        if not 0 <= value <= 65535:
            _fail(f"{option} must be from 0 to 65535, not {value}", 2)
    port = port or _free_port()
    api_port = api_port or _free_port()
    if port == api_port:
        _fail("--port and --api-port must differ", 2)
    ensure_port_free("demo", "127.0.0.1", port)
    ensure_port_free("demo", "127.0.0.1", api_port)
    console = Console(highlight=False)
    with tempfile.TemporaryDirectory(prefix="sealring-demo-") as folder:
        story = _Story(console, Path(folder), port, api_port)
        try:
            story.run()
            story.wait_for_ctrl_c()
        except DemoError as exc:
            story.stop()
            _fail(str(exc))
        except (OSError, ValueError, KeyError) as exc:  # a server answered nonsense, or vanished
            story.stop()
            _fail(f"stopped: {type(exc).__name__}: {exc}")
        except KeyboardInterrupt:
            pass
        finally:
            story.stop()
    console.print("Stopped both servers and deleted the demo folder.")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found


class _Story:
    def __init__(self, console: Console, folder: Path, port: int, api_port: int) -> None:
        import httpx

        self.console = console
        self.folder = folder
        self.issuer = f"http://127.0.0.1:{port}"
        self.api = f"http://127.0.0.1:{api_port}"
        self.port, self.api_port = port, api_port
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SEALRING_")}
        self.env.update(DEMO_SETTINGS, SEALRING_DATABASE_URL=f"sqlite:///{folder / 'demo.db'}")
        self.children: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.http = httpx.Client(timeout=10)
        self.client_id = ""
        self.secret = ""

    # -- the story --------------------------------------------------------------------------
    def run(self) -> None:
        self.chapter("1. Start the authorization server")
        self.say(
            f"An embedded SQLite database and a development key-encryption key in {self.folder}."
        )
        self.start(
            "authorization server", ["serve", "--port", str(self.port)], self.issuer + "/readyz"
        )
        meta = self.http.get(self.issuer + "/.well-known/oauth-authorization-server").json()
        self.say(f"Issuer {meta['issuer']}; it publishes its public keys at {meta['jwks_uri']}.")

        self.chapter("2. Register a client")
        created = self.sealring(
            "clients", "create", "--name", "demo", "--scope", SCOPE, "--audience", AUDIENCE,
            "--format", "json",
        )  # fmt: skip
        creds = json.loads(created)
        self.client_id, self.secret = creds["client_id"], creds["client_secret"]
        self.say(f"client_id {self.client_id}, and a secret shown this once (kept only hashed).")

        self.chapter("3. Get an access token (client_credentials, RFC 6749 §4.4)")
        self.show_command(
            f'curl -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials '
            f"-d scope=items:read {self.issuer}/token"
        )
        token = self.get_token("items:read")
        self.say(f"A signed JWT: header.payload.signature, {len(token)} characters.")
        self.show_token(token)

        self.chapter("4. Call the API with it")
        self.start(
            "example API",
            ["example-api", "--issuer", self.issuer, "--audience", AUDIENCE,
             "--port", str(self.api_port)],
            self.api + "/healthz",
        )  # fmt: skip
        self.say("The API fetched the issuer's JWKS once and verifies tokens locally.")
        self.call_api(token, expect=200)

        self.chapter("5. Change one character of the token and call again")
        tampered = _tamper(token)
        self.say("The signature no longer matches the header and payload: the API refuses it.")
        self.call_api(tampered, expect=401)

        self.chapter("6. Rotate the signing keys, in stages")
        before = self.jwks()
        self.show_jwks("JWKS before", before)
        self.sealring("keys", "rotate", "--alg", "ES256")
        after = self.wait_for(
            "the server to publish the new key",
            lambda: keys if len(keys := self.jwks()) > len(before) else None,
            timeout=30,
        )
        self.show_jwks("JWKS after", after, new=set(after) - set(before))
        self.say(
            "The new key is published before it signs, so every API that caches the JWKS has "
            "it by the time tokens signed with it arrive. The old key stays published until "
            "its tokens have expired:"
        )
        self.call_api(token, expect=200)
        new_kid = next(iter(set(after) - set(before)))
        self.say(
            f"The new key signs after pre-publication: 2 x the JWKS max-age of {JWKS_MAX_AGE} s "
            "here (10 minutes by default)."
        )
        self.countdown("pre-publication", 2 * JWKS_MAX_AGE)
        fresh = self.wait_for(
            "the new key to start signing",
            lambda: t if _kid(t := self.get_token("items:read")) == new_kid else None,
            timeout=30,
        )
        self.say(f"A new token is signed with the new key {new_kid}:")
        self.call_api(fresh, expect=200)

    def wait_for_ctrl_c(self) -> None:
        self.chapter("Both servers keep running")
        for line in (
            f"authorization server  {self.issuer}   (JWKS {self.issuer}/jwks.json)",
            f"example API           {self.api}/api/hello",
            f"export CLIENT_ID={self.client_id}",
            f"export CLIENT_SECRET={shlex.quote(self.secret)}",
            f"export SEALRING_DATABASE_URL={self.env['SEALRING_DATABASE_URL']}",
            f"TOKEN=$(sealring token --issuer {self.issuer} --scope items:read)",
            f'curl -H "Authorization: Bearer $TOKEN" {self.api}/api/hello',
        ):
            self.console.print(f"  {line}", soft_wrap=True)
        self.console.print("Press Ctrl-C to stop both servers.", style="bold")
        sys.stdout.flush()
        while True:
            for name, proc, log in self.children:
                if proc.poll() is not None:
                    raise DemoError(f"the {name} stopped (exit {proc.returncode}); see {log}")
            time.sleep(0.5)

    # -- steps ------------------------------------------------------------------------------
    def start(self, name: str, args: list[str], ready_url: str) -> None:
        import httpx

        self.show_command("sealring " + " ".join(args))
        log = self.folder / f"{args[0]}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(  # noqa: S603 - this interpreter, our own command
                [sys.executable, "-m", "sealring", *args], cwd=self.folder, env=self.env,
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.children.append((name, proc, log))

        def ready() -> bool | None:
            if proc.poll() is not None:
                output = log.read_text(errors="replace").strip().splitlines()
                raise DemoError(
                    f"the {name} did not start: {output[-1] if output else 'no output'}"
                )
            try:
                return self.http.get(ready_url).status_code == 200 or None
            except httpx.TransportError:
                return None

        self.wait_for(f"the {name} to start", ready, timeout=START_TIMEOUT)
        self.say(f"The {name} is up (log: {log}).")

    def sealring(self, *args: str) -> str:
        self.show_command("sealring " + shlex.join(args))
        with self.console.status(f"sealring {args[0]} {args[1]}"):
            done = subprocess.run(  # noqa: S603 - this interpreter, our own command
                [sys.executable, "-m", "sealring", *args], cwd=self.folder, env=self.env,
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        if done.returncode != 0:
            raise DemoError(f"sealring {args[0]} {args[1]} failed: {done.stderr.strip()}")
        if args[0] == "keys":
            self.console.print(done.stdout.rstrip(), soft_wrap=True)
        return done.stdout

    def get_token(self, scope: str) -> str:
        from sealring.server.routes import endpoint_url

        response = self.http.post(
            endpoint_url(self.issuer, "token"),
            data={"grant_type": "client_credentials", "scope": scope},
            auth=(self.client_id, self.secret),
        )
        if response.status_code != 200:
            raise DemoError(f"the token endpoint answered {response.status_code}: {response.text}")
        token: str = response.json()["access_token"]
        return token

    def call_api(self, token: str, *, expect: int) -> None:
        self.show_command(f'curl -H "Authorization: Bearer {_short(token)}" {self.api}/api/hello')
        response = self.http.get(
            self.api + "/api/hello", headers={"Authorization": f"Bearer {token}"}
        )
        style = "green" if response.status_code == 200 else "red"
        self.console.print(f"HTTP {response.status_code}", style=f"bold {style}")
        challenge = response.headers.get("www-authenticate")
        if challenge:
            self.console.print(f"WWW-Authenticate: {challenge}", soft_wrap=True)
        if response.status_code == 200:
            self.console.print_json(response.text)
        if response.status_code != expect:
            raise DemoError(f"the API answered {response.status_code}, not {expect}")

    def jwks(self) -> dict[str, str]:
        """kid -> alg of the keys the server publishes now."""
        body = self.http.get(self.issuer + "/jwks.json").json()
        return {key["kid"]: key["alg"] for key in body["keys"]}

    def wait_for(self, what: str, probe: Callable[[], Any], *, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        with self.console.status(f"Waiting for {what}..."):
            while True:
                result = probe()
                if result:
                    return result
                if time.monotonic() > deadline:
                    raise DemoError(f"gave up waiting for {what} after {timeout:g} s")
                time.sleep(0.25)

    def countdown(self, what: str, seconds: float) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn(what), BarColumn(), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(what, total=seconds)
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < seconds:
                progress.update(task, completed=elapsed)
                time.sleep(0.25)

    # -- output -----------------------------------------------------------------------------
    def chapter(self, title: str) -> None:
        self.console.rule(f"[bold]{title}", align="left")

    def say(self, text: str) -> None:
        self.console.print(text, soft_wrap=True)

    def show_command(self, command: str) -> None:
        self.console.print(f"$ {command}", style="cyan", soft_wrap=True, markup=False)

    def show_token(self, token: str) -> None:
        from sealring.jose import decode_payload, parse_compact

        jws = parse_compact(token)
        self.console.print("Header (which key and algorithm signed it; the verifier decides both):")
        self.console.print_json(json.dumps(jws.header))
        self.console.print("Claims (readable by anyone: a JWT is signed, not encrypted):")
        self.console.print_json(json.dumps(decode_payload(jws)))

    def show_jwks(self, title: str, keys: dict[str, str], new: set[str] | None = None) -> None:
        self.console.print(f"{title}: {self.issuer}/jwks.json")
        for kid, alg in keys.items():
            mark = "  <- new" if new and kid in new else ""
            self.console.print(f"  {alg:6} {kid}{mark}", soft_wrap=True)

    def stop(self) -> None:
        for _, proc, _ in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _, proc, _ in self.children:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.clear()
        self.http.close()


def _kid(token: str) -> str:
    from sealring.jose import parse_compact

    return str(parse_compact(token).header.get("kid"))


def _short(token: str) -> str:
    return token[:12] + "..." + token[-8:]


def _tamper(token: str) -> str:
    """The token with one character of its signature changed (not the last one, whose low bits
    base64url may ignore)."""
    at = len(token) - 5
    swapped = "A" if token[at] != "A" else "B"
    return token[:at] + swapped + token[at + 1 :]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.command("demo", cls=Command)(demo)
