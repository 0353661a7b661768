"""Errors of the keys layer. Messages name key ids, never key material, KEKs or PINs."""

from __future__ import annotations

from typing import ClassVar

from sealring.errors import ErrorCode, SealringError

__all__ = [
    "HSMError",
    "InvalidTransition",
    "KEKError",
    "KEKMismatch",
    "KeyConfigError",
    "KeyUnavailable",
    "KeysError",
    "UnknownKey",
]


class KeysError(SealringError):
    code: ClassVar[ErrorCode] = "keys_error"


class KeyConfigError(KeysError):
    """Key configuration (KEK, HSM, policy) is missing or invalid; raised at start."""

    code: ClassVar[ErrorCode] = "keys_config"
    usage = True


class KEKError(KeyConfigError):
    """A key-encryption key is malformed or unreadable."""

    code = "kek_invalid"


class KEKMismatch(KeysError):
    """Stored keys cannot be opened with any configured KEK; nothing has been changed."""

    code = "kek_mismatch"
    # A KEK that cannot open the stored keys is configuration, as `serve` treats it.
    usage = True

    def __init__(
        self,
        kids: list[str],
        source: str = "the configured KEK",
        kek_ids: list[str | None] | None = None,
    ) -> None:
        self.kids = tuple(kids)
        under = kek_ids or [None] * len(kids)
        named = [
            f"{kid} (under KEK id {k})" if k else kid for kid, k in zip(kids, under, strict=True)
        ]
        super().__init__(
            f"{source} cannot decrypt signing key(s) "
            + ", ".join(named)
            + ": it is not the KEK they were stored under. Restore the right one, or start a "
            "development database's keys over with `sealring keys reset --yes` "
            "(nothing was changed)"
        )


class KeyUnavailable(KeysError):
    """No active key can sign with the requested algorithm."""

    code = "key_unavailable"


class UnknownKey(KeysError):
    code = "unknown_key"
    usage = True


class InvalidTransition(KeysError):
    """A lifecycle transition that the state machine does not allow."""

    code = "invalid_transition"
    usage = True


class HSMError(KeysError):
    """The PKCS#11 token refused an operation, or is misconfigured."""

    code = "hsm_error"
