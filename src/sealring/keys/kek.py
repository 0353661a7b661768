"""Key-encryption keys: private signing keys are stored only under AES-256-GCM.

Like ``MultiFernet``, a :class:`KEKRing` holds several KEKs: the first encrypts, every one
decrypts, so a KEK is rotated by putting the new one first and running ``sealring keys rewrap``.
The key id and algorithm are bound as associated data, so a ciphertext moved onto another row
fails to decrypt instead of signing under the wrong name.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import sqlite3
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.request import pathname2url

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealring.db import sqlite_path
from sealring.keys.errors import KEKError, KeyConfigError

__all__ = ["DEV_KEK_WARNED_ENV", "KEKRing", "existing_kek", "load_kek"]

log = logging.getLogger("sealring.keys")

_KEK_LEN = 32
_NONCE_LEN = 12
_FORMAT = b"\x01"  # blob layout version: 0x01 || nonce(12) || ciphertext+tag
# Set by `sealring serve` once its start-up check has warned, so that its workers (which load the
# KEK again) do not repeat the development warning: one warning per start.
DEV_KEK_WARNED_ENV = "SEALRING_DEV_KEK_WARNED"


class KEKRing:
    """An ordered list of 256-bit KEKs. Never printed: ``repr`` shows only their ids."""

    __slots__ = ("_keys", "source")

    def __init__(self, keys: Sequence[bytes], *, source: str = "the configured KEK") -> None:
        #: Where the ring came from, for error messages ("SEALRING_KEK", "the KEK file ...").
        self.source = source
        if not keys:
            raise KEKError("a KEK ring needs at least one key")
        for key in keys:
            if not isinstance(key, bytes) or len(key) != _KEK_LEN:
                raise KEKError("every KEK must be exactly 32 bytes (AES-256)")
        self._keys = tuple((_kek_id(k), AESGCM(k)) for k in keys)

    @classmethod
    def from_string(cls, text: str, *, source: str = "the configured KEK") -> KEKRing:
        """Comma- or newline-separated standard base64 keys, the first being the primary."""
        parts = [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
        if not parts:
            raise KEKError("the KEK setting is empty")
        keys = []
        for index, part in enumerate(parts, 1):
            try:
                keys.append(base64.b64decode(part, validate=True))
            except (binascii.Error, ValueError):
                raise KEKError(f"KEK #{index} is not valid base64") from None
        return cls(keys, source=source)

    @classmethod
    def from_file(cls, path: Path, *, source: str | None = None) -> KEKRing:
        source = source or f"the KEK file {path}"
        try:
            text = path.read_text("ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise KEKError(
                f"cannot read {source}: {getattr(exc, 'strerror', None) or type(exc).__name__}"
            ) from None
        return cls.from_string(text, source=source)

    @staticmethod
    def generate_text() -> str:
        """A fresh KEK in the format ``SEALRING_KEK`` and KEK files use."""
        return base64.b64encode(os.urandom(_KEK_LEN)).decode("ascii")

    @property
    def primary_id(self) -> str:
        return self._keys[0][0]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(kid for kid, _ in self._keys)

    def __repr__(self) -> str:
        return f"KEKRing(ids={list(self.ids)!r})"

    def encrypt(self, plaintext: bytes, *, kid: str, alg: str) -> tuple[str, bytes]:
        """Encrypt a signing key under the primary KEK; returns ``(kek_id, blob)``."""
        return self.seal(plaintext, aad=_aad(kid, alg))

    def decrypt(self, blob: bytes, *, kid: str, alg: str, kek_id: str | None = None) -> bytes:
        """Decrypt with the KEK named ``kek_id`` (or any); raises ``InvalidTag`` on failure."""
        return self.unseal(blob, aad=_aad(kid, alg), kek_id=kek_id)

    def seal(self, plaintext: bytes, *, aad: bytes) -> tuple[str, bytes]:
        """Encrypt anything under the primary KEK, bound to ``aad`` (which names what it is, so
        one kind of blob never opens as another); returns ``(kek_id, blob)``."""
        kek_id, aead = self._keys[0]
        nonce = os.urandom(_NONCE_LEN)
        return kek_id, _FORMAT + nonce + aead.encrypt(nonce, plaintext, aad)

    def unseal(self, blob: bytes, *, aad: bytes, kek_id: str | None = None) -> bytes:
        """Open what :meth:`seal` made; raises ``InvalidTag`` on failure."""
        if len(blob) < 1 + _NONCE_LEN + 16 or blob[:1] != _FORMAT:
            raise InvalidTag
        nonce, body = blob[1 : 1 + _NONCE_LEN], blob[1 + _NONCE_LEN :]
        candidates = [a for i, a in self._keys if i == kek_id] or [a for _, a in self._keys]
        for aead in candidates:
            try:
                return aead.decrypt(nonce, body, aad)
            except InvalidTag:
                continue
        raise InvalidTag


def _kek_id(key: bytes) -> str:
    # A one-way label so rows can say which KEK wrapped them; reveals nothing about the key.
    return hashlib.sha256(b"sealring kek id\x00" + key).hexdigest()[:16]


def _aad(kid: str, alg: str) -> bytes:
    return b"sealring signing key v1\x00" + kid.encode() + b"\x00" + alg.encode()


def load_kek(database_url: str, environ: Mapping[str, str] | None = None) -> KEKRing:
    """The KEK ring from ``SEALRING_KEK`` or ``SEALRING_KEK_FILE``.

    With neither set and a SQLite file database (the embedded default), a development KEK file
    ``<database>.kek`` is created beside it (mode 0600) and a warning is logged on every start.
    """
    env = os.environ if environ is None else environ
    configured = _configured_kek(env)
    if configured is not None:
        return configured
    db_file = sqlite_path(database_url)
    if db_file is None:
        raise KeyConfigError(
            "no key-encryption key configured: set SEALRING_KEK (base64 of 32 random bytes) "
            "or SEALRING_KEK_FILE"
        )
    kek_file = db_file.with_name(db_file.name + ".kek")
    if not kek_file.exists():
        # A new KEK could never open the keys already stored: refuse rather than make one.
        _refuse_if_keys_need(kek_file, db_file)
        _create_dev_kek(kek_file)
    _check_private(kek_file)
    if not env.get(DEV_KEK_WARNED_ENV):
        log.warning(
            "DEVELOPMENT SETUP: signing keys are encrypted with the KEK file %s that sits "
            "beside the database; set SEALRING_KEK or SEALRING_KEK_FILE in production "
            "(see docs/keys.md)",
            kek_file,
        )
    return KEKRing.from_file(kek_file, source=f"the development KEK file {kek_file}")


def existing_kek(database_url: str, environ: Mapping[str, str] | None = None) -> KEKRing | None:
    """The KEK :func:`load_kek` would use, without creating or announcing anything: ``None``
    when none is configured and the development KEK file does not exist (read-only commands)."""
    env = os.environ if environ is None else environ
    configured = _configured_kek(env)
    db_file = sqlite_path(database_url)
    if configured is not None or db_file is None:
        return configured
    kek_file = db_file.with_name(db_file.name + ".kek")
    if not kek_file.exists():
        _refuse_if_keys_need(kek_file, db_file)
        return None
    _check_private(kek_file)
    return KEKRing.from_file(kek_file, source=f"the development KEK file {kek_file}")


def _configured_kek(env: Mapping[str, str]) -> KEKRing | None:
    if env.get("SEALRING_KEK"):
        return KEKRing.from_string(env["SEALRING_KEK"], source="SEALRING_KEK")
    if env.get("SEALRING_KEK_FILE"):
        # Whoever can write it chooses the key that wraps the signing keys: the same rule as
        # the development file (issue 10).
        path = Path(env["SEALRING_KEK_FILE"])
        _check_private(path, setting="SEALRING_KEK_FILE")
        return KEKRing.from_file(path)
    return None


def _refuse_if_keys_need(kek_file: Path, db_file: Path) -> None:
    """Raise when the missing development KEK file wraps keys the database holds."""
    if _holds_encrypted_keys(db_file):
        raise KEKError(
            f"the development KEK file {kek_file} is missing, but the database {db_file} "
            "holds signing keys encrypted under it: restore the file, or start the "
            "development database's keys over with `sealring keys reset --yes`"
        )


def _holds_encrypted_keys(db_file: Path) -> bool:
    """Whether the SQLite file has signing keys stored under a KEK (read-only look)."""
    if not db_file.exists():
        return False
    uri = f"file:{pathname2url(str(db_file.resolve()))}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            row = conn.execute(
                "SELECT 1 FROM signing_keys WHERE private_enc IS NOT NULL LIMIT 1"
            ).fetchone()
    except sqlite3.Error:  # no such table yet, or not a database: nothing to protect
        return False
    return row is not None


def _check_private(kek_file: Path, *, setting: str | None = None) -> None:
    """Refuse a KEK file another local user could have planted or can read.

    Whoever writes the KEK decides the key that wraps the signing keys, and whoever reads it can
    unwrap them (issue 10): owned by this user, no group or other access.
    """
    named = f"KEK file {kek_file}" + (f" ({setting})" if setting else "")
    try:
        info = kek_file.stat()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise KEKError(f"cannot read {named}: {reason}") from None
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        fix = f"chmod 600 {kek_file}"
        if info.st_uid != os.geteuid():
            fix = f"chown {os.geteuid()} {kek_file} && {fix} (as its owner or root)"
        raise KEKError(
            f"{named} must be owned by this user (uid {os.geteuid()}) and not "
            f"accessible to group or others (it is uid {info.st_uid}, mode "
            f"{stat.S_IMODE(info.st_mode):03o}); if it is yours, run: {fix}"
        )


def _create_dev_kek(kek_file: Path) -> None:
    # Written to a private temporary file, then linked into place: another process starting at
    # the same moment either links first (we read theirs) or never sees a half-written file.
    kek_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = kek_file.with_name(f".{kek_file.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(KEKRing.generate_text() + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, kek_file)
    finally:
        tmp.unlink(missing_ok=True)
