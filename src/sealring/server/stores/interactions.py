"""Interactions: a login or consent step in progress at ``/interaction/{uid}``.

``/authorize`` stores the checked request and sends the browser to ``/interaction/{uid}``; the
pages record what the user did (:meth:`InteractionStore.finish`), and the resumed authorization
request consumes the interaction exactly once (:meth:`InteractionStore.consume`).  Only the uid's
keyed hash is stored.  An expired interaction is still found (``expired`` is true) until pruned,
so the page can offer a way back to the client instead of "not found".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine, delete, update
from sqlalchemy.orm import Session

from sealring.server.stores.login_tables import InteractionRow
from sealring.server.tokens.handles import HandleHasher, HandleKind, new_handle

__all__ = ["Interaction", "InteractionStore"]

Prompt = Literal["login", "consent"]


@dataclass(frozen=True)
class Interaction:
    uid_hash: bytes
    client_id: str
    request: Mapping[str, Any]
    prompt: Prompt
    reasons: tuple[str, ...]
    session_id: str | None
    result: Mapping[str, Any] | None
    expires_at: float
    consumed: bool
    expired: bool = field(default=False)


class InteractionStore:
    def __init__(self, engine: Engine, hasher: HandleHasher, *, lifetime: float = 600.0) -> None:
        if lifetime <= 0:
            raise ValueError("the interaction lifetime must be positive")
        self._engine = engine
        self._hasher = hasher
        self.lifetime = lifetime

    def create(
        self,
        client_id: str,
        request: Mapping[str, Any],
        *,
        prompt: Prompt,
        now: float,
        reasons: tuple[str, ...] = (),
        session_id: str | None = None,
    ) -> str:
        """Store the request waiting for the user; returns the uid for the URL."""
        uid = new_handle()
        with Session(self._engine) as session, session.begin():
            session.add(
                InteractionRow(
                    uid_hash=self._hasher.hash(HandleKind.INTERACTION, uid),
                    client_id=client_id,
                    request=json.dumps(dict(request), sort_keys=True),
                    prompt=prompt,
                    reasons=" ".join(reasons),
                    session_id=session_id,
                    created_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return uid

    def _key(self, uid: str) -> bytes | None:
        return self._hasher.lookup_key(HandleKind.INTERACTION, uid)

    def get(self, uid: str, *, now: float) -> Interaction | None:
        """The interaction (expired ones flagged, not hidden); None if unknown."""
        key = self._key(uid)
        if key is None:
            return None
        with Session(self._engine) as session:
            row = session.get(InteractionRow, key)
            if row is None:
                return None
            return Interaction(
                uid_hash=row.uid_hash,
                client_id=row.client_id,
                request=json.loads(row.request),
                prompt=row.prompt,  # type: ignore[arg-type]  # the CHECK constraint holds it
                reasons=tuple(row.reasons.split()),
                session_id=row.session_id,
                result=json.loads(row.result) if row.result is not None else None,
                expires_at=row.expires_at,
                consumed=row.consumed_at is not None,
                expired=row.expires_at <= now,
            )

    def finish(
        self,
        uid: str,
        result: Mapping[str, Any],
        *,
        now: float,
        session_id: str | None = None,
        prompt: Prompt | None = None,
    ) -> bool:
        """Record what the user did (login then consent may each write); False when the
        interaction is unknown, expired or already consumed."""
        key = self._key(uid)
        if key is None:
            return False
        values: dict[str, Any] = {"result": json.dumps(dict(result), sort_keys=True)}
        if session_id is not None:
            values["session_id"] = session_id
        if prompt is not None:
            values["prompt"] = prompt
        return self._update_live(key, now, values)

    def consume(self, uid: str, *, now: float) -> Interaction | None:
        """Take the finished interaction once; None if unknown, expired or taken before."""
        key = self._key(uid)
        if key is None:
            return None
        if not self._update_live(key, now, {"consumed_at": now}):
            return None
        return self.get(uid, now=now)

    def _update_live(self, key: bytes, now: float, values: Mapping[str, Any]) -> bool:
        """Set ``values`` on the interaction if it is neither consumed nor expired, in one
        statement (so two requests cannot both take it); whether it was."""
        with Session(self._engine) as session, session.begin():
            updated = session.execute(
                update(InteractionRow)
                .where(
                    InteractionRow.uid_hash == key,
                    InteractionRow.consumed_at.is_(None),
                    InteractionRow.expires_at > now,
                )
                .values(**values)
            )
            return int(updated.rowcount) == 1  # type: ignore[attr-defined]

    def prune(self, now: float, *, keep_expired_for: float = 3600.0) -> int:
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                delete(InteractionRow).where(InteractionRow.expires_at < now - keep_expired_for)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
