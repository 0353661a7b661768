"""Authorization codes (RFC 6749 §4.1.2): stored hashed, redeemed once, replays recognised.

Redeeming is one transaction on one connection (:meth:`AuthorizationCodeStore.redeem`): the
code's row is read with the write lock held (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on
PostgreSQL), the caller's ``check`` decides on it, and only then come the grant row (the family
every token of this code belongs to), the guarded ``UPDATE ... SET consumed_at = :now WHERE
consumed_at IS NULL AND expires_at > :now`` and, when asked, the first refresh token.  A check
that refuses rolls everything back, so a request that fails (a stolen code without the PKCE
verifier) does not burn the legitimate client's code.  Of two concurrent redemptions exactly one
consumes the code; the other reads it after the winner committed and sees it consumed, naming
the grant the winner created.

A consumed code is kept (see :meth:`AuthorizationCodeStore.prune`), so a second presentation is
recognised as a replay.  The store does not revoke on its own: RFC 6749 §4.1.2 says the server
SHOULD revoke the tokens of a replayed code, but only a replay that passes the client, redirect
URI and PKCE checks proves the code leaked; a request with wrong parameters must revoke nothing,
so the caller decides and calls
:meth:`~sealring.server.stores.refresh_tokens.RefreshTokenStore.revoke_grant`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.engine import Engine
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
from sealring.server.stores.login_tables import AuthorizationCodeRow
from sealring.server.stores.refresh_tokens import GrantRecord, RefreshTokenStore, insert_grant
from sealring.server.tokens.handles import HandleHasher, HandleKind, new_handle

__all__ = [
    "CODE_LIFETIME",
    "AuthorizationCodeStore",
    "CodeAlreadyRedeemed",
    "CodeCheck",
    "CodeGrant",
    "Redemption",
    "StoredCode",
]

# Issue 9 and RFC 9700 §2.1.1's advice of a short lifetime; the table refuses more than 60 s.
CODE_LIFETIME: Final = 60.0
# How long a consumed code is kept after it expired, to recognise a late replay.
REPLAY_MEMORY: Final = 24 * 3600.0


class CodeAlreadyRedeemed(SealringError):
    """The code cannot be redeemed: ``grant_id`` names the grant it was redeemed into (possibly
    a moment ago, by a concurrent request), or is None when it expired or is unknown."""

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
    """A code redeemed: the code as it was found, the new grant, and its first refresh token
    when one was issued."""

    grant_id: str
    refresh_token: str | None = None
    code: StoredCode | None = None


#: Called inside the redemption with the code found (None: unknown); raises to refuse (nothing
#: is written), else returns whether the grant gets a refresh token.
CodeCheck = Callable[[StoredCode | None], bool]

_codes = AuthorizationCodeRow.__table__.c
_CODE_COLUMNS: Final = (
    _codes.code_hash, _codes.client_id, _codes.subject, _codes.session_id, _codes.redirect_uri,
    _codes.redirect_uri_in_request, _codes.scope, _codes.code_challenge, _codes.auth_time,
    _codes.resources, _codes.nonce, _codes.amr, _codes.acr, _codes.created_at,
    _codes.expires_at, _codes.consumed_at, _codes.grant_id,
)  # fmt: skip
_FIND_CODE: Final = Statement(select(*_CODE_COLUMNS).where(_codes.code_hash == bindparam("hash")))
# The row the redemption decides on, locked until it commits (PostgreSQL; SQLite's BEGIN
# IMMEDIATE already holds the database's write lock).
_LOCK_CODE: Final = Statement(
    select(*_CODE_COLUMNS).where(_codes.code_hash == bindparam("hash")).with_for_update()
)
_INSERT_CODE: Final = insert_row(AuthorizationCodeRow, *_CODE_COLUMNS)
_CONSUME_CODE: Final = consume_once(
    AuthorizationCodeRow, _codes.code_hash, grant_id=bindparam("grant")
)


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _to_stored(row: Row) -> StoredCode:
    """A row of ``_CODE_COLUMNS``, in that order."""
    (code_hash, client_id, subject, session_id, redirect_uri, in_request, scope, challenge,
     auth_time, resources, nonce, amr, acr, created_at, expires_at, consumed_at, grant_id) = row  # fmt: skip
    return StoredCode(
        code_hash=bytes(code_hash),
        grant=CodeGrant(
            client_id=client_id,
            subject=subject,
            session_id=session_id,
            redirect_uri=redirect_uri,
            redirect_uri_in_request=bool(in_request),  # SQLite answers 0 or 1
            scope=_split(scope),
            code_challenge=challenge,
            auth_time=auth_time,
            resources=_split(resources),
            nonce=nonce,
            amr=_split(amr),
            acr=acr,
        ),
        created_at=created_at,
        expires_at=expires_at,
        consumed_at=consumed_at,
        grant_id=grant_id,
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
        with write(self._engine) as tx:
            tx.execute(
                _INSERT_CODE,
                {
                    "code_hash": self._hasher.hash(HandleKind.AUTHORIZATION_CODE, code),
                    "client_id": grant.client_id,
                    "subject": grant.subject,
                    "session_id": grant.session_id,
                    "redirect_uri": grant.redirect_uri,
                    "redirect_uri_in_request": grant.redirect_uri_in_request,
                    "scope": " ".join(grant.scope),
                    "code_challenge": grant.code_challenge,
                    "auth_time": grant.auth_time,
                    "resources": " ".join(grant.resources),
                    "nonce": grant.nonce,
                    "amr": " ".join(grant.amr),
                    "acr": grant.acr,
                    "created_at": now,
                    "expires_at": now + lifetime,
                    "consumed_at": None,
                    "grant_id": None,
                },
            )
        return code

    def _lookup(self, tx: Transaction, statement: Statement, code: str) -> StoredCode | None:
        row = tx.find_handle(statement, self._hasher, HandleKind.AUTHORIZATION_CODE, code)
        return _to_stored(row) if row is not None else None

    def find(self, code: str) -> StoredCode | None:
        """The code's record, consumed or expired ones included; None if never issued (or pruned).

        Looking a code up changes nothing, so a request that fails its checks does not burn the
        code of the client it was stolen from.
        """
        with read(self._engine) as tx:
            return self._lookup(tx, _FIND_CODE, code)

    def redeem(
        self,
        code: str,
        *,
        now: float,
        grant_lifetime: float,
        refresh_tokens: RefreshTokenStore | None = None,
        check: CodeCheck | None = None,
    ) -> Redemption:
        """Look ``code`` up, let ``check`` decide, consume the code once and create its grant
        (and, with ``refresh_tokens``, the grant's first refresh token): one transaction.

        ``check`` (the token endpoint's RFC 6749 §4.1.3 checks) sees the code as found, consumed
        and expired ones included, or None; whatever it raises propagates with nothing written.
        It returns whether the grant gets a refresh token.  Without a check, or after one that
        let it through, a code that is unknown, expired or already consumed raises
        :class:`CodeAlreadyRedeemed`.  ``grant_lifetime`` is the family's absolute lifetime.
        """
        with write(self._engine) as tx:
            found = self._lookup(tx, _LOCK_CODE, code)
            wants_refresh = check(found) if check is not None else True
            if found is None or now >= found.expires_at:
                raise CodeAlreadyRedeemed(None)
            if found.consumed_at is not None:
                raise CodeAlreadyRedeemed(found.grant_id)
            return self._consume(
                tx,
                found,
                now=now,
                grant_lifetime=grant_lifetime,
                refresh_tokens=refresh_tokens if wants_refresh else None,
            )

    def _consume(
        self,
        tx: Transaction,
        found: StoredCode,
        *,
        now: float,
        grant_lifetime: float,
        refresh_tokens: RefreshTokenStore | None,
    ) -> Redemption:
        grant_id = secrets.token_urlsafe(24)
        g = found.grant
        grant_expires_at = now + grant_lifetime
        insert_grant(
            tx,
            GrantRecord(
                grant_id=grant_id,
                client_id=g.client_id,
                subject=g.subject,
                session_id=g.session_id,
                scope=g.scope,
                resources=g.resources,
                auth_time=g.auth_time,
                amr=g.amr,
                acr=g.acr,
                created_at=now,
                expires_at=grant_expires_at,
                revoked_at=None,
                revoked_reason=None,
            ),
        )
        # The row is locked and was checked unconsumed and unexpired; the guard stays so that
        # a code is never consumed twice, whatever the isolation the database gives.
        consumed = tx.rowcount(
            _CONSUME_CODE, {"hash": found.code_hash, "now": now, "grant": grant_id}
        )
        if consumed != 1:
            raise CodeAlreadyRedeemed(None)  # rolls the grant row back
        refresh_token = None
        if refresh_tokens is not None:
            refresh_token = refresh_tokens.insert_first(
                tx, grant_id, g.scope, now=now, grant_expires_at=grant_expires_at
            )
        return Redemption(grant_id, refresh_token, found)

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
