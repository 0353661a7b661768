"""Browser sessions: the signed-in state behind the session cookie (issue 9, item 4).

The cookie carries a 256-bit handle; the table keeps only its keyed hash.  The ``session_id`` is
a second random value, the ``sid`` of ID tokens, so publishing it to clients opens nothing.  A
session ends at the first of: logout, ``idle_lifetime`` without use, ``absolute_lifetime``
after sign-in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.orm import Session

from sealring.server.stores.login_tables import BrowserSessionRow
from sealring.server.tokens.handles import HandleHasher, HandleKind, new_handle

__all__ = ["BrowserSession", "BrowserSessionStore"]


@dataclass(frozen=True)
class BrowserSession:
    session_id: str
    subject: str
    auth_time: float
    amr: tuple[str, ...]
    acr: str | None
    expires_at: float


def _to_session(row: BrowserSessionRow) -> BrowserSession:
    return BrowserSession(
        session_id=row.session_id,
        subject=row.subject,
        auth_time=row.auth_time,
        amr=tuple(row.amr.split()),
        acr=row.acr,
        expires_at=row.expires_at,
    )


class BrowserSessionStore:
    def __init__(
        self,
        engine: Engine,
        hasher: HandleHasher,
        *,
        idle_lifetime: float = 2 * 3600.0,
        absolute_lifetime: float = 14 * 86400.0,
    ) -> None:
        if not 0 < idle_lifetime <= absolute_lifetime:
            raise ValueError("session lifetimes: 0 < idle <= absolute")
        self._engine = engine
        self._hasher = hasher
        self.idle_lifetime = idle_lifetime
        self.absolute_lifetime = absolute_lifetime

    def create(
        self,
        subject: str,
        *,
        now: float,
        amr: tuple[str, ...] = ("pwd",),
        acr: str | None = None,
    ) -> tuple[str, BrowserSession]:
        """A new session for a sign-in that just happened; returns ``(cookie value, session)``."""
        cookie = new_handle()
        row = BrowserSessionRow(
            session_id=secrets.token_urlsafe(24),
            cookie_hash=self._hasher.hash(HandleKind.SESSION, cookie),
            subject=subject,
            auth_time=now,
            amr=" ".join(amr),
            acr=acr,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.absolute_lifetime,
        )
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            session.add(row)
        return cookie, _to_session(row)

    def resume(self, cookie: str, *, now: float) -> BrowserSession | None:
        """The live session behind ``cookie`` (and mark it used), or None."""
        key = self._hasher.lookup_key(HandleKind.SESSION, cookie)
        if key is None:
            return None
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            touched = session.execute(
                update(BrowserSessionRow)
                .where(
                    BrowserSessionRow.cookie_hash == key,
                    BrowserSessionRow.ended_at.is_(None),
                    BrowserSessionRow.expires_at > now,
                    BrowserSessionRow.last_seen_at > now - self.idle_lifetime,
                )
                .values(last_seen_at=now)
            )
            if int(touched.rowcount) != 1:  # type: ignore[attr-defined]
                return None
            row = session.scalar(
                select(BrowserSessionRow).where(BrowserSessionRow.cookie_hash == key)
            )
            if row is None or not self._hasher.matches(HandleKind.SESSION, cookie, key):
                return None
            return _to_session(row)

    def end(self, session_id: str, *, now: float) -> bool:
        """Log out: the cookie stops working at once; False if it had ended already."""
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                update(BrowserSessionRow)
                .where(
                    BrowserSessionRow.session_id == session_id,
                    BrowserSessionRow.ended_at.is_(None),
                )
                .values(ended_at=now)
            )
            return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def prune(self, now: float) -> int:
        """Delete ended, expired and idle sessions."""
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                delete(BrowserSessionRow).where(
                    or_(
                        BrowserSessionRow.ended_at.is_not(None),
                        BrowserSessionRow.expires_at <= now,
                        BrowserSessionRow.last_seen_at <= now - self.idle_lifetime,
                    )
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
