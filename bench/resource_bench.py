"""Resource-server toolkit benchmark: per-request access-token verification.

    .venv/bin/python bench/resource_bench.py [--rounds 9] [--tokens 200] [--min-time 0.1]

For ES256 and RS256, the same tokens (RFC 9068 access tokens, distinct ``jti``) are verified by

* (a) ``AccessTokenVerifier`` with the verified-token cache off (full verification each time);
* (b) ``AccessTokenVerifier`` with the cache on, every request a hit;
* (c) PyJWT: ``PyJWKClient.get_signing_key_from_jwt`` + ``jwt.decode`` (iss, aud, exp checked).

Both libraries fetch the JWK Set from the same local HTTP server once and then use their caches,
as a resource server does per request. The implementations run interleaved, round by round in a
rotating order, and every ratio is the median of per-round ratios, so the drift of a shared 2-core
machine cancels out. The wrk load test is ``bench/resource_load.py``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt as pyjwt

from sealring.jose.jwk import JWK
from sealring.jose.jws import LocalSigner
from sealring.jose.jwt import encode_jwt
from sealring.resource import AccessTokenVerifier, JWKSClient

ALGS = ("ES256", "RS256")
IMPLS = ("a_nocache", "b_cache_hit", "c_pyjwt")
AUDIENCE = "https://api.example"
TARGETS = {
    # ratio name -> (alg or "*", minimum)
    ("c/a", "ES256"): 1.5,
    ("c/a", "RS256"): 2.0,
    ("c/b", "ES256"): 20.0,
    ("c/b", "RS256"): 20.0,
}


@contextmanager
def jwks_server(doc: dict[str, Any]) -> Iterator[str]:
    """Serve ``doc`` as a JWK Set (and minimal metadata) on a loopback port."""
    body = json.dumps(doc).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "max-age=3600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def mint_tokens(key: JWK, issuer: str, count: int) -> list[str]:
    now = int(time.time())
    signer = LocalSigner(key)
    return [
        encode_jwt(
            {
                "iss": issuer,
                "sub": "client-1",
                "aud": AUDIENCE,
                "client_id": "client-1",
                "scope": "items:read items:write",
                "iat": now,
                "exp": now + 3600,
                "jti": secrets.token_hex(8),
            },
            signer,
            typ="at+jwt",
        )
        for _ in range(count)
    ]


def implementations(
    alg: str, issuer: str, jwks_uri: str, stack: list[Callable[[], None]]
) -> dict[str, Callable[[str], object]]:
    clients = [JWKSClient(jwks_uri), JWKSClient(jwks_uri)]
    stack.extend(client.close for client in clients)
    nocache = AccessTokenVerifier(issuer, audience=AUDIENCE, keys=clients[0], cache_size=None)
    cached = AccessTokenVerifier(issuer, audience=AUDIENCE, keys=clients[1])
    pyjwk_client = pyjwt.PyJWKClient(jwks_uri, cache_jwk_set=True, lifespan=3600)

    def pyjwt_verify(token: str) -> object:
        signing_key = pyjwk_client.get_signing_key_from_jwt(token)
        return pyjwt.decode(
            token,
            signing_key.key,
            algorithms=[alg],
            audience=AUDIENCE,
            issuer=issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )

    return {"a_nocache": nocache.verify, "b_cache_hit": cached.verify, "c_pyjwt": pyjwt_verify}


def time_per_op(fn: Callable[[str], object], tokens: list[str], min_time: float) -> float:
    """Microseconds per verification, looping over ``tokens`` until ``min_time`` has passed."""
    passes = 0
    start = time.perf_counter()
    while True:
        for token in tokens:
            fn(token)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / (passes * len(tokens)) * 1e6


def run(rounds: int, count: int, min_time: float) -> dict[str, Any]:
    keys = {alg: JWK.generate(alg) for alg in ALGS}
    doc = {"keys": [key.public().to_dict() for key in keys.values()]}
    results: dict[str, Any] = {}
    closers: list[Callable[[], None]] = []
    with jwks_server(doc) as issuer:
        jwks_uri = f"{issuer}/jwks"
        try:
            for alg in ALGS:
                tokens = mint_tokens(keys[alg], issuer, count)
                impls = implementations(alg, issuer, jwks_uri, closers)
                for fn in impls.values():  # warm: fetch the key set, fill the cache
                    for token in tokens:
                        fn(token)
                per_round: dict[str, list[float]] = {name: [] for name in IMPLS}
                ratios: dict[str, list[float]] = {"c/a": [], "c/b": []}
                for r in range(rounds):
                    order = IMPLS[r % 3 :] + IMPLS[: r % 3]
                    timing = {name: time_per_op(impls[name], tokens, min_time) for name in order}
                    for name, value in timing.items():
                        per_round[name].append(value)
                    ratios["c/a"].append(timing["c_pyjwt"] / timing["a_nocache"])
                    ratios["c/b"].append(timing["c_pyjwt"] / timing["b_cache_hit"])
                results[alg] = {
                    "us_per_op": {n: statistics.median(v) for n, v in per_round.items()},
                    "ratios": {n: statistics.median(v) for n, v in ratios.items()},
                }
        finally:
            for close in closers:
                close()
    return results


def report(results: dict[str, Any]) -> bool:
    ok = True
    print("| alg | (a) no cache µs | (b) cache hit µs | (c) PyJWT µs | c/a | c/b |")
    print("|---|---:|---:|---:|---:|---:|")
    for alg, r in results.items():
        us, ratio = r["us_per_op"], r["ratios"]
        print(
            f"| {alg} | {us['a_nocache']:.1f} | {us['b_cache_hit']:.2f} | {us['c_pyjwt']:.1f} "
            f"| {ratio['c/a']:.2f}x | {ratio['c/b']:.1f}x |"
        )
    print()
    for (name, alg), minimum in TARGETS.items():
        value = results[alg]["ratios"][name]
        passed = value >= minimum
        ok &= passed
        print(f"target {name} {alg} >= {minimum}x: {value:.2f}x {'PASS' if passed else 'FAIL'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--min-time", type=float, default=0.1)
    args = parser.parse_args()
    results = run(args.rounds, args.tokens, args.min_time)
    report(results)


if __name__ == "__main__":
    main()
