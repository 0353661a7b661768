"""The server secret: the HMAC key of client secrets and handles (docs/server.md, "Client secrets").

Configured (``SEALRING_SERVER_SECRET`` / ``_FILE``) or generated once and kept in the
``oauth_server_secret`` table, where every replica finds the same one, sealed under the KEK
(AES-256-GCM, issue 10): a copy of the database alone does not give it away, as the signing keys
beside it do not. A secret an older version stored in clear is sealed, with the same value, by
the first start that has a KEK, so client secret hashes and handles made under it still verify;
one sealed under an older KEK is sealed again under the first one (KEK rotation, docs/keys.md).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealring.keys import KEKError, KEKRing, KeyConfigError
from sealring.server.stores.tables import ServerSecret

__all__ = ["load_server_secret", "reseal_server_secret"]

log = logging.getLogger("sealring.server")

# Associated data: a server-secret blob never opens as a signing key, nor the other way round.
_AAD = b"sealring server secret v1"


def load_server_secret(
    engine: Engine,
    configured: bytes | None,
    *,
    kek: KEKRing | None = None,
    clock: Callable[[], float] = time.time,
) -> bytes:
    """The configured server secret, else the one in the database, created (sealed under
    ``kek``) on first use. Without a KEK a new one is refused and a clear one is used with a
    warning."""
    if configured is not None:
        return configured
    row = _read(engine)
    if row is None:
        if kek is None:
            raise KeyConfigError(
                "no KEK to seal a new server secret under: set SEALRING_KEK or SEALRING_KEK_FILE, "
                "or give the secret itself in SEALRING_SERVER_SECRET(_FILE)"
            )
        kek_id, blob = kek.seal(secrets.token_bytes(32), aad=_AAD)
        try:
            with Session(engine) as session, session.begin():
                session.add(ServerSecret(id=1, secret_enc=blob, kek_id=kek_id, created_at=clock()))
        except IntegrityError:
            pass  # another replica created it first; use theirs
        row = _read(engine)
        assert row is not None
    value = _open(row, kek)
    if kek is not None:
        _reseal(engine, row, value, kek)
    elif row.secret is not None:
        log.warning(
            "the server secret is stored in clear in the database (no KEK configured to seal "
            "it): set SEALRING_KEK or SEALRING_SERVER_SECRET (docs/security.md)"
        )
    return value


def reseal_server_secret(engine: Engine, kek: KEKRing) -> bool:
    """Seal the stored server secret under ``kek``'s first KEK if it is not already (in clear,
    or under another KEK); True when it changed. Creates nothing (``sealring keys rewrap``)."""
    row = _read(engine)
    return row is not None and _reseal(engine, row, _open(row, kek), kek)


def _read(engine: Engine) -> ServerSecret | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.get(ServerSecret, 1)


def _open(row: ServerSecret, kek: KEKRing | None) -> bytes:
    if row.secret_enc is None:
        if row.secret is None:
            raise KEKError("the stored server secret is empty")
        return row.secret
    if kek is None:
        raise KEKError(
            f"the server secret is sealed under KEK id {row.kek_id}: set SEALRING_KEK or "
            "SEALRING_KEK_FILE"
        )
    try:
        return kek.unseal(row.secret_enc, aad=_AAD, kek_id=row.kek_id)
    except InvalidTag:
        raise KEKError(
            f"{kek.source} cannot open the server secret, sealed under KEK id {row.kek_id}: "
            "configure that KEK too (first the new one, then the old: docs/keys.md)"
        ) from None


def _reseal(engine: Engine, row: ServerSecret, value: bytes, kek: KEKRing) -> bool:
    if row.secret is None and row.kek_id == kek.primary_id:
        return False
    kek_id, blob = kek.seal(value, aad=_AAD)
    # Only if nobody changed it since we read it: a replica with another KEK ring may have
    # sealed it first, and either result opens to the same value.
    unchanged = (
        ServerSecret.secret_enc.is_(None)
        if row.secret_enc is None
        else ServerSecret.secret_enc == row.secret_enc
    )
    with Session(engine) as session, session.begin():
        session.execute(
            update(ServerSecret)
            .where(ServerSecret.id == 1, unchanged)
            .values(secret=None, secret_enc=blob, kek_id=kek_id)
        )
    log.info("server secret sealed under KEK %s", kek_id)
    return True
