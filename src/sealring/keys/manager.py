"""The key manager: the lifecycle of :mod:`sealring.keys.schedule`, stored and shared.

Every change happens in one serialised write transaction (PostgreSQL advisory lock, SQLite
``BEGIN IMMEDIATE``) that re-reads the keys, runs the schedule, writes the new state and the
audit rows, and bumps the generation counter. A replica that reaches the same rotation a moment
later finds it done; the partial unique indexes (one active, one pending per algorithm) back this
up. A process killed inside the transaction leaves nothing in the database: it rolls back. HSM
objects such a process made stay on the token, labelled with this installation's id, until
``sealring keys gc-hsm --delete`` (nothing destroys an object no row records on its own).

Where private keys live is a :class:`~sealring.keys.stores.KeyStore`'s business (the database
under the KEK, or a PKCS#11 token); the manager only runs the schedule and owns the transaction.

Replicas poll the generation counter (:meth:`KeyManager.refresh`, one indexed one-row read) from
:meth:`KeyManager.run_forever`, so each sees a change within one poll interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.orm import Session

from sealring.db import KEYS_LOCK_ID, write_transaction
from sealring.jose.jwks import DEFAULT_MAX_KEYS as MAX_JWKS_KEYS
from sealring.jose.jws import Signer
from sealring.keys.errors import KEKMismatch, KeyConfigError, KeyUnavailable, UnknownKey
from sealring.keys.hsm import HSMConfig
from sealring.keys.jwks import JWKSDocument
from sealring.keys.kek import KEKRing
from sealring.keys.models import InstallationRow, KeyEventRow, KeyGenerationRow, SigningKeyRow
from sealring.keys.schedule import (
    ACTIVE,
    PENDING,
    PUBLISHED,
    REMOVED,
    RETIRED,
    REVOKED,
    KeyRecord,
    RotationPolicy,
    Transition,
    activate_now,
    advance,
    create,
    mark_published,
    move,
    next_due,
)
from sealring.keys.stores import DatabaseKeyStore, HSMKeyStore, HSMObject, KeyStore

__all__ = ["HSMCleanup", "KeyInfo", "KeyManager", "key_events", "stored_keys"]

log = logging.getLogger("sealring.keys")

_LIFECYCLE_FIELDS = tuple(f.name for f in fields(KeyRecord) if f.name not in ("kid", "alg"))
_STATE_ORDER = {ACTIVE: 0, PENDING: 1}


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as ``sealring keys list`` shows it: public facts only."""

    kid: str
    alg: str
    state: str
    backend: str
    created_at: float
    published_at: float | None
    activates_at: float | None
    activated_at: float | None
    retires_at: float | None
    retired_at: float | None
    removes_at: float | None
    removed_at: float | None
    revoked_at: float | None
    revoke_reason: str | None

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class _Snapshot:
    generation: int
    signers: dict[str, Signer]
    jwks: JWKSDocument
    records: tuple[KeyRecord, ...]
    infos: tuple[KeyInfo, ...]
    next_due: float
    # alg -> why its active key cannot sign here (a KEK this process lacks): revocation wins
    # over availability, so such an algorithm has no signer rather than a stale one.
    unusable: dict[str, str]


