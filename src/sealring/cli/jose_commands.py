"""``sealring verify``, ``sealring decode`` and ``sealring jwk``: the JOSE core from a shell.

Exit codes: 0 valid, 1 invalid (one line naming the reason on stderr), 2 usage error (bad
arguments, unreadable or refused JWKS).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from sealring.cli._common import Command, fail, warn
from sealring.jose import (
    ALGORITHMS,
    JWK,
    InvalidKeySet,
    JoseError,
    JWTVerifier,
    KeySet,
    decode_payload,
    parse_compact,
)
from sealring.jose.jwks import DEFAULT_MAX_SIZE

__all__ = ["JWKSFetchError", "discover_jwks", "load_jwks", "register"]

FETCH_TIMEOUT = 10.0
_GENERATE_ALGS = ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA")

jwk_app = typer.Typer(name="jwk", help="JSON Web Keys: generate.", no_args_is_help=True)


class JWKSFetchError(Exception):
    """The JWKS could not be read or fetched (a usage problem: exit 2)."""


def load_jwks(source: str, *, max_size: int = DEFAULT_MAX_SIZE) -> KeySet:
    """A :class:`KeySet` from a file path or an ``https://`` URL (``http://`` on loopback)."""
    if source.startswith(("https://", "http://")):
        return _remote_key_set(jwks_uri=source, max_size=max_size)
    path = Path(source)
    try:
        if path.stat().st_size > max_size:
            raise JWKSFetchError("JWKS file larger than the size cap")
        body = path.read_bytes()
    except OSError as exc:
        raise JWKSFetchError(
            f"cannot read JWKS file {path}: {exc.strerror or type(exc).__name__}"
        ) from exc
    try:
        return KeySet.from_json(body, max_size=max_size)
    except InvalidKeySet as exc:
        # The key set's own message already says "JWK Set refused"; say it once, with the file.
        reason = exc.message.removeprefix("JWK Set refused: ")
        raise JWKSFetchError(f"the JWKS in {path} is refused: {reason}") from exc


def discover_jwks(issuer: str) -> KeySet:
    """The key set of ``issuer``, found through its metadata."""
    return _remote_key_set(issuer=issuer)


def _remote_key_set(
    *, jwks_uri: str | None = None, issuer: str | None = None, max_size: int = DEFAULT_MAX_SIZE
) -> KeySet:
    """Fetch through the resource toolkit's client: the same timeouts, caps and URL rules."""
    from sealring.resource import JWKSClient, JWKSError, JWKSSettings

    settings = JWKSSettings(timeout=FETCH_TIMEOUT, max_size=max_size)
    try:
        with JWKSClient(jwks_uri, issuer=issuer, settings=settings) as client:
            return client.get_key_set()
    except (ValueError, JWKSError) as exc:
        where = f"the JWKS at {jwks_uri}" if jwks_uri else f"the JWKS of {issuer}"
        raise JWKSFetchError(f"cannot fetch {where}: {exc}") from exc


def _usage(message: str, command: str = "verify") -> NoReturn:
    fail(command, message)


_STDIN = "-"


def _read_token(token: str) -> str:
    if token == _STDIN:
        token = sys.stdin.readline()
    return token.strip()


def _dump(value: object, *, compact: bool) -> str:
    if compact:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return json.dumps(value, indent=2, sort_keys=True)


