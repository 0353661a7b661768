"""Signing keys: lifecycle, rotation with pre-publication, KEK encryption, PKCS#11, JWKS.

See docs/keys.md for the lifecycle and its defaults, and docs/architecture.md for the contract.
"""

from __future__ import annotations

from sealring.keys.config import DEFAULT_DATABASE_URL, database_url_from_env, load_key_config
from sealring.keys.errors import (
    HSMError,
    InvalidTransition,
    KEKError,
    KEKMismatch,
    KeyConfigError,
    KeysError,
    KeyUnavailable,
    UnknownKey,
)
from sealring.keys.hsm import HSMConfig, HSMSigner
from sealring.keys.jwks import JWKSDocument
from sealring.keys.kek import KEKRing, load_kek
from sealring.keys.manager import KeyInfo, KeyManager
from sealring.keys.schedule import KeyRecord, RotationPolicy, Transition

__all__ = [
    "DEFAULT_DATABASE_URL",
    "HSMConfig",
    "HSMError",
    "HSMSigner",
    "InvalidTransition",
    "JWKSDocument",
    "KEKError",
    "KEKMismatch",
    "KEKRing",
    "KeyConfigError",
    "KeyInfo",
    "KeyManager",
    "KeyRecord",
    "KeyUnavailable",
    "KeysError",
    "RotationPolicy",
    "Transition",
    "UnknownKey",
    "database_url_from_env",
    "load_kek",
    "load_key_config",
]
