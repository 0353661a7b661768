"""Revoked access tokens (RFC 7009): a ``jti`` kept until the token would have expired."""

from __future__ import annotations

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealring.server.stores.tables import RevokedToken

__all__ = ["RevocationStore"]


class RevocationStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def revoke(self, jti: str, client_id: str, expires_at: float, now: float) -> None:
        try:
            with Session(self._engine) as session, session.begin():
                session.add(
                    RevokedToken(
                        jti=jti, client_id=client_id, expires_at=expires_at, revoked_at=now
                    )
                )
        except IntegrityError:
            pass  # revoked already: RFC 7009 §2.2, revocation is idempotent

    def is_revoked(self, jti: str) -> bool:
        with Session(self._engine) as session:
            return (
                session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None
            )

    def prune(self, now: float) -> int:
        with Session(self._engine) as session, session.begin():
            result = session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
            return int(result.rowcount)  # type: ignore[attr-defined]
