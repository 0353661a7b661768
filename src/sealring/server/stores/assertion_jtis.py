"""Used client-assertion ``jti`` values (RFC 7523 §3 item 7), shared by every replica."""

from __future__ import annotations

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealring.server.stores.tables import AssertionJti

__all__ = ["JtiStore"]


class JtiStore:
    """Single use of assertion ``jti`` values across every replica (a primary-key insert)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def use(self, client_id: str, jti: str, expires_at: float) -> bool:
        """Record the jti; False if it was recorded before (by any replica)."""
        try:
            with Session(self._engine) as session, session.begin():
                session.add(AssertionJti(client_id=client_id, jti=jti, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    def prune(self, now: float) -> int:
        with Session(self._engine) as session, session.begin():
            result = session.execute(delete(AssertionJti).where(AssertionJti.expires_at < now))
            return int(result.rowcount)  # type: ignore[attr-defined]
