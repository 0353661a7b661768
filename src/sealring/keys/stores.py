"""Where a signing key's private part lives: the database under the KEK, or a PKCS#11 token.

:class:`KeyManager` runs the schedule and owns the transaction; a :class:`KeyStore` only makes,
opens and forgets private keys, so an encrypted key in the database and a key on an HSM are
interchangeable behind it (one level below the :class:`~sealring.jose.jws.Signer` protocol,
which does the same for signing). Each row names its store in ``SigningKeyRow.backend``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from cryptography.exceptions import InvalidTag

from sealring.jose.jwk import JWK
from sealring.jose.jws import LocalSigner, Signer
from sealring.keys.errors import KeyConfigError
from sealring.keys.hsm import HSM, HSMConfig
from sealring.keys.kek import KEKRing
from sealring.keys.models import SigningKeyRow
from sealring.keys.schedule import PENDING, PUBLISHED

__all__ = ["DatabaseKeyStore", "HSMKeyStore", "KeyStore"]

log = logging.getLogger("sealring.keys")


class KeyStore(Protocol):
    """Makes, opens and forgets the private part of signing keys of one backend."""

    @property
    def backend(self) -> str:
        """The name stored in ``SigningKeyRow.backend`` for this store's keys."""
        ...

    def generate(self, alg: str, now: float) -> SigningKeyRow:
        """A new pending key: its private part stored, its row not yet added to a session."""
        ...

    def open_signer(self, row: SigningKeyRow) -> Signer:
        """The signer of a stored key."""
        ...

    def erase(self, row: SigningKeyRow) -> Callable[[], None] | None:
        """Forget a removed or revoked key: clear the row's private part inside the
        transaction, and return what must happen once it has committed (destroying a token
        object is irreversible, so it never happens before), if anything."""
        ...

    def collect_orphans(self, rows: Iterable[SigningKeyRow]) -> None:
        """Destroy stored keys that no published row owns (a rotation killed before commit).
        Called under the write lock."""
        ...

    def close(self) -> None: ...


class DatabaseKeyStore:
    """Private JWKs in ``SigningKeyRow.private_enc``, AES-256-GCM under the first KEK."""

    backend = "db"

    def __init__(self, kek: KEKRing | None) -> None:
        self.kek = kek

    def _ring(self) -> KEKRing:
        if self.kek is None:
            raise KeyConfigError("no KEK configured")
        return self.kek

    def generate(self, alg: str, now: float) -> SigningKeyRow:
        kek = self._ring()
        jwk = JWK.generate(alg)
        kid = jwk.thumbprint()
        if jwk.kid != kid:
            jwk = JWK.from_key(jwk.private_key(), alg=alg, kid=kid)
        secret = json.dumps(jwk.to_private_dict(), sort_keys=True).encode()
        kek_id, blob = kek.encrypt(secret, kid=kid, alg=alg)
        return _pending_row(jwk, alg, self.backend, now, private_enc=blob, kek_id=kek_id)

    def open_signer(self, row: SigningKeyRow) -> Signer:
        if row.private_enc is None:
            raise KeyConfigError(f"signing key {row.kid} has no private part")
        plain = self._ring().decrypt(row.private_enc, kid=row.kid, alg=row.alg, kek_id=row.kek_id)
        return LocalSigner(JWK.from_json(plain, allow_private=True), row.alg)

    def erase(self, row: SigningKeyRow) -> Callable[[], None] | None:
        row.private_enc = None
        row.kek_id = None
        return None  # gone with the commit; a rollback keeps the key, as it should

    def collect_orphans(self, rows: Iterable[SigningKeyRow]) -> None:
        """Nothing to do: a key in the database cannot outlive the transaction that made it."""

    def unopenable(self, rows: Sequence[SigningKeyRow]) -> list[str]:
        """The kids of published database keys the KEK ring cannot decrypt."""
        bad = []
        for row in rows:
            if row.backend != self.backend or row.state not in PUBLISHED:
                continue
            if row.private_enc is None:
                continue
            if self.kek is None:
                bad.append(row.kid)
                continue
            try:
                self.kek.decrypt(row.private_enc, kid=row.kid, alg=row.alg, kek_id=row.kek_id)
            except InvalidTag:
                bad.append(row.kid)
        return bad

    def rewrap(self, row: SigningKeyRow) -> bool:
        """Re-encrypt ``row`` under the first KEK; False when it already is (or has no key)."""
        kek = self._ring()
        if row.private_enc is None or row.kek_id == kek.primary_id:
            return False
        plain = kek.decrypt(row.private_enc, kid=row.kid, alg=row.alg, kek_id=row.kek_id)
        row.kek_id, row.private_enc = kek.encrypt(plain, kid=row.kid, alg=row.alg)
        return True

    def close(self) -> None:
        """Nothing held open."""


class HSMKeyStore:
    """Keys generated on a PKCS#11 token, non-extractable; the row keeps the object's id."""

    backend = "hsm"

    def __init__(self, config: HSMConfig) -> None:
        self.config = config
        self._hsm: HSM | None = None

    def session(self) -> HSM:
        """The token session, opened on first use."""
        if self._hsm is None:
            self._hsm = HSM(self.config)
        return self._hsm

    def generate(self, alg: str, now: float) -> SigningKeyRow:
        ref, public = self.session().generate(alg)
        return _pending_row(public, alg, self.backend, now, hsm_ref=ref)

    def open_signer(self, row: SigningKeyRow) -> Signer:
        if row.hsm_ref is None:
            raise KeyConfigError(f"signing key {row.kid} has no token object")
        return self.session().signer(row.hsm_ref, JWK.from_json(row.public_jwk))

    def erase(self, row: SigningKeyRow) -> Callable[[], None] | None:
        ref = row.hsm_ref
        row.private_enc = None
        row.kek_id = None
        if ref is None:
            return None
        # The row keeps hsm_ref: an unpublished row owns no object, so a destroy that did not
        # run (the process died after the commit) is redone by collect_orphans.
        return lambda: self.session().destroy(ref)

    def collect_orphans(self, rows: Iterable[SigningKeyRow]) -> None:
        hsm = self.session()
        owned = {r.hsm_ref for r in rows if r.hsm_ref and r.state in PUBLISHED}
        for ref in hsm.refs() - owned:
            log.warning("destroying orphaned HSM key object %s", ref)
            hsm.destroy(ref)

    def close(self) -> None:
        if self._hsm is not None:
            self._hsm.close()
            self._hsm = None


def _pending_row(
    key: JWK, alg: str, backend: str, now: float, **private: bytes | str | None
) -> SigningKeyRow:
    """A new key's row: public JWK (public members only), state pending, where it is stored."""
    return SigningKeyRow(
        kid=key.kid,
        alg=alg,
        state=PENDING,
        backend=backend,
        public_jwk=json.dumps(key.to_dict(), sort_keys=True),
        created_at=now,
        **private,
    )
