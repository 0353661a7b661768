"""Refresh-token families: rotation in one atomic step, reuse detection, grace window.

Every redeemed authorization code starts a family (a row of ``oauth_grants``); each use of a
refresh token consumes it and issues its successor (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2).

- **Rotation** is one transaction: a guarded ``UPDATE ... SET consumed_at = :now WHERE
  consumed_at IS NULL AND expires_at > :now`` and the insert of the successor.  ``parent_hash``
  is unique, so even a store bug could not give one token two successors.
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
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from sealring.errors import SealringError
from sealring.server.stores._transactions import write_transaction
from sealring.server.stores.login_tables import GrantRow, RefreshTokenRow
from sealring.server.tokens.handles import HandleHasher, HandleKind, new_handle

__all__ = [
    "GrantRecord",
    "RefreshPolicy",
    "RefreshTokenInvalid",
    "RefreshTokenReused",
    "RefreshTokenStore",
    "Rotation",
    "StoredRefreshToken",
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
    """The successor to hand out; ``retried`` when it came from the grace window."""

    refresh_token: str
    scope: tuple[str, ...]
    generation: int
    retried: bool = False


def _to_grant(row: GrantRow) -> GrantRecord:
    return GrantRecord(
        grant_id=row.grant_id,
        client_id=row.client_id,
        subject=row.subject,
        session_id=row.session_id,
        scope=tuple(row.scope.split()),
        resources=tuple(row.resources.split()),
        auth_time=row.auth_time,
        amr=tuple(row.amr.split()),
        acr=row.acr,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_reason=row.revoked_reason,
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

    def insert_first(
        self,
        conn: Connection,
        grant_id: str,
        scope: tuple[str, ...],
        *,
        now: float,
        grant_expires_at: float,
    ) -> str:
        """Generation 0 of a family, inside the caller's transaction (code redemption)."""
        token = new_handle()
        conn.execute(
            insert(RefreshTokenRow).values(
                token_hash=self._hash(token),
                grant_id=grant_id,
                parent_hash=None,
                generation=0,
                scope=" ".join(scope),
                created_at=now,
                expires_at=min(now + self.policy.idle_lifetime, grant_expires_at),
            )
        )
        return token

    def find(self, token: str) -> StoredRefreshToken | None:
        """The token and its family, consumed and expired ones included; None if unknown."""
        key = self._hasher.lookup_key(HandleKind.REFRESH_TOKEN, token)
        if key is None:
            return None
        with Session(self._engine) as session:
            found = session.execute(
                select(RefreshTokenRow, GrantRow)
                .join(GrantRow, GrantRow.grant_id == RefreshTokenRow.grant_id)
                .where(RefreshTokenRow.token_hash == key)
            ).first()
            if found is None:
                return None
            row, grant = found
            if not self._hasher.matches(HandleKind.REFRESH_TOKEN, token, row.token_hash):
                return None
            return StoredRefreshToken(
                token_hash=row.token_hash,
                grant=_to_grant(grant),
                scope=tuple(row.scope.split()),
                generation=row.generation,
                expires_at=row.expires_at,
                consumed_at=row.consumed_at,
            )

    def grant(self, grant_id: str) -> GrantRecord | None:
        with Session(self._engine) as session:
            row = session.get(GrantRow, grant_id)
            return _to_grant(row) if row is not None else None

    def rotate(self, stored: StoredRefreshToken, *, now: float, scope: tuple[str, ...]) -> Rotation:
        """Consume ``stored`` and issue its successor with ``scope``, atomically.

        ``scope`` must already be checked to be within the token's (RFC 6749 §6).  Raises
        :class:`RefreshTokenInvalid` (unknown, expired, family revoked or expired) or
        :class:`RefreshTokenReused` (consumed before; the family has been revoked by then).
        """
        successor = new_handle()
        successor_hash = self._hash(successor)
        grace = self.policy.grace_window
        with write_transaction(self._engine) as conn:
            grant = conn.execute(
                select(GrantRow.expires_at, GrantRow.revoked_at).where(
                    GrantRow.grant_id == stored.grant.grant_id
                )
            ).first()
            if grant is None or grant.revoked_at is not None or grant.expires_at <= now:
                raise RefreshTokenInvalid()
            consumed = conn.execute(
                update(RefreshTokenRow)
                .where(
                    RefreshTokenRow.token_hash == stored.token_hash,
                    RefreshTokenRow.consumed_at.is_(None),
                    RefreshTokenRow.expires_at > now,
                )
                .values(
                    consumed_at=now,
                    successor_sealed=(
                        self._seal_successor(stored.token_hash, successor) if grace > 0 else None
                    ),
                )
            )
            if int(consumed.rowcount) == 1:
                conn.execute(
                    insert(RefreshTokenRow).values(
                        token_hash=successor_hash,
                        grant_id=stored.grant.grant_id,
                        parent_hash=stored.token_hash,
                        generation=stored.generation + 1,
                        scope=" ".join(scope),
                        created_at=now,
                        expires_at=min(now + self.policy.idle_lifetime, grant.expires_at),
                    )
                )
                return Rotation(successor, scope, stored.generation + 1)
            retry = self._grace_retry(conn, stored, now) if grace > 0 else None
            if retry is not None:
                return retry
            row = conn.execute(
                select(RefreshTokenRow.consumed_at).where(
                    RefreshTokenRow.token_hash == stored.token_hash
                )
            ).first()
            if row is None or row.consumed_at is None:
                raise RefreshTokenInvalid()  # expired (idle lifetime), never used
            self._revoke(conn, stored.grant.grant_id, now, "refresh_reuse")
        raise RefreshTokenReused(stored.grant.grant_id)

    def _seal_successor(self, token_hash: bytes, successor: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._seal.encrypt(nonce, successor.encode("ascii"), token_hash)

    def _grace_retry(
        self, conn: Connection, stored: StoredRefreshToken, now: float
    ) -> Rotation | None:
        """The successor again, once, if ``stored`` was consumed within the window and its
        successor is still unused (so ``stored`` is the immediately previous token)."""
        row = conn.execute(
            select(RefreshTokenRow.consumed_at, RefreshTokenRow.successor_sealed).where(
                RefreshTokenRow.token_hash == stored.token_hash
            )
        ).first()
        if (
            row is None
            or row.consumed_at is None
            or row.successor_sealed is None
            or now - row.consumed_at > self.policy.grace_window
        ):
            return None
        child = conn.execute(
            select(
                RefreshTokenRow.consumed_at, RefreshTokenRow.scope, RefreshTokenRow.generation
            ).where(RefreshTokenRow.parent_hash == stored.token_hash)
        ).first()
        if child is None or child.consumed_at is not None:
            return None
        taken = conn.execute(
            update(RefreshTokenRow)
            .where(
                RefreshTokenRow.token_hash == stored.token_hash,
                RefreshTokenRow.successor_sealed.is_not(None),
            )
            .values(successor_sealed=None)
        )
        if int(taken.rowcount) != 1:
            return None
        sealed: bytes = row.successor_sealed
        try:
            plain = self._seal.decrypt(sealed[:12], sealed[12:], stored.token_hash)
        except InvalidTag:
            return None  # sealed under another server secret: treat as reuse
        return Rotation(plain.decode("ascii"), tuple(child.scope.split()), child.generation, True)

    def _revoke(self, conn: Connection, grant_id: str, now: float, reason: str) -> bool:
        result = conn.execute(
            update(GrantRow)
            .where(GrantRow.grant_id == grant_id, GrantRow.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )
        return int(result.rowcount) == 1

    def revoke_grant(self, grant_id: str, *, now: float, reason: str) -> bool:
        """Revoke a family (code replay, reuse, ``/revoke``, logout); False if it already was."""
        with write_transaction(self._engine) as conn:
            return self._revoke(conn, grant_id, now, reason[:32])

    def grant_active(self, grant_id: str, *, now: float) -> bool:
        """Whether tokens carrying this grant id still hold (for introspection and userinfo)."""
        with Session(self._engine) as session:
            row = session.get(GrantRow, grant_id)
            return row is not None and row.revoked_at is None and now < row.expires_at

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
