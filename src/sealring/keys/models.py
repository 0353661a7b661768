"""ORM mapping of the key tables created by migration ``0001_keys``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from sealring.db import Base

__all__ = ["InstallationRow", "KeyEventRow", "KeyGenerationRow", "SigningKeyRow"]


def _one_key_per_alg(state: str) -> Index:
    """At most one key per algorithm in ``state``: a partial unique index, on both databases."""
    where = text(f"state = '{state}'")
    return Index(
        f"uq_signing_keys_one_{state}",
        "alg",
        unique=True,
        sqlite_where=where,
        postgresql_where=where,
    )


class SigningKeyRow(Base):
    __tablename__ = "signing_keys"
    __table_args__ = (_one_key_per_alg("active"), _one_key_per_alg("pending"))

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    backend: Mapped[str] = mapped_column(String(8))
    public_jwk: Mapped[str] = mapped_column(Text)
    private_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    kek_id: Mapped[str | None] = mapped_column(String(32))
    hsm_ref: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)
    published_at: Mapped[float | None] = mapped_column(Float)  # migration 0004
    activates_at: Mapped[float | None] = mapped_column(Float)
    activated_at: Mapped[float | None] = mapped_column(Float)
    retires_at: Mapped[float | None] = mapped_column(Float)
    retired_at: Mapped[float | None] = mapped_column(Float)
    removes_at: Mapped[float | None] = mapped_column(Float)
    removed_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class KeyEventRow(Base):
    """The audit trail: one row per lifecycle transition."""

    __tablename__ = "signing_key_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kid: Mapped[str] = mapped_column(String(64), index=True)
    alg: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)


class KeyGenerationRow(Base):
    """One row; its counter goes up in every transaction that changes keys (replicas poll it)."""

    __tablename__ = "signing_key_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger)


class InstallationRow(Base):
    """One row (migration ``0007_installation``): the id in the labels of this installation's
    HSM objects. Made once, with the database; never changed."""

    __tablename__ = "sealring_installation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    installation_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float)
