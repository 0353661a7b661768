"""The rotation schedule as pure functions over plain records: no I/O, no clock of its own.

A key is ``pending`` (published, not signing) for at least the pre-publication time, so every
resource server's cached JWKS (max-age) has picked it up before the first token it signs; it is
then ``active`` for the rotation interval; ``retired`` (published, not signing) for the
retention, so every token it signed expires while its key is still published; then ``removed``
(private material destroyed). ``revoked`` is the emergency exit from any published state.

:func:`advance` moves a set of records to where the schedule says they must be at ``now``; the
key manager runs it inside a serialised transaction and stores what it returns.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sealring.jose.algorithms import get_algorithm
from sealring.keys.errors import InvalidTransition, KeyConfigError

__all__ = [
    "ACTIVE",
    "ALLOWED",
    "DEFAULT_ALGORITHMS",
    "DEFAULT_MAX_TOKEN_LIFETIME",
    "DEFAULT_POLL_INTERVAL",
    "MIN_ROTATION_INTERVAL",
    "PENDING",
    "PUBLISHED",
    "REMOVED",
    "RETIRED",
    "REVOKED",
    "SUPPORTED_REFETCH_COOLDOWN",
    "KeyRecord",
    "RotationPolicy",
    "Transition",
    "activate_now",
    "advance",
    "create",
    "followable_prepublication",
    "mark_published",
    "move",
    "next_due",
    "unfollowable",
]

PENDING = "pending"
ACTIVE = "active"
RETIRED = "retired"
REMOVED = "removed"
REVOKED = "revoked"
PUBLISHED = frozenset({PENDING, ACTIVE, RETIRED})

# The state machine; None is "does not exist yet".
ALLOWED: dict[str | None, frozenset[str]] = {
    None: frozenset({PENDING, ACTIVE}),
    PENDING: frozenset({ACTIVE, REMOVED, REVOKED}),
    ACTIVE: frozenset({RETIRED, REVOKED}),
    RETIRED: frozenset({REMOVED, REVOKED}),
    REMOVED: frozenset(),
    REVOKED: frozenset(),
}

DEFAULT_ALGORITHMS = ("ES256", "RS256")
DEFAULT_MAX_TOKEN_LIFETIME = 3600.0

# How often each replica polls for changes unless configured (and never more than the policy's
# max_poll_interval allows).
DEFAULT_POLL_INTERVAL = 5.0

# The slowest key-set cache Sealring promises to follow (docs/keys.md, issue 12): a verifier that
# refetches the JWK Set for an unknown kid at most once per 30 s. node jose's createRemoteJWKSet
# (cooldownDuration 30 s) and Sealring's own JWKSClient (JWKSSettings.cooldown 30 s) both do.
SUPPORTED_REFETCH_COOLDOWN = 30.0
# Rotating faster than this is refused unless a test asks for it explicitly.
MIN_ROTATION_INTERVAL = 3600.0


@dataclass(frozen=True)
class RotationPolicy:
    """When keys rotate. Checked on construction; see docs/keys.md for why the defaults."""

    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    rotation_interval: float = 30 * 86400
    jwks_max_age: float = 300
    prepublication: float | None = None
    max_token_lifetime: float = DEFAULT_MAX_TOKEN_LIFETIME
    leeway: float = 60
    poll_interval: float | None = None  # None -> 5 s, lowered to max_poll_interval if needed

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise KeyConfigError("the rotation policy needs at least one algorithm")
        if len(set(self.algorithms)) != len(self.algorithms):
            raise KeyConfigError("the rotation policy lists an algorithm twice")
        for alg in self.algorithms:
            if get_algorithm(alg) is None:
                raise KeyConfigError(f"unsupported signing algorithm {alg!r}")
        for name in ("rotation_interval", "jwks_max_age", "max_token_lifetime", "leeway"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise KeyConfigError(f"{name} must be a finite number >= 0")
        if self.jwks_max_age < 1 or self.max_token_lifetime <= 0:
            raise KeyConfigError("jwks_max_age must be >= 1 s and max_token_lifetime > 0")
        if self.prepublication is not None and not (
            math.isfinite(self.prepublication) and self.prepublication >= 2 * self.jwks_max_age
        ):
            raise KeyConfigError(
                "prepublication must be at least twice jwks_max_age, so that every cached "
                "JWKS has seen a key before it signs"
            )
        if self.rotation_interval <= self.prepublication_time:
            raise KeyConfigError("rotation_interval must be longer than the pre-publication time")
        if self.poll_interval is not None and not (
            isinstance(self.poll_interval, int | float)
            and 0 < self.poll_interval <= self.max_poll_interval
        ):
            raise KeyConfigError(
                f"poll_interval must be > 0 and at most {self.max_poll_interval:g} s "
                "((prepublication - jwks_max_age) / 2), so that a pending key reaches every "
                "replica's JWKS, and every cache of it, before it signs"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RotationPolicy:
        """A policy from ``SEALRING_KEY_*`` / ``SEALRING_JWKS_MAX_AGE`` (unset: the default).

        ``SEALRING_KEY_ALGORITHMS`` (comma-separated), ``SEALRING_KEY_ROTATION_INTERVAL``,
        ``SEALRING_KEY_PREPUBLICATION``, ``SEALRING_JWKS_MAX_AGE``,
        ``SEALRING_KEY_MAX_TOKEN_LIFETIME``, ``SEALRING_KEY_LEEWAY``,
        ``SEALRING_KEY_POLL_INTERVAL`` (seconds). Also, as the server does:
        ``SEALRING_SIGNING_ALG`` is added to the algorithms, and ``SEALRING_TOKEN_LIFETIME``
        raises the max token lifetime when ``SEALRING_KEY_MAX_TOKEN_LIFETIME`` is unset.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, names in _ENV_NUMBERS.items():
            var = next((n for n in names if env.get(n)), None)
            if var is not None:
                values[name] = _seconds(env, var)
        # The server's own settings of the same things, read the way the server reads them, so
        # that a `sealring keys` command run beside a server applies the server's policy: a
        # signing algorithm missing here would be retired, a shorter lifetime would remove a
        # retired key while tokens it signed are still valid.
        algs = re.split(r"[\s,]+", env.get("SEALRING_KEY_ALGORITHMS", "").strip())
        algorithms = tuple(dict.fromkeys(a for a in algs if a)) or DEFAULT_ALGORITHMS
        signing_alg = env.get("SEALRING_SIGNING_ALG", "").strip()
        if signing_alg and signing_alg not in algorithms:
            algorithms = (*algorithms, signing_alg)
        if algorithms != DEFAULT_ALGORITHMS:
            values["algorithms"] = algorithms
        if "max_token_lifetime" not in values and env.get("SEALRING_TOKEN_LIFETIME"):
            lifetime = _seconds(env, "SEALRING_TOKEN_LIFETIME")
            values["max_token_lifetime"] = max(DEFAULT_MAX_TOKEN_LIFETIME, lifetime)
        return cls(**values)

    @property
    def prepublication_time(self) -> float:
        """How long a new key is published before it may sign."""
        return 2 * self.jwks_max_age if self.prepublication is None else self.prepublication

    @property
    def max_poll_interval(self) -> float:
        """The longest replica poll that keeps the promise across replicas.

        A replica serves the JWKS it loaded at its last poll, so a pending key reaches a resource
        server's cache up to ``poll + jwks_max_age`` after it was written, and must have by the
        time it signs: ``poll + jwks_max_age <= prepublication``. Half of that slack is kept for
        the poll's own query, the fetch and clock skew. The same bound keeps a replica that has
        not yet seen a retirement (and still signs with the retired key for up to one poll)
        within the retention, whose leeway + max-age exceeds it.
        """
        return (self.prepublication_time - self.jwks_max_age) / 2

    @property
    def poll_interval_time(self) -> float:
        """How often each replica polls the database for key changes."""
        if self.poll_interval is not None:
            return self.poll_interval
        return min(DEFAULT_POLL_INTERVAL, self.max_poll_interval)

    @property
    def retention(self) -> float:
        """How long a retired key stays published: every token it signed has expired by then."""
        return self.max_token_lifetime + self.leeway + self.jwks_max_age

    @property
    def max_published_keys(self) -> int:
        """The most keys the schedule ever publishes at once (manual rotations aside).

        Per algorithm: the active key, the pending one, and the retired keys still within their
        retention: one retires every rotation interval, so at most ``retention / interval + 1``.
        """
        retired = math.floor(self.retention / self.rotation_interval) + 1
        return len(self.algorithms) * (2 + retired)


