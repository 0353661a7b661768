"""Authorization codes (RFC 6749 §4.1.2): stored hashed, redeemed once, replays recognised.

Redeeming is one transaction: a guarded ``UPDATE ... SET consumed_at = :now WHERE consumed_at
IS NULL AND expires_at > :now``, the grant row (the family every token of this code belongs to)
and, when asked, the first refresh token.  Of two concurrent redemptions exactly one updates a
row; the other gets :class:`CodeAlreadyRedeemed` naming the grant the winner created.

A consumed code is kept (see :meth:`AuthorizationCodeStore.prune`), so a second presentation is
recognised as a replay and :meth:`AuthorizationCodeStore.find` reports the grant it issued.  The
store does not revoke on its own: RFC 6749 §4.1.2 says the server SHOULD revoke the tokens of a
replayed code, but only a replay that passes the client, redirect URI and PKCE checks proves the
code leaked; a request with wrong parameters must revoke nothing, so the caller decides and calls
:meth:`~sealring.server.stores.refresh_tokens.RefreshTokenStore.revoke_grant`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from sealring.errors import SealringError
from sealring.server.stores._transactions import write_transaction
from sealring.server.stores.login_tables import AuthorizationCodeRow, GrantRow
from sealring.server.stores.refresh_tokens import RefreshTokenStore
from sealring.server.tokens.handles import HandleHasher, HandleKind, new_handle

__all__ = [
    "CODE_LIFETIME",
    "AuthorizationCodeStore",
    "CodeAlreadyRedeemed",
    "CodeGrant",
    "Redemption",
    "StoredCode",
]

# Issue 9 and RFC 9700 §2.1.1's advice of a short lifetime; the table refuses more than 60 s.
CODE_LIFETIME: Final = 60.0
# How long a consumed code is kept after it expired, to recognise a late replay.
REPLAY_MEMORY: Final = 24 * 3600.0


class CodeAlreadyRedeemed(SealringError):
    """The code was redeemed before (possibly a moment ago, by a concurrent request)."""

    code = "code_already_redeemed"

    def __init__(self, grant_id: str | None) -> None:
        super().__init__("the authorization code was already redeemed")
        self.grant_id = grant_id


@dataclass(frozen=True)
class CodeGrant:
    """What a code is bound to, as the authorization endpoint decided it."""

    client_id: str
    subject: str
    session_id: str | None
    redirect_uri: str
    redirect_uri_in_request: bool
    scope: tuple[str, ...]
    code_challenge: str
    auth_time: float
    resources: tuple[str, ...] = ()
    nonce: str | None = None
    amr: tuple[str, ...] = ()
    acr: str | None = None


@dataclass(frozen=True)
class StoredCode:
    """A code as found: its binding, when it expires, and whether (and into what) it was redeemed."""

    code_hash: bytes
    grant: CodeGrant
    created_at: float
    expires_at: float
    consumed_at: float | None
    grant_id: str | None


@dataclass(frozen=True)
class Redemption:
    """A code redeemed: the new grant, and its first refresh token when one was asked for."""

    grant_id: str
    refresh_token: str | None = None


class _Lost(Exception):
    """The guarded update found the code consumed or expired."""


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _to_stored(row: AuthorizationCodeRow) -> StoredCode:
    return StoredCode(
        code_hash=row.code_hash,
        grant=CodeGrant(
            client_id=row.client_id,
            subject=row.subject,
            session_id=row.session_id,
            redirect_uri=row.redirect_uri,
            redirect_uri_in_request=row.redirect_uri_in_request,
            scope=_split(row.scope),
            code_challenge=row.code_challenge,
            auth_time=row.auth_time,
            resources=_split(row.resources),
            nonce=row.nonce,
            amr=_split(row.amr),
            acr=row.acr,
        ),
        created_at=row.created_at,
        expires_at=row.expires_at,
        consumed_at=row.consumed_at,
        grant_id=row.grant_id,
    )


class AuthorizationCodeStore:
    def __init__(self, engine: Engine, hasher: HandleHasher) -> None:
        self._engine = engine
        self._hasher = hasher

    def issue(self, grant: CodeGrant, *, now: float, lifetime: float = CODE_LIFETIME) -> str:
        """Store a new code bound to ``grant``; returns the code (shown once, to the client)."""
        if not 0 < lifetime <= CODE_LIFETIME:
            raise ValueError(f"a code lifetime must be in (0, {CODE_LIFETIME:g}] seconds")
        code = new_handle()
        with Session(self._engine) as session, session.begin():
            session.add(
                AuthorizationCodeRow(
                    code_hash=self._hasher.hash(HandleKind.AUTHORIZATION_CODE, code),
                    client_id=grant.client_id,
                    subject=grant.subject,
                    session_id=grant.session_id,
                    redirect_uri=grant.redirect_uri,
                    redirect_uri_in_request=grant.redirect_uri_in_request,
                    scope=" ".join(grant.scope),
                    resources=" ".join(grant.resources),
                    code_challenge=grant.code_challenge,
                    nonce=grant.nonce,
                    auth_time=grant.auth_time,
                    amr=" ".join(grant.amr),
                    acr=grant.acr,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
        return code

    def find(self, code: str) -> StoredCode | None:
        """The code's record, consumed or expired ones included; None if never issued (or pruned).

        Looking a code up changes nothing, so a request that fails its checks does not burn the
        code of the client it was stolen from.
        """
        key = self._hasher.lookup_key(HandleKind.AUTHORIZATION_CODE, code)
        if key is None:
            return None
        with Session(self._engine) as session:
            row = session.get(AuthorizationCodeRow, key)
            if row is None or not self._hasher.matches(
                HandleKind.AUTHORIZATION_CODE, code, row.code_hash
            ):
                return None
            return _to_stored(row)

    def redeem(
        self,
        stored: StoredCode,
        *,
        now: float,
        grant_lifetime: float,
        refresh_tokens: RefreshTokenStore | None = None,
        refresh_scope: Sequence[str] | None = None,
    ) -> Redemption:
        """Consume the code once and create its grant (and first refresh token) atomically.

        ``grant_lifetime`` is the family's absolute lifetime.  Raises
        :class:`CodeAlreadyRedeemed` if the code was consumed meanwhile or has expired.
        """
        grant_id = secrets.token_urlsafe(24)
        g = stored.grant
        refresh_token: str | None = None
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(
                    insert(GrantRow).values(
                        grant_id=grant_id,
                        client_id=g.client_id,
                        subject=g.subject,
                        session_id=g.session_id,
                        scope=" ".join(g.scope),
                        resources=" ".join(g.resources),
                        auth_time=g.auth_time,
                        amr=" ".join(g.amr),
                        acr=g.acr,
                        created_at=now,
                        expires_at=now + grant_lifetime,
                    )
                )
                consumed = conn.execute(
                    update(AuthorizationCodeRow)
                    .where(
                        AuthorizationCodeRow.code_hash == stored.code_hash,
                        AuthorizationCodeRow.consumed_at.is_(None),
                        AuthorizationCodeRow.expires_at > now,
                    )
                    .values(consumed_at=now, grant_id=grant_id)
                )
                if int(consumed.rowcount) != 1:
                    raise _Lost  # rolls the grant row back
                if refresh_tokens is not None:
                    scope = tuple(refresh_scope) if refresh_scope is not None else g.scope
                    refresh_token = refresh_tokens.insert_first(
                        conn, grant_id, scope, now=now, grant_expires_at=now + grant_lifetime
                    )
        except _Lost:
            with Session(self._engine) as session:
                winner = session.scalar(
                    select(AuthorizationCodeRow.grant_id).where(
                        AuthorizationCodeRow.code_hash == stored.code_hash
                    )
                )
            raise CodeAlreadyRedeemed(winner) from None
        return Redemption(grant_id, refresh_token)

    def prune(self, now: float, *, replay_memory: float = REPLAY_MEMORY) -> int:
        """Delete codes never redeemed once expired, and redeemed ones after ``replay_memory``."""
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                delete(AuthorizationCodeRow).where(
                    or_(
                        (AuthorizationCodeRow.consumed_at.is_(None))
                        & (AuthorizationCodeRow.expires_at < now),
                        AuthorizationCodeRow.expires_at < now - replay_memory,
                    )
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