class KeyManager:
    """Signing keys of one installation, shared by every replica through the database."""

    def __init__(
        self,
        engine: Engine,
        *,
        kek: KEKRing | None,
        policy: RotationPolicy,
        hsm: HSMConfig | None = None,
        clock: Callable[[], float] = time.time,
        publishes: bool = False,
    ) -> None:
        """``publishes``: this manager serves the JWKS (a server replica, not a ``sealring keys``
        command), so a pending key's pre-publication counts from its first load here."""
        if kek is None and hsm is None:
            raise KeyConfigError("configure a KEK (SEALRING_KEK) or an HSM for signing keys")
        self.engine = engine
        self.policy = policy
        self._database = DatabaseKeyStore(kek)
        self._hsm = HSMKeyStore(hsm) if hsm is not None else None
        # New keys go to the HSM when one is configured; existing keys stay where they are.
        self._new_keys: KeyStore = self._hsm or self._database
        self._clock = clock
        self._publishes = publishes
        self._actor = f"{socket.gethostname()}:{os.getpid()}"[:200]
        self._snapshot: _Snapshot | None = None
        self._load_lock = threading.Lock()

    # -- what the server calls ------------------------------------------------------------

    def ensure_ready(self) -> None:
        """Load the keys (failing before any write if the KEK cannot open them), then run
        whatever the schedule says is due (on a first start: create the keys)."""
        self._load()
        self.run_due(force=True)

    def run_due(self, *, force: bool = False) -> list[Transition]:
        """One tick of the schedule. Exactly once across replicas: see the module docstring."""
        snapshot = self._snapshot
        if not force and snapshot is not None and self._clock() < snapshot.next_due:
            return []
        return self._write(
            lambda records, now, new_kid: advance(records, self.policy, now, new_kid)
        )

    def refresh(self) -> bool:
        """Reload if another replica changed the keys; True when something was reloaded."""
        with self.engine.connect() as conn:
            generation = self._generation(conn)
        snapshot = self._snapshot
        # A degraded snapshot (an active key it cannot open) is retried on every poll, so the
        # error stays in the log until the process gets the missing KEK.
        if snapshot is not None and snapshot.generation == generation and not snapshot.unusable:
            return False
        self._load()
        return True

    def signer(self, alg: str) -> Signer:
        """The active key for ``alg``; raises :class:`KeyUnavailable`."""
        snapshot = self._current()
        signer = snapshot.signers.get(alg)
        if signer is None:
            why = snapshot.unusable.get(alg)
            raise KeyUnavailable(
                f"no usable {alg} signing key: {why}" if why else f"no active {alg} signing key"
            )
        return signer

    def jwks(self) -> JWKSDocument:
        """The published JWK Set: pending + active + retired public keys."""
        return self._current().jwks

    async def run_forever(self, interval: float | None = None) -> None:
        """Poll and run the schedule every ``interval`` seconds until cancelled.

        ``None`` takes the policy's poll interval. A longer interval than the policy's
        :attr:`~RotationPolicy.max_poll_interval` is lowered to it: a replica polling slower
        than that could serve a JWKS without a pending key until after that key signs.
        """
        bound = self.policy.max_poll_interval
        if interval is None:
            interval = self.policy.poll_interval_time
        elif interval > bound:
            log.info(
                "key poll interval lowered from %g s to %g s: with JWKS max-age %g s and "
                "pre-publication %g s a slower poll could let a key sign before every cache "
                "has it",
                interval,
                bound,
                self.policy.jwks_max_age,
                self.policy.prepublication_time,
            )
            interval = bound
        failing = False
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A database outage must not stop the loop; the next tick retries. One warning
                # per outage, not one line per poll (the server logs the outage itself).
                if not failing:
                    log.warning("key schedule tick failed: %s", _safe(exc))
                failing = True
            else:
                if failing:
                    log.warning("key schedule running again")
                failing = False
            await asyncio.sleep(interval)

    def tick(self) -> list[Transition]:
        """What one round of :meth:`run_forever` does: refresh, then run what is due."""
        self.refresh()
        return self.run_due()

    # -- operations (CLI) -----------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        """Every stored key, newest first (after a refresh)."""
        self.refresh()
        return list(self._current().infos)

    def loaded_keys(self) -> list[KeyInfo]:
        """The keys as of the last load, without asking the database (a metrics scrape)."""
        return list(self._current().infos)

    def rotate(self, alg: str | None = None, *, immediate: bool = False) -> list[Transition]:
        """Start a rotation now. Without ``immediate`` the new key still waits out the
        pre-publication time; with it, it signs at once (resource servers holding a cached
        JWKS will refetch on the unknown kid or fail until their cache expires)."""
        algs = (alg,) if alg is not None else self.policy.algorithms
        for name in algs:
            if name not in self.policy.algorithms:
                raise KeyConfigError(f"algorithm {name} is not in the rotation policy")

        def step(
            records: list[KeyRecord], now: float, new_kid: Callable[[str], str]
        ) -> list[Transition]:
            # Issue 12 item 2: never publish more keys than verifiers accept, not even through
            # a loop of manual rotations (retired keys stay published until their tokens
            # expire).  Checked before any key is made, so a refusal leaves nothing behind.
            published = sum(1 for r in records if r.state in PUBLISHED)
            if published + len(algs) > MAX_JWKS_KEYS:
                raise KeyConfigError(
                    f"a rotation now would publish more than {MAX_JWKS_KEYS} keys ({published} "
                    "are published), more than resource servers accept in one JWK Set; wait "
                    "until retired keys are removed, or revoke keys no token needs"
                )
            steps = advance(records, self.policy, now, new_kid)
            for name in algs:
                pending = next((r for r in records if r.alg == name and r.state == PENDING), None)
                if pending is None:
                    pending, made = create(
                        records, new_kid(name), name, now, now + self.policy.prepublication_time
                    )
                    steps.append(made)
                if immediate:
                    pending.activates_at = now
                    steps += activate_now(
                        records, pending, self.policy, now, "manual rotation (--now)"
                    )
            return steps + advance(records, self.policy, now, new_kid)

        return self._write(step)

    def revoke(self, kid: str, reason: str) -> list[Transition]:
        """Emergency: unpublish ``kid`` at once and destroy its private key. If it was active,
        its algorithm's pending key (or a new one) signs from now on."""
        if not reason.strip():
            raise KeyConfigError("a revocation needs a reason")

        def step(
            records: list[KeyRecord], now: float, new_kid: Callable[[str], str]
        ) -> list[Transition]:
            record = next((r for r in records if r.kid == kid), None)
            if record is None:
                raise UnknownKey(f"no key with kid {kid}")
            steps = [move(record, REVOKED, now, reason.strip())]
            return steps + advance(records, self.policy, now, new_kid)

        return self._write(step)

    def rewrap(self) -> int:
        """Re-encrypt every stored private key under the first KEK; returns how many changed."""
        kek = self._database.kek
        if kek is None:
            raise KeyConfigError("no KEK configured")
        changed = 0
        with write_transaction(self.engine, KEYS_LOCK_ID) as conn, _session(conn) as session:
            rows = session.scalars(select(SigningKeyRow)).all()
            self._check_openable(rows)
            for row in rows:
                changed += self._database.rewrap(row)
            if changed:
                self._bump(session)
            session.commit()
        log.info("rewrapped %d signing key(s) under KEK %s", changed, kek.primary_id)
        self._load()
        return changed

    def events(self, kid: str | None = None) -> list[Transition]:
        """The audit trail, oldest first."""
        return key_events(self.engine, kid)

    def gc_hsm(self, *, delete: bool = False) -> HSMCleanup:
        """This installation's token objects that no published key owns (the keys of a rotation
        killed before its commit, a destroy that never ran); with ``delete``, destroy them.

        Only objects labelled with this database's installation id are considered; another
        installation's objects on the same token, and objects from before migration 0007 that
        no row here records, are counted and never touched. The dry run only reads; the delete
        holds the keys write lock, so a rotation in flight cannot lose its new key.
        """
        if self._hsm is None:
            raise KeyConfigError("no HSM is configured (SEALRING_HSM_MODULE)")
        hsm = self._hsm
        if not delete:
            with self.engine.connect() as conn, Session(bind=conn) as session:
                hsm.installation = _installation_id(conn)
                rows = list(session.scalars(select(SigningKeyRow)))
            found, others = hsm.orphans(rows)
            return HSMCleanup(hsm.installation, found, others, deleted=False)
        with write_transaction(self.engine, KEYS_LOCK_ID) as conn, _session(conn) as session:
            hsm.installation = _installation_id(conn)
            found, others = hsm.orphans(list(session.scalars(select(SigningKeyRow))))
            for item in found:
                log.warning("gc-hsm: destroying token object %s (%s)", item.ref, item.label)
                hsm.destroy(item)
        return HSMCleanup(hsm.installation, found, others, deleted=True)

    @property
    def kek(self) -> KEKRing | None:
        """The KEK ring this manager opens database keys with (also seals the server secret)."""
        return self._database.kek

    def close(self) -> None:
        """Close the HSM session, if any (the engine belongs to the caller)."""
        for store in self._stores():
            store.close()

    # -- internals --------------------------------------------------------------------------

    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is None:
            raise KeyUnavailable("the key manager is not ready: call ensure_ready() first")
        return snapshot

    def _stores(self) -> tuple[KeyStore, ...]:
        return (self._database,) if self._hsm is None else (self._database, self._hsm)

    def _store_of(self, row: SigningKeyRow) -> KeyStore:
        """The store holding ``row``'s private part (the one it was made in)."""
        for store in self._stores():
            if store.backend == row.backend:
                return store
        if row.backend == HSMKeyStore.backend:
            raise KeyConfigError("a key is stored on an HSM but no HSM is configured")
        raise KeyConfigError(f"a key is stored on backend {row.backend!r}, which is not known")

    def _bind_installation(self, conn: Connection) -> None:
        if self._hsm is not None and self._hsm.installation is None:
            self._hsm.installation = _installation_id(conn)

    @staticmethod
    def _generation(conn: Connection) -> int:
        value = conn.execute(
            select(KeyGenerationRow.generation).where(KeyGenerationRow.id == 1)
        ).scalar_one()
        return int(value)

    def _bump(self, session: Session) -> None:
        session.execute(
            update(KeyGenerationRow)
            .where(KeyGenerationRow.id == 1)
            .values(generation=KeyGenerationRow.generation + 1)
        )

    def _check_openable(self, rows: Sequence[SigningKeyRow]) -> None:
        """Raise KEKMismatch naming every published DB key the KEK ring cannot decrypt."""
        bad = self._unopenable(rows)
        if bad:
            raise self._mismatch(bad)

    def _unopenable(self, rows: Sequence[SigningKeyRow]) -> list[SigningKeyRow]:
        kids = set(self._database.unopenable(rows))
        return [row for row in rows if row.kid in kids]

    def _mismatch(self, bad: list[SigningKeyRow]) -> KEKMismatch:
        kek = self._database.kek
        return KEKMismatch(
            [r.kid for r in bad],
            kek.source if kek else "a configuration without a KEK",
            [r.kek_id for r in bad],
        )

    def _write(
        self,
        step: Callable[[list[KeyRecord], float, Callable[[str], str]], list[Transition]],
    ) -> list[Transition]:
        created: dict[str, SigningKeyRow] = {}
        after_commit: list[Callable[[], None]] = []
        with write_transaction(self.engine, KEYS_LOCK_ID) as conn, _session(conn) as session:
            now = self._clock()
            rows = {r.kid: r for r in session.scalars(select(SigningKeyRow))}
            self._check_openable(list(rows.values()))
            self._bind_installation(conn)
            for store in self._stores():
                store.finish_erasures(rows.values())
            records = [_record(row) for row in rows.values()]

            def new_kid(alg: str) -> str:
                row = self._new_keys.generate(alg, now)
                created[row.kid] = row
                return row.kid

            transitions = step(records, now, new_kid)
            # Issue 12 item 6: a pending key's window starts when a server first serves it.
            marked = self._publishes and mark_published(records, self.policy, now)
            if not transitions and not marked:
                # Another replica may have done it first: pick up its result.
                stale = self._snapshot is None or (
                    self._snapshot.generation != self._generation(conn)
                )
                return self._reload_if(stale)
            # The unique indexes (one active, one pending per algorithm) are checked row by
            # row, so leave a state before entering it: retire before activating, promote the
            # pending key before inserting the next one.
            for phase in ({RETIRED, REMOVED, REVOKED}, {ACTIVE}, {PENDING}):
                for record in records:
                    if record.state not in phase:
                        continue
                    row = rows.get(record.kid) or created[record.kid]
                    for name in _LIFECYCLE_FIELDS:
                        setattr(row, name, getattr(record, name))
                    if record.state in (REMOVED, REVOKED) and (row.private_enc or row.hsm_ref):
                        then = self._store_of(row).erase(row)
                        if then is not None:
                            after_commit.append(then)
                    if record.kid in created:
                        session.add(row)
                session.flush()
            session.add_all(
                KeyEventRow(
                    kid=t.kid,
                    alg=t.alg,
                    from_state=t.from_state,
                    to_state=t.to_state,
                    at=t.at,
                    actor=self._actor,
                    reason=t.reason,
                )
                for t in transitions
            )
            self._bump(session)
            session.commit()
        # Committed. Destroying token objects is irreversible, so it only happens now; if this
        # process dies first, the next write redoes it (HSMKeyStore.finish_erasures).
        for then in after_commit:
            then()
        for t in transitions:
            log.info(
                "signing key %s (%s): %s -> %s%s",
                t.kid,
                t.alg,
                t.from_state or "new",
                t.to_state,
                f" ({t.reason})" if t.reason else "",
            )
        self._load()
        return transitions

    def _reload_if(self, stale: bool) -> list[Transition]:
        if stale:
            self._load()
        return []

    def _load(self) -> None:
        """Read every key and rebuild signers and the JWKS document.

        A key this process cannot open (a KEK it lacks) raises :class:`KEKMismatch`, but only
        after the new snapshot is in place: a revoked or removed key must leave the signers and
        the JWKS even when its replacement cannot be opened here (issue 10: revocation wins
        over availability); that algorithm then has no signer, and the server answers 503.
        """
        with self._load_lock:
            with self.engine.connect() as conn, conn.begin():
                generation = self._generation(conn)
                with Session(bind=conn) as session:
                    rows = list(
                        session.scalars(select(SigningKeyRow).order_by(SigningKeyRow.created_at))
                    )
                    bad = self._unopenable(rows)
                    snapshot = self._build(generation, rows, {r.kid for r in bad})
            self._snapshot = snapshot
        if bad:
            raise self._mismatch(bad)

    def _build(self, generation: int, rows: list[SigningKeyRow], unopenable: set[str]) -> _Snapshot:
        old = self._snapshot
        signers: dict[str, Signer] = {}
        unusable: dict[str, str] = {}
        for row in rows:
            if row.state != ACTIVE:
                continue
            previous = old.signers.get(row.alg) if old is not None else None
            if previous is not None and previous.kid == row.kid:
                signers[row.alg] = previous
                continue
            if row.kid in unopenable:
                unusable[row.alg] = (
                    f"the active key {row.kid} is encrypted under KEK id {row.kek_id}, "
                    "which this process does not have (SEALRING_KEK / SEALRING_KEK_FILE)"
                )
                continue
            signers[row.alg] = self._store_of(row).open_signer(row)
        document = _jwks_document(rows, self.policy.jwks_max_age)
        if old is not None and old.jwks.body == document.body:
            document = old.jwks
        records = tuple(_record(r) for r in rows)
        due = next_due(records, self.policy)
        return _Snapshot(generation, signers, document, records, _infos(rows), due, unusable)


