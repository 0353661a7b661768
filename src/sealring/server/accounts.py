"""User accounts: the :class:`AccountStore` protocol and the password policy.

Passwords are hashed with argon2id (argon2-cffi).  The default parameters are RFC 9106 §4's
second recommended option, for memory-constrained servers: ``t=3`` passes over ``m=65536`` KiB
(64 MiB) with ``p=4`` lanes, a 16-byte salt and a 32-byte tag.  A hash made with other
parameters still verifies, and the successful login returns a new hash to store
(:attr:`PasswordCheck.new_hash`), so raising the parameters upgrades users as they sign in.

No user enumeration: an unknown username, an account without a password and a disabled
account all verify the password against a hash with the same parameters and then fail with the
same :class:`AuthenticationFailed`, so neither the message nor the hashing time tells them apart
from a wrong password.  (A stored hash with older, cheaper parameters costs less until it is
rehashed.)

Everything here is pure: the database-backed store that implements :class:`AccountStore` comes
with the login endpoints.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sealring.errors import SealringError

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "Account",
    "AccountRecord",
    "AccountStore",
    "AuthenticationFailed",
    "PasswordCheck",
    "PasswordPolicy",
    "normalize_username",
]

MIN_PASSWORD_LENGTH: Final = 8
# Argon2 accepts any length; the cap only bounds the work one request can ask for.
MAX_PASSWORD_LENGTH: Final = 1024
MAX_USERNAME_LENGTH: Final = 255


class AuthenticationFailed(SealringError):
    """The username and password do not sign anyone in; deliberately says no more."""

    code = "authentication_failed"

    def __init__(self) -> None:
        super().__init__("unknown username or wrong password")


@dataclass(frozen=True)
class Account:
    """A person who can sign in.  ``subject`` is the stable ``sub``, never reassigned."""

    subject: str
    username: str
    claims: Mapping[str, object] = field(default_factory=dict)
    disabled: bool = False


@dataclass(frozen=True)
class AccountRecord:
    """An account as a store keeps it; ``password_hash`` is None when it has no password."""

    account: Account
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PasswordCheck:
    """A successful sign-in; ``new_hash`` is set when the stored hash should be replaced."""

    account: Account
    new_hash: str | None = field(default=None, repr=False)


class AccountStore(Protocol):
    """Where accounts live.  Sealring's own store is in the database; others may replace it."""

    def find(self, subject: str) -> Account | None:
        """The account with this ``sub``, or None."""
        ...

    def authenticate(self, username: str, password: str) -> Account:
        """The account these credentials sign in, or raise :class:`AuthenticationFailed`."""
        ...


def normalize_username(username: str) -> str:
    """The form usernames are stored and looked up in: NFKC, case-folded, trimmed.

    So "Alice", "alice " and the full-width form of "alice" are one account rather than three
    look-alikes (close to RFC 8265's UsernameCaseMapped profile, with NFKC standing in for its
    width mapping).
    """
    return unicodedata.normalize("NFKC", username).casefold().strip()


def _normalize_password(password: str) -> str:
    # NFC, as RFC 8265's OpaqueString profile does: a composed and a decomposed "é" are one
    # password.
    return unicodedata.normalize("NFC", password)


class PasswordPolicy:
    """argon2id hashing, verification and rehash detection with one set of parameters."""

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_cost: int = 65536,
        parallelism: int = 4,
        hash_len: int = 32,
        salt_len: int = 16,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=Type.ID,
        )
        # Verified against when there is no real hash, so that path costs a real verification.
        self._dummy_hash = self._hasher.hash("sealring: no such account")

    def __repr__(self) -> str:
        p = self._hasher
        return (
            f"PasswordPolicy(argon2id, t={p.time_cost}, m={p.memory_cost} KiB, p={p.parallelism})"
        )

    @property
    def parameters(self) -> dict[str, int]:
        """The parameters new hashes get (for the docs and ``users show``)."""
        p = self._hasher
        return {
            "time_cost": p.time_cost,
            "memory_cost_kib": p.memory_cost,
            "parallelism": p.parallelism,
            "hash_len": p.hash_len,
            "salt_len": p.salt_len,
        }

    def hash(self, password: str) -> str:
        """A new hash for a password being set; refuses one too short or too long."""
        password = _normalize_password(password)
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            raise ValueError(
                f"a password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
            )
        return self._hasher.hash(password)

    def check(self, record: AccountRecord | None, password: str) -> PasswordCheck:
        """Sign in ``record`` with ``password`` or raise :class:`AuthenticationFailed`.

        ``record`` is None for an unknown username: the same hashing work is done anyway.
        """
        password = _normalize_password(password)
        usable = (
            record is not None
            and record.password_hash is not None
            and len(password) <= MAX_PASSWORD_LENGTH
        )
        stored = record.password_hash if usable and record is not None else None
        try:
            self._hasher.verify(stored or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise AuthenticationFailed() from None
        # The dummy hash verifies only its own fixed text; fail even if someone typed it.
        if stored is None or record is None or record.account.disabled:
            raise AuthenticationFailed()
        new_hash = self._hasher.hash(password) if self._hasher.check_needs_rehash(stored) else None
        return PasswordCheck(record.account, new_hash)
