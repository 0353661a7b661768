"""``sealring verify`` / ``decode`` / ``jwk generate`` through the real Typer app."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sealring.cli import app
from sealring.jose import JWK, KeySet, LocalSigner, encode_jwt
from tests.helpers.clock import T0
from tests.helpers.jose import key

runner = CliRunner()
ISS = "https://as.example"


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(KeySet.of(key("ES256"), key("EdDSA")).to_dict()))
    return path


def _token(alg: str = "ES256", **claims: object) -> str:
    body = {"iss": ISS, "aud": "api", "sub": "u1", "exp": T0 + 60, "iat": T0, **claims}
    return encode_jwt(body, LocalSigner(key(alg)), typ="at+jwt")


def _verify(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["verify", *args])
    return result.exit_code, result.stdout, result.stderr


def test_verify_valid(jwks_file: Path) -> None:
    token = _token()
    code, out, err = _verify(
        token,
        "--jwks",
        str(jwks_file),
        "--issuer",
        ISS,
        "--audience",
        "api",
        "--token-type",
        "at+jwt",
        "--now",
        str(T0),
    )
    assert code == 0, err
    assert json.loads(out)["sub"] == "u1"
    code, out, _ = _verify(token, "--jwks", str(jwks_file), "--now", str(T0), "--json")
    report = json.loads(out)
    assert report["valid"] is True
    assert report["alg"] == "ES256"
    assert report["kid"] == key("ES256").kid
    assert report["header"]["typ"] == "at+jwt"


def test_verify_from_stdin(jwks_file: Path) -> None:
    result = runner.invoke(
        app, ["verify", "-", "--jwks", str(jwks_file), "--now", str(T0)], input=_token() + "\n"
    )
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("extra", "token_kwargs", "code"),
    [
        (["--issuer", "https://other.example"], {}, "invalid_issuer"),
        (["--audience", "other"], {}, "invalid_audience"),
        (["--token-type", "JWT"], {}, "invalid_type"),
        (["--now", str(T0 + 61)], {}, "token_expired"),
        (["--algorithms", "RS256"], {}, "alg_not_allowed"),
        ([], {"exp": "soon"}, "invalid_claim"),
        ([], {"nbf": T0 + 30}, "token_not_yet_valid"),
    ],
)
def test_verify_invalid(
    jwks_file: Path, extra: list[str], token_kwargs: dict[str, object], code: str
) -> None:
    args = ["--jwks", str(jwks_file), "--now", str(T0), *extra]
    if "--now" in extra:
        args = ["--jwks", str(jwks_file), *extra]
    rc, out, err = _verify(_token(**token_kwargs), *args)
    assert rc == 1
    assert out == ""
    assert err.count("\n") == 1
    assert code in err
    rc, out, _ = _verify(_token(**token_kwargs), *args, "--json")
    assert rc == 1
    assert json.loads(out) == {"valid": False, "error": code, "message": json.loads(out)["message"]}


def test_verify_leeway(jwks_file: Path) -> None:
    rc, _, _ = _verify(_token(), "--jwks", str(jwks_file), "--now", str(T0 + 65), "--leeway", "10")
    assert rc == 0


def test_verify_unknown_key_and_garbage(jwks_file: Path) -> None:
    rc, _, err = _verify(_token("RS256"), "--jwks", str(jwks_file), "--now", str(T0))
    assert rc == 1
    assert "unknown_kid" in err
    for garbage in ("", "a.b", "x" * 3_000_000, "\udcff.e30.e30", "é.é.é"):
        rc, _, err = _verify(garbage, "--jwks", str(jwks_file))
        assert rc == 1, garbage[:20]
        assert "malformed" in err


@pytest.mark.parametrize(
    "content",
    [None, b"not json", b'{"keys":[{"kty":"oct","k":"AAAA"}]}', b"\xff\xfe", b'{"keys":' * 5000],
)
def test_verify_usage_errors(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_bytes(content)
    rc, _, err = _verify(_token(), "--jwks", str(path))
    assert rc == 2
    assert err.startswith("sealring verify: ")


def test_verify_bad_arguments(jwks_file: Path) -> None:
    assert _verify(_token(), "--jwks", str(jwks_file), "--algorithms", "HS256")[0] == 2
    assert _verify(_token(), "--jwks", str(jwks_file), "--algorithms", "none")[0] == 2
    assert _verify(_token(), "--jwks", str(jwks_file), "--leeway", "-1")[0] == 2
    assert _verify(_token(), "--jwks", str(jwks_file), "--now", "yesterday")[0] == 2
    assert _verify(_token())[0] == 2  # --jwks missing


class _Handler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/jwks")
            self.end_headers()
            return
        if self.path == "/big":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b" " * (600 * 1024))
            return
        self.send_response(200 if self.path == "/jwks" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def jwks_server() -> Iterator[str]:
    _Handler.body = json.dumps(KeySet.of(key("ES256")).to_dict()).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_verify_jwks_url(jwks_server: str) -> None:
    assert _verify(_token(), "--jwks", f"{jwks_server}/jwks", "--now", str(T0))[0] == 0
    rc, _, err = _verify(_token(), "--jwks", f"{jwks_server}/redirect", "--now", str(T0))
    assert rc == 2
    assert "answered a redirect; refused" in err
    assert _verify(_token(), "--jwks", f"{jwks_server}/missing")[0] == 2
    assert _verify(_token(), "--jwks", f"{jwks_server}/big")[0] == 2


def test_decode_is_marked_unverified() -> None:
    result = runner.invoke(app, ["decode", _token()])
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert out["UNVERIFIED"] is True
    assert out["claims"]["sub"] == "u1"
    assert "UNVERIFIED" in result.stderr
    forged = _token().rsplit(".", 1)[0] + ".AAAA"
    assert runner.invoke(app, ["decode", forged]).exit_code == 0
    bad = runner.invoke(app, ["decode", "nope"])
    assert bad.exit_code == 1
    assert "malformed" in bad.stderr


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_jwk_generate(alg: str) -> None:
    private = runner.invoke(app, ["jwk", "generate", "--alg", alg])
    assert private.exit_code == 0
    jwk = JWK.from_json(private.stdout, allow_private=True)
    assert jwk.alg == alg
    assert jwk.kid == jwk.thumbprint()
    public = runner.invoke(app, ["jwk", "generate", "--alg", alg, "--public", "--kid", "k1"])
    assert public.exit_code == 0
    data = json.loads(public.stdout)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(data)
    assert data["kid"] == "k1"


def test_jwk_generate_refuses_other_algorithms() -> None:
    for alg in ("HS256", "none", "RSA-OAEP", ""):
        assert runner.invoke(app, ["jwk", "generate", "--alg", alg]).exit_code == 2


def test_jwks_url_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from sealring.cli import jose_commands

    monkeypatch.setattr(jose_commands, "FETCH_TIMEOUT", 0.3)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        with pytest.raises(jose_commands.JWKSFetchError):
            jose_commands.load_jwks(f"http://127.0.0.1:{silent.getsockname()[1]}/jwks")
    finally:
        silent.close()


def test_plain_http_jwks_is_refused_off_loopback() -> None:
    rc, _, err = _verify(_token(), "--jwks", "http://jwks.example/keys")
    assert rc == 2
    assert err.startswith("sealring verify: cannot fetch the JWKS at http://jwks.example/keys: ")
    assert "https" in err


@pytest.mark.parametrize(
    "option", [["--leeway", "nan"], ["--leeway", "inf"], ["--now", "nan"], ["--now", "-inf"]]
)
def test_non_finite_times_are_usage_errors(jwks_file: Path, option: list[str]) -> None:
    """A NaN leeway or clock would make every time comparison false: refuse it up front."""
    rc, out, err = _verify(_token(), "--jwks", str(jwks_file), *option)
    assert rc == 2
    assert out == ""
    assert err.startswith("sealring verify: --")
    assert "Traceback" not in err
