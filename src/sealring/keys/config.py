"""Key configuration from the environment, checked at start (see docs/keys.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from sealring.keys.hsm import HSMConfig
from sealring.keys.kek import KEKRing, load_kek

__all__ = ["DEFAULT_DATABASE_URL", "database_url_from_env", "load_key_config"]

DEFAULT_DATABASE_URL = "sqlite:///./sealring.db"


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("SEALRING_DATABASE_URL") or DEFAULT_DATABASE_URL


def load_key_config(
    database_url: str, environ: Mapping[str, str] | None = None
) -> tuple[KEKRing | None, HSMConfig | None]:
    """``(kek, hsm)`` for a :class:`~sealring.keys.KeyManager`.

    With an HSM configured (``SEALRING_HSM_MODULE``) a KEK is optional: it is only needed to
    open keys stored in the database before the HSM was introduced.
    """
    env = os.environ if environ is None else environ
    hsm = HSMConfig.from_env(env)
    if hsm is not None and not (env.get("SEALRING_KEK") or env.get("SEALRING_KEK_FILE")):
        return None, hsm
    return load_kek(database_url, env), hsm
