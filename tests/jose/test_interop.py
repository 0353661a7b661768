"""Cross-checks: tokens signed here verify in PyJWT, joserfc and node's jose, and back."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from joserfc import jwt as rfc_jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from sealring.jose import JWTVerifier, KeySet, LocalSigner, encode_jwt
from tests.helpers.clock import T0
from tests.helpers.jose import key

ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
ISS = "https://as.example"
NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def _claims(tag: str) -> dict[str, Any]:
    return {
        "iss": ISS,
        "aud": "api",
        "sub": tag,
        "exp": int(T0) + 300,
        "iat": int(T0),
        "n": [1, "é"],
    }


def _verifier(alg: str) -> JWTVerifier:
    return JWTVerifier(KeySet.of(key(alg)), issuer=ISS, audience="api", clock=lambda: T0)


def _rfc_key(alg: str) -> Any:
    private = key(alg).private_key()
    if alg.startswith(("RS", "PS")):
        return RSAKey.import_key(private)
    if alg.startswith("ES"):
        return ECKey.import_key(private)
    return OKPKey.import_key(private)


@pytest.mark.parametrize("alg", ALGS)
def test_pyjwt(alg: str) -> None:
    jwk = key(alg)
    token = encode_jwt(_claims("to-pyjwt"), LocalSigner(jwk))
    decoded = pyjwt.decode(
        token,
        jwk.public_key,
        algorithms=[alg],
        audience="api",
        issuer=ISS,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert decoded == _claims("to-pyjwt")
    theirs = pyjwt.encode(
        _claims("from-pyjwt"), jwk.private_key(), algorithm=alg, headers={"kid": jwk.kid}
    )
    assert _verifier(alg).verify(theirs).claims == _claims("from-pyjwt")


@pytest.mark.parametrize("alg", ALGS)
def test_joserfc(alg: str) -> None:
    jwk = key(alg)
    rfc_key = _rfc_key(alg)
    token = encode_jwt(_claims("to-joserfc"), LocalSigner(jwk))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags "EdDSA" as deprecated by RFC 9864
        decoded = rfc_jwt.decode(token, rfc_key, algorithms=[alg])
        theirs = rfc_jwt.encode(
            {"alg": alg, "kid": jwk.kid}, _claims("from-joserfc"), rfc_key, algorithms=[alg]
        )
    assert decoded.claims == _claims("to-joserfc")
    assert _verifier(alg).verify(theirs).claims == _claims("from-joserfc")


def _node(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A missing oracle fails rather than skips: a skip would let CI pass on a machine where the
    # install step (scripts/system-deps.sh) did not run.
    node = shutil.which("node")
    assert node is not None, "node is required"
    assert (NODE_DIR / "node_modules" / "jose").is_dir(), "run scripts/system-deps.sh"
    done = subprocess.run(
        [node, str(NODE_DIR / "jose_oracle.mjs")],
        input=json.dumps(tasks).encode(),
        capture_output=True,
        cwd=NODE_DIR,
        timeout=120,
        check=True,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


@pytest.mark.node
def test_node_jose() -> None:
    tasks: list[dict[str, Any]] = []
    for alg in ALGS:
        jwk = key(alg)
        tasks.append(
            {
                "op": "verify",
                "token": encode_jwt(_claims("to-node"), LocalSigner(jwk), typ="at+jwt"),
                "jwks": KeySet.of(jwk).to_dict(),
                "algorithms": [alg],
                "now": T0,
            }
        )
        tasks.append(
            {
                "op": "sign",
                "alg": alg,
                "jwk": jwk.to_private_dict(),
                "claims": _claims("from-node"),
                "header": {"kid": jwk.kid, "typ": "at+jwt"},
            }
        )
    # And a forged one: node must refuse it too.
    forged = encode_jwt(_claims("x"), LocalSigner(key("ES256")))[:-4] + "AAAA"
    tasks.append(
        {
            "op": "verify",
            "token": forged,
            "jwks": KeySet.of(key("ES256")).to_dict(),
            "algorithms": ["ES256"],
            "now": T0,
        }
    )
    results = _node(tasks)
    assert len(results) == len(tasks)
    for alg, verified, signed in zip(ALGS, results[0:-1:2], results[1:-1:2], strict=True):
        assert verified["ok"], (alg, verified)
        assert verified["payload"] == _claims("to-node")
        token = signed["token"]
        result = JWTVerifier(
            KeySet.of(key(alg)), issuer=ISS, audience="api", typ="at+jwt", clock=lambda: T0
        ).verify(token)
        assert result.claims == _claims("from-node"), alg
    assert results[-1]["ok"] is False
