"""The built-in :class:`~sealring.server.accounts.AccountStore`: users in ``oauth_accounts``.

Password checking is :class:`~sealring.server.accounts.PasswordPolicy`'s: this module only reads
and writes rows.  An unknown username still costs one argon2id verification (the policy does it
against its dummy hash), and a successful sign-in with a hash made under older parameters stores
the new hash the policy returns, so raising the parameters upgrades users as they sign in.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Final

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealring.errors import SealringError
from sealring.server.accounts import (
    MAX_USERNAME_LENGTH,
    Account,
    AccountRecord,
    PasswordPolicy,
    normalize_username,
)
from sealring.server.stores.login_tables import AccountRow

__all__ = ["AccountError", "DatabaseAccountStore"]

# OIDC Core §5.1 claims an operator may set from the CLI; the rest come with a profile editor.
_SETTABLE_CLAIMS: Final = frozenset({"name", "email", "email_verified"})


class AccountError(SealringError):
    """An account cannot be created or changed as asked (duplicate or malformed username)."""

    code = "account_error"


def _to_account(row: AccountRow) -> Account:
    claims = json.loads(row.claims or "{}")
    return Account(subject=row.subject, username=row.username, claims=claims, disabled=row.disabled)


def check_username(username: str) -> str:
    """The normalised username, or :class:`AccountError` if it cannot be one."""
    normalized = normalize_username(username)
    if not normalized:
        raise AccountError("a username must not be empty")
    if len(normalized) > MAX_USERNAME_LENGTH:
        raise AccountError(f"a username must be at most {MAX_USERNAME_LENGTH} characters")
    if any(not ch.isprintable() or ch.isspace() for ch in normalized):
        raise AccountError("a username must not contain spaces or control characters")
    return normalized


class DatabaseAccountStore:
    """Accounts in the database; implements :class:`~sealring.server.accounts.AccountStore`."""

    def __init__(
        self,
        engine: Engine,
        policy: PasswordPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._clock = clock

    # -- AccountStore ------------------------------------------------------------------------

    def find(self, subject: str) -> Account | None:
        with Session(self._engine) as session:
            row = session.get(AccountRow, subject)
            return _to_account(row) if row is not None else None

    def authenticate(self, username: str, password: str) -> Account:
        """Sign in, or raise :class:`~sealring.server.accounts.AuthenticationFailed`.

        The three steps are public so a server can run the hashing outside its database time
        limit (the login page): :meth:`record`, ``policy.check``, :meth:`store_rehash`.
        """
        record = self.record(username)
        check = self.policy.check(record, password)  # raises for every failure alike
        if check.new_hash is not None and record is not None:
            self.store_rehash(check.account.subject, record.password_hash, check.new_hash)
        return check.account

    @property
    def policy(self) -> PasswordPolicy:
        return self._policy

    def record(self, username: str) -> AccountRecord | None:
        """The account and password hash a username signs in to; None if there is none."""
        normalized = normalize_username(username)
        with Session(self._engine) as session:
            row = (
                session.scalar(select(AccountRow).where(AccountRow.username == normalized))
                if 0 < len(normalized) <= MAX_USERNAME_LENGTH
                else None
            )
            return AccountRecord(_to_account(row), row.password_hash) if row is not None else None

    def store_rehash(self, subject: str, old_hash: str | None, new_hash: str) -> None:
        # Guarded by the old hash: a password set meanwhile (users set-password) is not undone.
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(AccountRow)
                .where(AccountRow.subject == subject, AccountRow.password_hash == old_hash)
                .values(password_hash=new_hash, updated_at=self._clock())
            )

    # -- administration (the users CLI) ------------------------------------------------------

    def create(
        self,
        username: str,
        password: str | None,
        *,
        claims: Mapping[str, object] | None = None,
    ) -> Account:
        """A new account with a fresh random ``sub``; refuses a username already taken."""
        normalized = check_username(username)
        extra = set(claims or {}) - _SETTABLE_CLAIMS
        if extra:
            raise AccountError(f"unsupported claims: {', '.join(sorted(extra))}")
        try:
            password_hash = self._policy.hash(password) if password is not None else None
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        now = self._clock()
        row = AccountRow(
            # 128 random bits: never derived from the username, so a rename keeps the sub.
            subject=secrets.token_urlsafe(16),
            username=normalized,
            password_hash=password_hash,
            claims=json.dumps(dict(claims or {}), sort_keys=True),
            disabled=False,
            created_at=now,
            updated_at=now,
            password_changed_at=now if password_hash else None,
        )
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise AccountError(f"the username {normalized!r} is taken") from None
        return _to_account(row)

    def by_username(self, username: str) -> Account | None:
        with Session(self._engine) as session:
            row = session.scalar(
                select(AccountRow).where(AccountRow.username == normalize_username(username))
            )
            return _to_account(row) if row is not None else None

    def list(self) -> list[Account]:
        with Session(self._engine) as session:
            rows = session.scalars(select(AccountRow).order_by(AccountRow.username))
            return [_to_account(row) for row in rows]

    def delete(self, subject: str) -> bool:
        """Delete the account; its sessions, grants, codes and consents go with it (cascade)."""
        with Session(self._engine) as session, session.begin():
            result = session.execute(delete(AccountRow).where(AccountRow.subject == subject))
            return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def set_password(self, subject: str, password: str) -> bool:
        try:
            password_hash = self._policy.hash(password)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        now = self._clock()
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                update(AccountRow)
                .where(AccountRow.subject == subject)
                .values(password_hash=password_hash, updated_at=now, password_changed_at=now)
            )
            return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def describe(self, subject: str) -> dict[str, object] | None:
        """What ``users show`` prints: the record without the hash, and whether one is set."""
        with Session(self._engine) as session:
            row = session.get(AccountRow, subject)
            if row is None:
                return None
            return {
                "sub": row.subject,
                "username": row.username,
                "claims": json.loads(row.claims or "{}"),
                "disabled": row.disabled,
                "password_set": row.password_hash is not None,
                "password_changed_at": row.password_changed_at,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
            }