def followable_prepublication(jwks_max_age: float) -> float:
    """The default pre-publication: twice max-age, and never less than a verifier with the
    supported refetch cooldown needs (:func:`unfollowable`), with a 10 s margin for the poll."""
    return max(2 * jwks_max_age, jwks_max_age + SUPPORTED_REFETCH_COOLDOWN + 10)


def unfollowable(policy: RotationPolicy) -> str | None:
    """Why resource servers that cache as node jose does could reject valid tokens; else None.

    A verifier that last fetched the JWK Set less than the cooldown before a new key signs will
    not refetch for the new kid, so that fetch must already have held the key: published on every
    replica (one poll) and through every HTTP cache (max-age) at least a cooldown before it signs.
    """
    needed = SUPPORTED_REFETCH_COOLDOWN + policy.jwks_max_age + policy.poll_interval_time
    if policy.prepublication_time < needed:
        return (
            f"pre-publication {policy.prepublication_time:g} s is shorter than the "
            f"{needed:g} s a verifier with a {SUPPORTED_REFETCH_COOLDOWN:g} s unknown-kid refetch "
            f"cooldown needs (cooldown + jwks_max_age + poll interval)"
        )
    if policy.rotation_interval < MIN_ROTATION_INTERVAL:
        return (
            f"rotation interval {policy.rotation_interval:g} s is under the minimum of "
            f"{MIN_ROTATION_INTERVAL:g} s"
        )
    return None


