"""The public surface: exact exports, fail-loud configuration, the console script."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sealring.jose import JWK, InvalidKey, JWTVerifier, KeySet
from tests.helpers.jose import key


def test_verifier_configuration_fails_loudly() -> None:
    keys = KeySet.of(key("ES256"))
    for bad in ([], ["HS256"], ["ES256", "none"]):
        with pytest.raises(ValueError):
            JWTVerifier(keys, algorithms=bad)
    with pytest.raises(TypeError):
        JWTVerifier(keys, algorithms="ES256")
    with pytest.raises(TypeError):
        JWTVerifier(keys, required="exp")
    with pytest.raises(ValueError):
        JWTVerifier(keys, leeway=-1)


def test_mismatched_private_key_is_refused() -> None:
    with pytest.raises(InvalidKey):
        JWK(key("ES256").public_key, JWK.generate("ES256").private_key())


def test_console_script_never_shows_a_traceback() -> None:
    for args in (
        ["verify", "not-a-token", "--jwks", "/nonexistent"],
        ["decode", "\udcff"],
        ["decode", "a.b"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "sealring", *args],
            capture_output=True,
            timeout=60,
            check=False,
            errors="surrogateescape",
        )
        assert done.returncode in (1, 2)
        assert "Traceback" not in done.stderr


def test_key_set_is_immutable() -> None:
    keys = KeySet.of(key("ES256"))
    with pytest.raises(AttributeError):
        keys.keys = ()  # type: ignore[misc]
