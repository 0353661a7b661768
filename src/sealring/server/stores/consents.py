"""Remembered consent: the scopes a user has allowed a client (issue 9, item 4).

The consent page is skipped when every requested scope is already remembered and not expired;
allowing more scopes later adds to the set (one row per user and client).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sealring.server.stores._transactions import write_transaction
from sealring.server.stores.login_tables import ConsentRow

__all__ = ["ConsentStore"]


class ConsentStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def granted(self, subject: str, client_id: str, *, now: float) -> frozenset[str]:
        """The scopes this user has allowed this client and that still hold."""
        with Session(self._engine) as session:
            row = session.get(ConsentRow, (subject, client_id))
            if row is None or (row.expires_at is not None and row.expires_at <= now):
                return frozenset()
            return frozenset(row.scope.split())

    def covers(self, subject: str, client_id: str, scopes: Iterable[str], *, now: float) -> bool:
        """Whether consent for every scope in ``scopes`` is remembered."""
        return set(scopes) <= self.granted(subject, client_id, now=now)

    def remember(
        self,
        subject: str,
        client_id: str,
        scopes: Iterable[str],
        *,
        now: float,
        expires_at: float | None = None,
    ) -> frozenset[str]:
        """Add ``scopes`` to what is remembered; returns the whole remembered set."""
        new = set(scopes)
        for _ in range(2):  # a concurrent first insert turns our insert into an update
            try:
                with write_transaction(self._engine) as conn:
                    # Locked until commit (PostgreSQL; SQLite's write transaction holds the
                    # database's lock): two concurrent consents must not overwrite each other.
                    row = conn.execute(
                        select(ConsentRow.scope, ConsentRow.expires_at)
                        .where(ConsentRow.subject == subject, ConsentRow.client_id == client_id)
                        .with_for_update()
                    ).first()
                    if row is None:
                        merged = new
                        conn.execute(
                            insert(ConsentRow).values(
                                subject=subject,
                                client_id=client_id,
                                scope=" ".join(sorted(merged)),
                                created_at=now,
                                updated_at=now,
                                expires_at=expires_at,
                            )
                        )
                    else:
                        held = row.expires_at is None or row.expires_at > now
                        merged = new | (set(row.scope.split()) if held else set())
                        conn.execute(
                            update(ConsentRow)
                            .where(ConsentRow.subject == subject, ConsentRow.client_id == client_id)
                            .values(
                                scope=" ".join(sorted(merged)),
                                updated_at=now,
                                expires_at=expires_at,
                            )
                        )
                return frozenset(merged)
            except IntegrityError:
                continue
        raise RuntimeError("consent could not be stored")  # pragma: no cover - two lost races

    def forget(self, subject: str, client_id: str) -> bool:
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                delete(ConsentRow).where(
                    ConsentRow.subject == subject, ConsentRow.client_id == client_id
                )
            )
            return int(result.rowcount) == 1  # type: ignore[attr-defined]