# The first name is ours; SEALRING_ROTATION_INTERVAL is the server settings' name for the same.
_ENV_NUMBERS = {
    "rotation_interval": ("SEALRING_KEY_ROTATION_INTERVAL", "SEALRING_ROTATION_INTERVAL"),
    "prepublication": ("SEALRING_KEY_PREPUBLICATION",),
    "jwks_max_age": ("SEALRING_JWKS_MAX_AGE",),
    "max_token_lifetime": ("SEALRING_KEY_MAX_TOKEN_LIFETIME",),
    "leeway": ("SEALRING_KEY_LEEWAY",),
    "poll_interval": ("SEALRING_KEY_POLL_INTERVAL",),
}


def _seconds(env: Mapping[str, str], var: str) -> float:
    try:
        return float(env[var])
    except ValueError:
        raise KeyConfigError(f"{var} must be a number of seconds") from None


@dataclass
class KeyRecord:
    """The lifecycle part of a stored key (no key material)."""

    kid: str
    alg: str
    state: str
    created_at: float
    # When a serving replica first published it (None: not yet; `sealring keys` publishes nothing).
    published_at: float | None = None
    activates_at: float | None = None
    activated_at: float | None = None
    retires_at: float | None = None
    retired_at: float | None = None
    removes_at: float | None = None
    removed_at: float | None = None
    revoked_at: float | None = None
    revoke_reason: str | None = field(default=None)


@dataclass(frozen=True)
class Transition:
    """One lifecycle step, as recorded in the audit table."""

    kid: str
    alg: str
    from_state: str | None
    to_state: str
    at: float
    reason: str | None = None


def move(record: KeyRecord, to: str, now: float, reason: str | None = None) -> Transition:
    """Apply one state-machine step to ``record`` and stamp it; refuses illegal steps."""
    if to not in ALLOWED[record.state]:
        raise InvalidTransition(f"key {record.kid} cannot go from {record.state} to {to}")
    step = Transition(record.kid, record.alg, record.state, to, now, reason)
    record.state = to
    if to == ACTIVE:
        record.activated_at = now
    elif to == RETIRED:
        record.retired_at = now
    elif to == REMOVED:
        record.removed_at = now
    elif to == REVOKED:
        record.revoked_at = now
        record.revoke_reason = reason
    return step


def create(
    records: list[KeyRecord], kid: str, alg: str, now: float, activates_at: float
) -> tuple[KeyRecord, Transition]:
    record = KeyRecord(kid=kid, alg=alg, state=PENDING, created_at=now, activates_at=activates_at)
    records.append(record)
    return record, Transition(kid, alg, None, PENDING, now, None)


def _activate(
    records: list[KeyRecord], new: KeyRecord, policy: RotationPolicy, now: float, why: str
) -> list[Transition]:
    steps = []
    for old in records:
        if old.alg == new.alg and old.state == ACTIVE:
            old.removes_at = now + policy.retention
            steps.append(move(old, RETIRED, now, f"superseded by {new.kid}"))
    steps.append(move(new, ACTIVE, now, why))
    new.retires_at = now + policy.rotation_interval
    return steps


