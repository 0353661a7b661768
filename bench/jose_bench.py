"""JOSE core benchmark: sign and full verify, sealring vs PyJWT vs joserfc vs raw cryptography.

    .venv/bin/python bench/jose_bench.py [--rounds 15] [--min-time 0.05]

Per algorithm (RS256, PS256, ES256, EdDSA) it times, in microseconds per operation:

* sign: a JWT with the same claims (raw: ``cryptography`` signing the same signing input);
* verify: signature + claims (exp, iss, aud) with the key pre-loaded (raw: ``cryptography``
  verifying the same bytes, the floor any JWT library sits on).

Implementations are interleaved round by round in a rotating order. Load from other processes on
a shared 2-core machine only ever lengthens a sample, so the targets are read on the ratio of the
minimums (each side's least-disturbed sample, taken over the same period); the median of the
per-round ratios is printed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt as rfc_jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from sealring.jose import JWK, JWTVerifier, KeySet, LocalSigner, encode_jwt

ALGS = ("RS256", "PS256", "ES256", "EdDSA")
IMPLS = ("raw", "sealring", "pyjwt", "joserfc")
ISSUER = "https://as.example"
AUDIENCE = "api"

TARGETS = {
    # (metric, alg): (limit, "<=" or ">=")
    ("verify sealring/raw", "RS256"): (1.4, "<="),
    ("verify sealring/raw", "ES256"): (1.2, "<="),
    ("verify sealring/raw", "EdDSA"): (1.15, "<="),
    ("verify pyjwt/sealring", "RS256"): (2.0, ">="),
    ("verify pyjwt/sealring", "ES256"): (1.4, ">="),
    ("sign sealring/raw", "ES256"): (1.35, "<="),
}


def _private_key(alg: str) -> Any:
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def _raw_ops(
    alg: str, key: Any, signing_input: bytes
) -> tuple[Callable[[], object], Callable[[], object]]:
    pub = key.public_key()
    if alg == "RS256":
        pad, h = padding.PKCS1v15(), hashes.SHA256()
        sig = key.sign(signing_input, pad, h)
        return (lambda: key.sign(signing_input, pad, h)), (
            lambda: pub.verify(sig, signing_input, pad, h)
        )
    if alg == "PS256":
        h = hashes.SHA256()
        pad = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
        sig = key.sign(signing_input, pad, h)
        return (lambda: key.sign(signing_input, pad, h)), (
            lambda: pub.verify(sig, signing_input, pad, h)
        )
    if alg == "ES256":
        algo = ec.ECDSA(hashes.SHA256())
        der = key.sign(signing_input, algo)
        return (lambda: key.sign(signing_input, algo)), (
            lambda: pub.verify(der, signing_input, algo)
        )
    sig = key.sign(signing_input)
    return (lambda: key.sign(signing_input)), (lambda: pub.verify(sig, signing_input))


def _build(alg: str) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    key = _private_key(alg)
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "user-1234",
        "aud": AUDIENCE,
        "exp": now + 3600,
        "iat": now,
        "jti": "b4f1c0de",
        "scope": "read write",
    }

    jwk = JWK.from_key(key, alg=alg)
    signer = LocalSigner(jwk)
    verifier = JWTVerifier(
        KeySet.of(jwk), issuer=ISSUER, audience=AUDIENCE, required=("exp", "iss")
    )
    token = encode_jwt(claims, signer)
    signing_input = token.rsplit(".", 1)[0].encode()
    ops: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {}
    ops["raw"] = _raw_ops(alg, key, signing_input)
    ops["sealring"] = (lambda: encode_jwt(claims, signer)), (lambda: verifier.verify(token))

    pub = key.public_key()
    headers = {"kid": jwk.kid}
    py_token = pyjwt.encode(claims, key, algorithm=alg, headers=headers)
    pyjwt_decode = pyjwt.PyJWT().decode
    ops["pyjwt"] = (
        lambda: pyjwt.encode(claims, key, algorithm=alg, headers=headers),
        lambda: pyjwt_decode(py_token, pub, algorithms=[alg], issuer=ISSUER, audience=AUDIENCE),
    )

    rfc_key: Any
    if alg in ("RS256", "PS256"):
        rfc_key = RSAKey.import_key(key)
    elif alg == "ES256":
        rfc_key = ECKey.import_key(key)
    else:
        rfc_key = OKPKey.import_key(key)
    rfc_header = {"alg": alg, "kid": jwk.kid}
    rfc_token = rfc_jwt.encode(rfc_header, claims, rfc_key, algorithms=[alg])
    registry = rfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
    )

    def rfc_verify() -> object:
        tok = rfc_jwt.decode(rfc_token, rfc_key, algorithms=[alg])
        registry.validate(tok.claims)
        return tok

    ops["joserfc"] = (
        (lambda: rfc_jwt.encode(rfc_header, claims, rfc_key, algorithms=[alg])),
        rfc_verify,
    )

    # Sanity: every implementation's verify accepts its own token before we time anything.
    for name, (sign, verify) in ops.items():
        sign()
        verify()
        assert name  # keep the loop obvious
    _ = encode_dss_signature  # the raw ES256 floor verifies DER, as cryptography takes it
    return ops


def _time(fn: Callable[[], object], min_time: float) -> float:
    """Microseconds per call: repeat in batches until min_time has passed."""
    batch = 1
    while True:
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / batch * 1e6
        batch *= 2 if elapsed < min_time / 4 else 1
        if elapsed >= min_time / 4:
            batch = max(batch, int(batch * min_time / max(elapsed, 1e-9)) + 1)


def run(rounds: int, min_time: float) -> dict[str, dict[str, dict[str, list[float]]]]:
    suites = {alg: _build(alg) for alg in ALGS}
    # results[alg][op][impl] = per-round µs
    results: dict[str, dict[str, dict[str, list[float]]]] = {
        alg: {op: {impl: [] for impl in IMPLS} for op in ("sign", "verify")} for alg in ALGS
    }
    for r in range(rounds):
        for alg in ALGS:
            order = IMPLS[r % len(IMPLS) :] + IMPLS[: r % len(IMPLS)]
            for op_index, op in enumerate(("sign", "verify")):
                for impl in order:
                    fn = suites[alg][impl][op_index]
                    results[alg][op][impl].append(_time(fn, min_time))
    return results


def _ratios(a: list[float], b: list[float]) -> tuple[float, float]:
    """(ratio of the minimums, median of the per-round ratios) of a over b."""
    paired = statistics.median(x / y for x, y in zip(a, b, strict=True))
    return min(a) / min(b), paired


def report(results: dict[str, dict[str, dict[str, list[float]]]]) -> bool:
    print(f"{'alg':6} {'op':6} " + " ".join(f"{i:>18}" for i in IMPLS))
    print(f"{'':6} {'':6} " + " ".join(f"{'min (median) µs':>18}" for _ in IMPLS))
    for alg, ops in results.items():
        for op, impls in ops.items():
            cells = [f"{min(v):7.1f} ({statistics.median(v):7.1f})" for v in impls.values()]
            print(f"{alg:6} {op:6} " + " ".join(f"{c:>18}" for c in cells))
    print()
    print("ratios: of the minimums (median of per-round ratios)")
    columns = [
        ("sealring/raw", "sealring", "raw"),
        ("pyjwt/raw", "pyjwt", "raw"),
        ("joserfc/raw", "joserfc", "raw"),
        ("pyjwt/sealring", "pyjwt", "sealring"),
        ("joserfc/sealring", "joserfc", "sealring"),
    ]
    print(f"{'alg':6} {'op':6} " + " ".join(f"{name:>16}" for name, _, _ in columns))
    computed: dict[tuple[str, str], float] = {}
    for alg, ops in results.items():
        for op, impls in ops.items():
            cells = []
            for name, top, bottom in columns:
                by_min, paired = _ratios(impls[top], impls[bottom])
                computed[(f"{op} {name}", alg)] = by_min
                cells.append(f"{by_min:6.3f} ({paired:5.3f})")
            print(f"{alg:6} {op:6} " + " ".join(f"{c:>16}" for c in cells))
    print()
    print("targets (ratio of the minimums)")
    ok = True
    for (metric, alg), (limit, sense) in TARGETS.items():
        value = computed[(metric, alg)]
        met = value <= limit if sense == "<=" else value >= limit
        ok &= met
        print(f"  {alg:6} {metric:22} {value:6.3f} {sense} {limit:<5} {'met' if met else 'MISSED'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per timing sample")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # joserfc warns that "EdDSA" is deprecated by RFC 9864
    report(run(args.rounds, args.min_time))


if __name__ == "__main__":
    main()
