"""Refresh-token families: rotation in one atomic step, reuse detection, grace window.

Every redeemed authorization code starts a family (a row of ``oauth_grants``); each use of a
refresh token consumes it and issues its successor (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2).

- **Rotation** is one transaction on one connection: the token and its family are read with the
  write lock held (``BEGIN IMMEDIATE`` on SQLite, the token's row ``FOR UPDATE`` on PostgreSQL),
  the caller's check decides, then a guarded ``UPDATE ... SET consumed_at = :now WHERE
  consumed_at IS NULL AND expires_at > :now`` and the insert of the successor.  Concurrent uses
  of one token are therefore judged one after the other: the first rotates, the next finds the
  token consumed.  ``parent_hash`` is unique, so even a store bug could not give one token two
  successors.
- **Reuse** of a consumed token (outside the grace window) revokes its family, that family only:
  the user's other devices and the client's other users keep their tokens.
- **Grace window** (default off): a retry of the immediately previous token within
  ``grace_window`` seconds gets the same successor back once, sealed with AES-GCM under a key
  derived from the server secret, so a client whose response was lost does not fork or lose the
  family.  Once the successor is used, or the retry has happened, the previous token is reuse.
- **Lifetimes**: a token expires ``idle_lifetime`` after it was issued, and never after the
  family's absolute expiry (set when the code is redeemed).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, bindparam, delete, func, null, select, update
from sqlalchemy.orm import Session

from sealring.errors import SealringError
from sealring.server.stores._statements import (
    Row,
    Statement,
    Transaction,
    consume_once,
    insert_row,
    read,
    write,
)
from sealring.server.stores._transactions import write_transaction
from sealring.server.stores.login_tables import GrantRow, RefreshTokenRow
from sealring.server.tokens.handles import HandleHasher, HandleKind, new_handle

__all__ = [
    "GrantRecord",
    "RefreshCheck",
    "RefreshPolicy",
    "RefreshTokenInvalid",
    "RefreshTokenReused",
    "RefreshTokenStore",
    "Rotation",
    "StoredRefreshToken",
    "insert_grant",
]

_SEAL_INFO: Final = b"sealring refresh successor v1"


class RefreshTokenInvalid(SealringError):
    """Unknown, expired, or of a revoked or expired family: ``invalid_grant``."""

    code = "refresh_token_invalid"

    def __init__(self) -> None:
        super().__init__("the refresh token is invalid, expired or revoked")


class RefreshTokenReused(SealringError):
    """A consumed token came back: its family is now revoked (``invalid_grant``)."""

    code = "refresh_token_reused"

    def __init__(self, grant_id: str) -> None:
        super().__init__("the refresh token was already used; its grant is revoked")
        self.grant_id = grant_id


@dataclass(frozen=True)
class RefreshPolicy:
    """Lifetimes in seconds.  ``grace_window`` 0 means every reuse revokes the family."""

    idle_lifetime: float = 14 * 86400.0
    absolute_lifetime: float = 90 * 86400.0
    grace_window: float = 0.0

    def __post_init__(self) -> None:
        if self.idle_lifetime <= 0 or self.absolute_lifetime <= 0:
            raise ValueError("refresh-token lifetimes must be positive")
        if not 0 <= self.grace_window <= 60:
            raise ValueError("the refresh grace window must be 0 to 60 seconds")


@dataclass(frozen=True)
class GrantRecord:
    """A family: what the login gave the client, and whether it still holds."""

    grant_id: str
    client_id: str
    subject: str
    session_id: str | None
    scope: tuple[str, ...]
    resources: tuple[str, ...]
    auth_time: float
    amr: tuple[str, ...]
    acr: str | None
    created_at: float
    expires_at: float
    revoked_at: float | None
    revoked_reason: str | None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class StoredRefreshToken:
    token_hash: bytes
    grant: GrantRecord
    scope: tuple[str, ...]
    generation: int
    expires_at: float
    consumed_at: float | None


@dataclass(frozen=True)
class Rotation:
    """The successor to hand out; ``retried`` when it came from the grace window.
    ``presented`` is the token that was rotated, as found."""

    refresh_token: str
    scope: tuple[str, ...]
    generation: int
    retried: bool = False
    presented: StoredRefreshToken | None = None


#: Called inside the rotation with the token found (None: unknown); raises to refuse, and then
#: nothing is written.
RefreshCheck = Callable[[StoredRefreshToken | None], object]

_tokens = RefreshTokenRow.__table__.c
_grants = GrantRow.__table__.c
_GRANT_COLUMNS: Final = (
    _grants.grant_id, _grants.client_id, _grants.subject, _grants.session_id, _grants.scope,
    _grants.resources, _grants.auth_time, _grants.amr, _grants.acr, _grants.created_at,
    _grants.expires_at, _grants.revoked_at, _grants.revoked_reason,
)  # fmt: skip
_TOKEN_COLUMNS: Final = (
    _tokens.token_hash, _tokens.scope, _tokens.generation, _tokens.expires_at,
    _tokens.consumed_at, _tokens.successor_sealed,
)  # fmt: skip
_FIND_TOKEN: Final = (
    select(*_TOKEN_COLUMNS, *_GRANT_COLUMNS)
    .join_from(RefreshTokenRow, GrantRow, _grants.grant_id == _tokens.grant_id)
    .where(_tokens.token_hash == bindparam("hash"))
)
_READ_TOKEN: Final = Statement(_FIND_TOKEN)
# The token the rotation decides on, locked until it commits (PostgreSQL; SQLite's BEGIN
# IMMEDIATE already holds the database's write lock).  Its family's row is not locked: a
# revocation never waits for a rotation.
_LOCK_TOKEN: Final = Statement(_FIND_TOKEN.with_for_update(of=RefreshTokenRow.__table__))
_INSERT_COLUMNS: Final = (
    _tokens.token_hash, _tokens.grant_id, _tokens.parent_hash, _tokens.generation, _tokens.scope,
    _tokens.created_at, _tokens.expires_at,
)  # fmt: skip
_INSERT_TOKEN: Final = insert_row(RefreshTokenRow, *_INSERT_COLUMNS)
_CONSUME_TOKEN: Final = consume_once(
    RefreshTokenRow, _tokens.token_hash, successor_sealed=bindparam("sealed")
)
# A new family has not been revoked: the last two columns stay NULL.
_INSERT_GRANT: Final = insert_row(GrantRow, *_GRANT_COLUMNS[:-2])
_SUCCESSOR: Final = Statement(
    select(_tokens.consumed_at, _tokens.scope, _tokens.generation).where(
        _tokens.parent_hash == bindparam("hash")
    )
)
_TAKE_SEALED: Final = Statement(
    update(RefreshTokenRow)
    .where(_tokens.token_hash == bindparam("hash"), _tokens.successor_sealed.is_not(None))
    .values(successor_sealed=null())
)
_REVOKE_GRANT: Final = Statement(
    update(GrantRow)
    .where(_grants.grant_id == bindparam("grant"), _grants.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"))
)
_FIND_GRANT: Final = Statement(
    select(*_GRANT_COLUMNS).where(_grants.grant_id == bindparam("grant"))
)
_GRANT_STATE: Final = Statement(
    select(_grants.revoked_at, _grants.expires_at).where(_grants.grant_id == bindparam("grant"))
)


def _to_grant(row: Row) -> GrantRecord:
    """A row of ``_GRANT_COLUMNS``, in that order."""
    (grant_id, client_id, subject, session_id, scope, resources, auth_time, amr, acr,
     created_at, expires_at, revoked_at, revoked_reason) = row  # fmt: skip
    return GrantRecord(
        grant_id=grant_id,
        client_id=client_id,
        subject=subject,
        session_id=session_id,
        scope=tuple(scope.split()),
        resources=tuple(resources.split()),
        auth_time=auth_time,
        amr=tuple(amr.split()),
        acr=acr,
        created_at=created_at,
        expires_at=expires_at,
        revoked_at=revoked_at,
        revoked_reason=revoked_reason,
    )


def insert_grant(tx: Transaction, grant: GrantRecord) -> None:
    """The row of a new family (a code's redemption), inside the caller's transaction."""
    tx.execute(
        _INSERT_GRANT,
        {
            "grant_id": grant.grant_id,
            "client_id": grant.client_id,
            "subject": grant.subject,
            "session_id": grant.session_id,
            "scope": " ".join(grant.scope),
            "resources": " ".join(grant.resources),
            "auth_time": grant.auth_time,
            "amr": " ".join(grant.amr),
            "acr": grant.acr,
            "created_at": grant.created_at,
            "expires_at": grant.expires_at,
        },
    )


class RefreshTokenStore:
    def __init__(
        self,
        engine: Engine,
        hasher: HandleHasher,
        server_secret: bytes,
        policy: RefreshPolicy | None = None,
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self.policy = policy or RefreshPolicy()
        self._seal = AESGCM(
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(
                server_secret
            )
        )

    def __repr__(self) -> str:
        return f"RefreshTokenStore({self.policy!r})"

    def _hash(self, token: str) -> bytes:
        return self._hasher.hash(HandleKind.REFRESH_TOKEN, token)

    def _insert(
        self,
        tx: Transaction,
        grant_id: str,
        scope: tuple[str, ...],
        *,
        parent: StoredRefreshToken | None,
        now: float,
        grant_expires_at: float,
        token: str | None = None,
    ) -> str:
        token = token or new_handle()
        tx.execute(
            _INSERT_TOKEN,
            {
                "token_hash": self._hash(token),
                "grant_id": grant_id,
                "parent_hash": parent.token_hash if parent is not None else None,
                "generation": parent.generation + 1 if parent is not None else 0,
                "scope": " ".join(scope),
                "created_at": now,
                "expires_at": min(now + self.policy.idle_lifetime, grant_expires_at),
            },
        )
        return token

    def insert_first(
        self,
        tx: Transaction,
        grant_id: str,
        scope: tuple[str, ...],
        *,
        now: float,
        grant_expires_at: float,
    ) -> str:
        """Generation 0 of a family, inside the caller's transaction (code redemption)."""
        return self._insert(
            tx, grant_id, scope, parent=None, now=now, grant_expires_at=grant_expires_at
        )

    def _lookup(
        self, tx: Transaction, statement: Statement, token: str
    ) -> tuple[StoredRefreshToken, bytes | None] | None:
        """The token and its family, and the sealed successor if a grace window holds one."""
        row = tx.find_handle(statement, self._hasher, HandleKind.REFRESH_TOKEN, token)
        if row is None:
            return None
        token_hash, scope, generation, expires_at, consumed_at, sealed = row[: len(_TOKEN_COLUMNS)]
        stored = StoredRefreshToken(
            token_hash=bytes(token_hash),
            grant=_to_grant(row[len(_TOKEN_COLUMNS) :]),
            scope=tuple(scope.split()),
            generation=generation,
            expires_at=expires_at,
            consumed_at=consumed_at,
        )
        return stored, bytes(sealed) if sealed is not None else None

    def find(self, token: str) -> StoredRefreshToken | None:
        """The token and its family, consumed and expired ones included; None if unknown."""
        with read(self._engine) as tx:
            found = self._lookup(tx, _READ_TOKEN, token)
        return found[0] if found is not None else None

    def grant(self, grant_id: str) -> GrantRecord | None:
        with read(self._engine) as tx:
            row = tx.first(_FIND_GRANT, {"grant": grant_id})
        return _to_grant(row) if row is not None else None

    def rotate(
        self,
        token: str,
        *,
        now: float,
        scope: tuple[str, ...] | None = None,
        check: RefreshCheck | None = None,
    ) -> Rotation:
        """Look ``token`` up, let ``check`` decide, consume it and issue its successor: one
        transaction.

        ``check`` (the token endpoint's RFC 6749 §6 checks) sees the token as found (consumed
        ones included) or None; whatever it raises propagates with nothing written.  The
        successor gets ``scope`` (already checked to be within the token's), by default the
        token's own.  Raises :class:`RefreshTokenInvalid` (unknown, expired, family revoked or
        expired) or :class:`RefreshTokenReused` (consumed before, outside the grace window: the
        family is revoked, and that revocation is committed).
        """
        with write(self._engine) as tx:
            found = self._lookup(tx, _LOCK_TOKEN, token)
            if check is not None:
                check(found[0] if found is not None else None)
            if found is None or not found[0].grant.active(now):
                raise RefreshTokenInvalid()
            stored, sealed = found
            if stored.consumed_at is None:
                if now >= stored.expires_at:
                    raise RefreshTokenInvalid()  # idle lifetime: expired, never used
                return self._successor(tx, stored, now, stored.scope if scope is None else scope)
            retry = self._grace_retry(tx, stored, sealed, now)
            if retry is not None:
                return retry
            self._revoke(tx, stored.grant.grant_id, now, "refresh_reuse")
        raise RefreshTokenReused(stored.grant.grant_id)

    def _successor(
        self, tx: Transaction, stored: StoredRefreshToken, now: float, scope: tuple[str, ...]
    ) -> Rotation:
        successor = new_handle()
        sealed = (
            self._seal_successor(stored.token_hash, successor)
            if self.policy.grace_window > 0
            else None
        )
        # The row is locked and was checked unconsumed and unexpired; the guard stays so that
        # a token never has two successors, whatever the isolation the database gives.
        consumed = tx.rowcount(
            _CONSUME_TOKEN, {"hash": stored.token_hash, "now": now, "sealed": sealed}
        )
        if consumed != 1:
            raise RefreshTokenInvalid()
        self._insert(
            tx,
            stored.grant.grant_id,
            scope,
            parent=stored,
            now=now,
            grant_expires_at=stored.grant.expires_at,
            token=successor,
        )
        return Rotation(successor, scope, stored.generation + 1, presented=stored)

    def _seal_successor(self, token_hash: bytes, successor: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._seal.encrypt(nonce, successor.encode("ascii"), token_hash)

    def _grace_retry(
        self, tx: Transaction, stored: StoredRefreshToken, sealed: bytes | None, now: float
    ) -> Rotation | None:
        """The successor again, once, if ``stored`` was consumed within the window and its
        successor is still unused (so ``stored`` is the immediately previous token)."""
        if (
            sealed is None
            or stored.consumed_at is None
            or now - stored.consumed_at > self.policy.grace_window
        ):
            return None
        child = tx.first(_SUCCESSOR, {"hash": stored.token_hash})
        if child is None or child[0] is not None:
            return None
        if tx.rowcount(_TAKE_SEALED, {"hash": stored.token_hash}) != 1:
            return None
        try:
            plain = self._seal.decrypt(sealed[:12], sealed[12:], stored.token_hash)
        except InvalidTag:
            return None  # sealed under another server secret: treat as reuse
        return Rotation(
            plain.decode("ascii"), tuple(child[1].split()), child[2], True, presented=stored
        )

    @staticmethod
    def _revoke(tx: Transaction, grant_id: str, now: float, reason: str) -> bool:
        return tx.rowcount(_REVOKE_GRANT, {"grant": grant_id, "now": now, "reason": reason}) == 1

    def revoke_grant(self, grant_id: str, *, now: float, reason: str) -> bool:
        """Revoke a family (code replay, reuse, ``/revoke``, logout); False if it already was."""
        with write(self._engine) as tx:
            return self._revoke(tx, grant_id, now, reason[:32])

    def grant_active(self, grant_id: str, *, now: float) -> bool:
        """Whether tokens carrying this grant id still hold (for introspection and userinfo)."""
        with read(self._engine) as tx:
            row = tx.first(_GRANT_STATE, {"grant": grant_id})
        return row is not None and row[0] is None and now < row[1]

    def prune(self, now: float) -> int:
        """Close grace windows (drop sealed successors) and delete families past their absolute
        lifetime with their tokens; returns the number of families deleted.

        Consumed tokens of a live family are kept: they are how a later reuse is recognised.
        """
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(RefreshTokenRow)
                .where(
                    RefreshTokenRow.successor_sealed.is_not(None),
                    RefreshTokenRow.consumed_at < now - self.policy.grace_window,
                )
                .values(successor_sealed=None)
            )
            result = conn.execute(delete(GrantRow).where(GrantRow.expires_at < now))
            return int(result.rowcount)

    def family_size(self, grant_id: str) -> int:
        with Session(self._engine) as session:
            return int(
                session.scalar(select(func.count()).where(RefreshTokenRow.grant_id == grant_id))
                or 0
            )