@dataclass(frozen=True)
class HSMCleanup:
    """What :meth:`KeyManager.gc_hsm` found (and, when ``deleted``, destroyed)."""

    installation: str
    orphans: list[HSMObject]
    others: int  # prefixed objects of other installations (or unknown), never touched
    deleted: bool


def stored_keys(
    engine: Engine, policy: RotationPolicy, *, kek: KEKRing | None = None
) -> tuple[list[KeyInfo], JWKSDocument]:
    """The stored keys and the JWK Set they publish, read without writing anything: no
    migration, no schedule, no HSM session (``sealring keys list``, ``export-public``).

    With ``kek``, also check that it opens every published database key (reads only) and raise
    :class:`KEKMismatch` naming those it cannot, as a start would.
    """
    with engine.connect() as conn, conn.begin(), Session(bind=conn) as session:
        rows = list(session.scalars(select(SigningKeyRow).order_by(SigningKeyRow.created_at)))
    if kek is not None:
        bad = DatabaseKeyStore(kek).unopenable(rows)
        if bad:
            kek_ids = [r.kek_id for r in rows if r.kid in bad]
            raise KEKMismatch(bad, kek.source, kek_ids)
    return list(_infos(rows)), _jwks_document(rows, policy.jwks_max_age)


def key_events(engine: Engine, kid: str | None = None) -> list[Transition]:
    """The audit trail (of ``kid``, or of every key), oldest first. Reads only."""
    query = select(KeyEventRow).order_by(KeyEventRow.id)
    if kid is not None:
        query = query.where(KeyEventRow.kid == kid)
    with Session(engine) as session:
        return [
            Transition(e.kid, e.alg, e.from_state, e.to_state, e.at, e.reason)
            for e in session.scalars(query)
        ]