def verify(
    token: Annotated[
        str,
        typer.Argument(
            metavar="TOKEN",
            help="The compact JWT, or - to read it from stdin (a token given here shows in `ps`).",
        ),
    ],
    jwks: Annotated[
        str | None,
        typer.Option(
            "--jwks",
            metavar="FILE|URL",
            help="JWKS file path or http(s) URL (default: discovered from --issuer).",
        ),
    ] = None,
    algorithms: Annotated[
        str | None,
        typer.Option(
            "--algorithms",
            metavar="LIST",
            help="Comma-separated allow-list. Default: only the algorithm bound to the key.",
        ),
    ] = None,
    issuer: Annotated[
        str | None,
        typer.Option(
            "--issuer",
            metavar="URL",
            help="Required exact 'iss'. Without --jwks, the JWKS is discovered from the "
            "issuer's metadata (RFC 8414, then OpenID Discovery).",
        ),
    ] = None,
    audience: Annotated[
        list[str] | None,
        typer.Option("--audience", metavar="AUD", help="Accepted 'aud' (repeatable)."),
    ] = None,
    token_type: Annotated[
        str | None,
        typer.Option("--token-type", metavar="TYP", help="Required header 'typ', e.g. at+jwt."),
    ] = None,
    now: Annotated[
        float | None,
        typer.Option("--now", metavar="EPOCH", help="Verify as of this time (epoch seconds)."),
    ] = None,
    leeway: Annotated[
        float, typer.Option("--leeway", metavar="SECONDS", help="Clock skew allowed.")
    ] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout, valid or not.")
    ] = False,
) -> None:
    """Verify a JWT against a JWKS: signature, then exp/nbf/iat, iss, aud and typ.

    A check whose option is not given (--issuer, --audience, --token-type) is not made; a
    token that passes then gets a warning on stderr naming them (--json: "unchecked").
    """
    allow: list[str] | None = None
    if algorithms is not None:
        allow = [name.strip() for name in algorithms.split(",") if name.strip()]
        unknown = [name for name in allow if name not in ALGORITHMS]
        if unknown or not allow:
            _usage(f"unsupported algorithm(s): {', '.join(unknown) or '(none given)'}")
    if not math.isfinite(leeway) or leeway < 0:
        _usage("--leeway must be a finite number of seconds, not negative")
    if now is not None and not math.isfinite(now):
        _usage("--now must be a finite number of epoch seconds")
    if jwks is None and issuer is None:
        _usage("give --jwks, or --issuer to discover the issuer's JWKS")
    try:
        keys = load_jwks(jwks) if jwks is not None else discover_jwks(str(issuer))
    except JWKSFetchError as exc:
        _usage(str(exc))
    at = time.time() if now is None else now
    verifier = JWTVerifier(
        keys,
        algorithms=allow,
        issuer=issuer,
        audience=audience or None,
        typ=token_type,
        leeway=leeway,
        clock=lambda: at,
    )
    unchecked = _unchecked(issuer=issuer, audience=audience, token_type=token_type)
    try:
        result = verifier.verify(_read_token(token))
    except JoseError as exc:
        if as_json:
            report: dict[str, object] = {"valid": False, "error": exc.code, "message": exc.message}
            typer.echo(_dump(report, compact=True))
        typer.echo(f"sealring verify: invalid token ({exc.code}): {exc.message}", err=True)
        raise typer.Exit(1) from None
    if unchecked:  # a pass that skipped checks must not read as a full pass
        warn("verify", "valid, but not checked: " + ", ".join(unchecked))
    if as_json:
        report = {
            "valid": True,
            "alg": result.alg,
            "kid": result.key.kid,
            "header": result.header,
            "claims": result.claims,
            "unchecked": unchecked,
        }
        typer.echo(_dump(report, compact=True))
    else:
        typer.echo(_dump(result.claims, compact=False))


def _unchecked(
    *, issuer: str | None, audience: list[str] | None, token_type: str | None
) -> list[str]:
    """The claim checks this verification skips, each with the option that would make it."""
    missing = []
    if issuer is None:
        missing.append("iss (--issuer)")
    if not audience:
        missing.append("aud (--audience)")
    if token_type is None:
        missing.append("typ (--token-type)")
    return missing


UNVERIFIED = "UNVERIFIED: the signature has NOT been checked; do not trust these contents."


def decode(
    token: Annotated[
        str,
        typer.Argument(metavar="TOKEN", help="The compact JWS/JWT, or - to read it from stdin."),
    ],
) -> None:
    """Print a token's header and claims WITHOUT verifying anything."""
    try:
        jws = parse_compact(_read_token(token), max_size=1024 * 1024)
    except JoseError as exc:
        fail("decode", f"malformed token: {exc.message}", 1)
    out: dict[str, Any] = {"UNVERIFIED": True, "warning": UNVERIFIED, "header": jws.header}
    try:
        out["claims"] = decode_payload(jws)
    except JoseError:
        out["payload_utf8" if _is_utf8(jws.payload) else "payload_hex"] = (
            jws.payload.decode() if _is_utf8(jws.payload) else jws.payload.hex()
        )
    typer.echo(UNVERIFIED, err=True)
    typer.echo(_dump(out, compact=False))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@jwk_app.command("generate", cls=Command)
def generate(
    alg: Annotated[
        str, typer.Option("--alg", metavar="ALG", help=f"One of {', '.join(_GENERATE_ALGS)}.")
    ],
    public: Annotated[bool, typer.Option("--public", help="Print only the public key.")] = False,
    kid: Annotated[
        str | None,
        typer.Option("--kid", metavar="KID", help="Key id (default: RFC 7638 thumbprint)."),
    ] = None,
) -> None:
    """Generate a key pair and print it as a JWK (private unless --public)."""
    if alg not in _GENERATE_ALGS:
        _usage(f"--alg must be one of {', '.join(_GENERATE_ALGS)}", "jwk generate")
    key = JWK.generate(alg)
    if kid is not None:
        if not kid:
            _usage("--kid must not be empty", "jwk generate")
        key = JWK.from_key(key.private_key(), alg=alg, kid=kid)
    typer.echo(_dump(key.to_dict() if public else key.to_private_dict(), compact=False))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.command("verify", cls=Command)(verify)
    app.command("decode", cls=Command)(decode)
    app.add_typer(jwk_app, name="jwk")
