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
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag

from sealring.jose.jwk import JWK
from sealring.jose.jws import LocalSigner, Signer
from sealring.keys.errors import KeyConfigError
from sealring.keys.hsm import HSM, HSMConfig
from sealring.keys.kek import KEKRing
from sealring.keys.models import SigningKeyRow
from sealring.keys.schedule import PENDING, PUBLISHED

__all__ = ["DatabaseKeyStore", "HSMKeyStore", "HSMObject", "KeyStore"]

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

    def finish_erasures(self, rows: Iterable[SigningKeyRow]) -> None:
        """Redo what :meth:`erase` returned for removed or revoked rows when the process died
        before it ran. Called under the write lock."""
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

    def finish_erasures(self, rows: Iterable[SigningKeyRow]) -> None:
        """Nothing to do: a key in the database cannot outlive the transaction that erased it."""

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


@dataclass(frozen=True)
class HSMObject:
    """A private key object on the token that ``sealring keys gc-hsm`` looks at."""

    ref: str  # CKA_ID, hex
    label: str
    kid: str | None  # the key row that recorded it, if any
    state: str | None  # that row's state (removed, revoked), or None: no row


class HSMKeyStore:
    """Keys generated on a PKCS#11 token, non-extractable; the row keeps the object's id.

    Several installations may share one token (issue 10). Each object's label carries the
    installation id of the database that made it, and this store destroys an object only when
    its label is this installation's and, outside ``gc-hsm``, only when a row of this database
    records it as removed or revoked.
    """

    backend = "hsm"

    def __init__(self, config: HSMConfig) -> None:
        self.config = config
        self._hsm: HSM | None = None
        #: This installation's id (``sealring_installation``); the manager sets it from the
        #: database before it makes or destroys anything.
        self.installation: str | None = None

    def session(self) -> HSM:
        """The token session, opened on first use."""
        if self._hsm is None:
            self._hsm = HSM(self.config)
        return self._hsm

    def _owner(self) -> str:
        if self.installation is None:
            raise KeyConfigError("this database has no installation id (migration 0007)")
        return self.installation

    def labels(self, ref: str) -> tuple[str, str]:
        """The labels under which the object ``ref`` is this installation's: the one it writes,
        and the one written before migration 0007 (prefix + id), which only a row of this
        database can vouch for."""
        return self.session().label(self._owner(), ref), self.config.label_prefix + ref

    def generate(self, alg: str, now: float) -> SigningKeyRow:
        ref, public = self.session().generate(alg, self._owner())
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
        labels = self.labels(ref)
        # The row keeps hsm_ref: a destroy that did not run (the process died after the
        # commit) is redone by finish_erasures.
        return lambda: log.info(
            "destroyed %d token object(s) of HSM key %s", self.session().destroy(ref, labels), ref
        )

    def finish_erasures(self, rows: Iterable[SigningKeyRow]) -> None:
        erased = {r.hsm_ref: r for r in rows if r.hsm_ref and r.state not in PUBLISHED}
        if not erased:
            return
        hsm = self.session()
        for ref, label in hsm.objects().items():
            if ref in erased and label in self.labels(ref):
                log.warning(
                    "destroying the token object of %s key %s (its destroy did not run)",
                    erased[ref].state,
                    erased[ref].kid,
                )
                hsm.destroy(ref, self.labels(ref))

    def orphans(self, rows: Iterable[SigningKeyRow]) -> tuple[list[HSMObject], int]:
        """This installation's objects that no published key owns, and how many prefixed
        objects are someone else's (never touched). Reads only."""
        by_ref = {r.hsm_ref: r for r in rows if r.hsm_ref}
        mine: list[HSMObject] = []
        others = 0
        for ref, label in sorted(self.session().objects().items()):
            row = by_ref.get(ref)
            if row is not None and row.state in PUBLISHED:
                continue  # in use
            if row is None and label == self.labels(ref)[0]:
                mine.append(HSMObject(ref, label, None, None))  # a rotation that never committed
            elif row is not None and label in self.labels(ref):
                mine.append(HSMObject(ref, label, row.kid, row.state))
            else:
                others += 1
        return mine, others

    def destroy(self, found: HSMObject) -> None:
        """Destroy one object :meth:`orphans` returned (under the write lock)."""
        self.session().destroy(found.ref, self.labels(found.ref))

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