def activate_now(
    records: list[KeyRecord], record: KeyRecord, policy: RotationPolicy, now: float, why: str
) -> list[Transition]:
    """Activate ``record`` at once, retiring its algorithm's active key (``rotate --immediately``)."""
    return _activate(records, record, policy, now, why)


def mark_published(records: Iterable[KeyRecord], policy: RotationPolicy, now: float) -> bool:
    """A serving replica publishes every pending key it holds: the first time, stamp it and
    push its activation to a full pre-publication from now. True when something changed."""
    changed = False
    for record in records:
        if record.state == PENDING and record.published_at is None:
            record.published_at = now
            earliest = now + policy.prepublication_time
            record.activates_at = max(record.activates_at or earliest, earliest)
            changed = True
    return changed


def _of(records: Iterable[KeyRecord], alg: str, state: str) -> KeyRecord | None:
    return next((r for r in records if r.alg == alg and r.state == state), None)


def _step(
    records: list[KeyRecord],
    alg: str,
    policy: RotationPolicy,
    now: float,
    new_kid: Callable[[str], str],
) -> list[Transition]:
    active, pending = _of(records, alg, ACTIVE), _of(records, alg, PENDING)
    if active is None:
        # Nothing can sign: availability first. A first key has nothing to be pre-published
        # against; after a revocation the pending key (already published) is promoted early.
        if pending is None:
            pending, created = create(records, new_kid(alg), alg, now, now)
            return [created, *_activate(records, pending, policy, now, "no active key")]
        return _activate(records, pending, policy, now, "no active key")
    if pending is not None:
        # Never a key no server has published yet: its pre-publication has not started.
        due = pending.activates_at is not None and now >= pending.activates_at
        if due and pending.published_at is not None:
            return _activate(records, pending, policy, now, "scheduled rotation")
        return []
    retires_at = active.retires_at if active.retires_at is not None else now
    if now >= retires_at - policy.prepublication_time:
        activates_at = max(retires_at, now + policy.prepublication_time)
        return [create(records, new_kid(alg), alg, now, activates_at)[1]]
    return []


def advance(
    records: list[KeyRecord],
    policy: RotationPolicy,
    now: float,
    new_kid: Callable[[str], str],
) -> list[Transition]:
    """Bring ``records`` (mutated in place) up to ``now``; return the transitions made.

    ``new_kid(alg)`` makes a new key of ``alg`` and returns its kid; new records are appended.
    """
    steps: list[Transition] = []
    for alg in policy.algorithms:
        for _ in range(4):  # each pass either settles or makes progress; 4 covers any jump
            made = _step(records, alg, policy, now, new_kid)
            if not made:
                break
            steps.extend(made)
    for record in records:
        if record.alg in policy.algorithms:
            continue
        if record.state == ACTIVE:
            record.removes_at = now + policy.retention
            steps.append(move(record, RETIRED, now, "algorithm no longer in the policy"))
        elif record.state == PENDING:
            steps.append(move(record, REMOVED, now, "algorithm no longer in the policy"))
    for record in records:
        if record.state == RETIRED and record.removes_at is not None and now >= record.removes_at:
            steps.append(move(record, REMOVED, now, "retention over"))
    return steps


def next_due(records: Iterable[KeyRecord], policy: RotationPolicy) -> float:
    """The earliest instant at which :func:`advance` would change something (inf if never)."""
    due = math.inf
    records = list(records)
    for alg in policy.algorithms:
        active, pending = _of(records, alg, ACTIVE), _of(records, alg, PENDING)
        if active is None:
            return -math.inf
        if pending is not None and pending.published_at is None:
            return -math.inf  # a serving replica publishes it now; elsewhere nothing is due
        if pending is not None:
            due = min(due, pending.activates_at if pending.activates_at is not None else -math.inf)
        else:
            retires_at = active.retires_at if active.retires_at is not None else -math.inf
            due = min(due, retires_at - policy.prepublication_time)
    for record in records:
        if record.alg not in policy.algorithms and record.state in (ACTIVE, PENDING):
            return -math.inf
        if record.state == RETIRED and record.removes_at is not None:
            due = min(due, record.removes_at)
    return due