def _infos(rows: Sequence[SigningKeyRow]) -> tuple[KeyInfo, ...]:
    return tuple(
        KeyInfo(
            kid=r.kid,
            alg=r.alg,
            backend=r.backend,
            **{name: getattr(r, name) for name in _LIFECYCLE_FIELDS},
        )
        for r in sorted(rows, key=lambda r: -r.created_at)
    )


def _jwks_document(rows: Sequence[SigningKeyRow], max_age: float) -> JWKSDocument:
    published = sorted(
        (r for r in rows if r.state in PUBLISHED),
        key=lambda r: (_STATE_ORDER.get(r.state, 2), r.alg, -r.created_at),
    )
    return JWKSDocument.build((json.loads(r.public_jwk) for r in published), max_age)


def _installation_id(conn: Connection) -> str:
    value = conn.execute(
        select(InstallationRow.installation_id).where(InstallationRow.id == 1)
    ).scalar_one_or_none()
    if value is None:
        raise KeyConfigError("this database has no installation id: migrate it first")
    return str(value)


def _record(row: SigningKeyRow) -> KeyRecord:
    return KeyRecord(
        kid=row.kid, alg=row.alg, **{name: getattr(row, name) for name in _LIFECYCLE_FIELDS}
    )


def _session(conn: Connection) -> Session:
    # Works in a SAVEPOINT of the caller's transaction: session.commit() releases it, and
    # committing the transaction itself is the caller's job.
    return Session(bind=conn, join_transaction_mode="create_savepoint", autoflush=False)


def _safe(exc: BaseException) -> str:
    """An error summary for logs: our own messages are safe; others only by type."""
    from sealring.errors import SealringError

    if isinstance(exc, SealringError):
        return f"{exc.code}: {exc.message}"
    return type(exc).__name__
