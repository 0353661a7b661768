"""Clients in the database (``oauth_clients``) and a short in-memory lookup cache."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from sealring.server.clients import Client
from sealring.server.stores.tables import ClientRow

__all__ = ["ClientCache", "ClientRepository"]


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


def _to_client(row: ClientRow) -> Client:
    return Client(
        client_id=row.client_id,
        name=row.name,
        auth_method=row.auth_method,
        grant_types=_split(row.grant_types),
        scopes=_split(row.scope),
        audiences=_split(row.audiences),
        redirect_uris=_split(row.redirect_uris),
        jwks=row.jwks,
        jwks_uri=row.jwks_uri,
        created_at=row.created_at,
        secret_hash=row.secret_hash,
        introspect=row.introspect,
        skip_consent=row.skip_consent,
        post_logout_redirect_uris=_split(row.post_logout_redirect_uris),
        id_token_alg=row.id_token_alg,
    )


class ClientRepository:
    """Clients in the database (synchronous; the server calls it from a worker thread)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def get(self, client_id: str) -> Client | None:
        with Session(self._engine) as session:
            row = session.get(ClientRow, client_id)
            return _to_client(row) if row is not None else None

    def list(self) -> list[Client]:
        with Session(self._engine) as session:
            rows = session.scalars(
                select(ClientRow).order_by(ClientRow.created_at, ClientRow.client_id)
            )
            return [_to_client(r) for r in rows]

    def add(self, client: Client, secret_hash: bytes | None) -> Client:
        now = self._clock()
        created = client.created_at or now
        row = ClientRow(
            client_id=client.client_id,
            secret_hash=secret_hash,
            created_at=created,
            updated_at=now,
            **_registered(client),
        )
        with Session(self._engine) as session, session.begin():
            session.add(row)
        return dataclasses.replace(client, created_at=created, secret_hash=secret_hash)

    def delete(self, client_id: str) -> bool:
        with Session(self._engine) as session, session.begin():
            result = session.execute(delete(ClientRow).where(ClientRow.client_id == client_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_secret_hash(self, client_id: str, secret_hash: bytes) -> bool:
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                update(ClientRow)
                .where(ClientRow.client_id == client_id)
                .values(secret_hash=secret_hash, updated_at=self._clock())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def update(self, client: Client) -> bool:
        """Replace every registered field of ``client.client_id`` (secret hash included; the
        creation time kept); ``False`` when there is no such client.  The caller checks the
        values first, as :func:`~sealring.server.clients.new_client` does for a new one."""
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                update(ClientRow)
                .where(ClientRow.client_id == client.client_id)
                .values(
                    secret_hash=client.secret_hash,
                    updated_at=self._clock(),
                    **_registered(client),
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


class ClientCache:
    """Client lookups cached in memory for ``ttl`` seconds (default 5 s), misses included.

    A deletion or secret rotation made through another process is seen by this one within
    ``ttl``.  Known clients and unknown ids are kept apart, at most ``max_entries`` of each
    (oldest evicted first): a flood of unknown client ids costs one query per id and ttl, cannot
    grow memory, and cannot push a real client out of the cache (issue 10).
    """

    def __init__(
        self,
        repository: ClientRepository,
        *,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Client | None]] = OrderedDict()
        self._misses: OrderedDict[str, tuple[float, Client | None]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, client_id: str) -> tuple[bool, Client | None]:
        """``(hit, client)`` without touching the database."""
        entry = self._entries.get(client_id) or self._misses.get(client_id)
        if entry is None or entry[0] <= self._clock():
            return False, None
        return True, entry[1]

    def get(self, client_id: str) -> Client | None:
        hit, client = self.cached(client_id)
        if hit:
            return client
        client = self._repository.get(client_id)
        if self._ttl > 0:
            table = self._entries if client is not None else self._misses
            with self._lock:
                (self._misses if client is not None else self._entries).pop(client_id, None)
                table[client_id] = (self._clock() + self._ttl, client)
                table.move_to_end(client_id)
                while len(table) > self._max:
                    table.popitem(last=False)
        return client

    def invalidate(self, client_id: str | None = None) -> None:
        with self._lock:
            if client_id is None:
                self._entries.clear()
                self._misses.clear()
            else:
                self._entries.pop(client_id, None)
                self._misses.pop(client_id, None)


def _registered(client: Client) -> dict[str, object]:
    """The columns of a client's registered metadata, as stored."""
    return {
        "name": client.name,
        "auth_method": client.auth_method,
        "grant_types": " ".join(client.grant_types),
        "scope": " ".join(client.scopes),
        "audiences": " ".join(client.audiences),
        "redirect_uris": " ".join(client.redirect_uris),
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "public": client.public,
        "introspect": client.introspect,
        "skip_consent": client.skip_consent,
        "post_logout_redirect_uris": " ".join(client.post_logout_redirect_uris),
        "id_token_alg": client.id_token_alg,
    }
