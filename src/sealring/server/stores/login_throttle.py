"""Login throttling: exponential backoff per username and per client IP (issue 9, item 1).

Failed sign-ins are counted in the database (``oauth_login_throttle``), so every replica sees the
same count and a restart does not reset it.  Two counters are kept for each attempt:

- **per username**: stops guessing one account's password from many addresses.  It counts
  unknown usernames exactly like known ones, so the throttle itself tells nothing about which
  accounts exist.  A successful sign-in clears it.
- **per client IP** (an IPv6 address counts as its /64, which one host usually has whole): stops
  one source trying a few passwords on many accounts.  A success does not clear it, or one valid
  account would reset the counter for all the guessing around it.

After ``free_failures`` failures in a row a key is blocked for ``base_delay`` seconds, doubling
with each further failure up to ``max_delay``; ``forget_after`` seconds without a failure start
the count again.  The numbers are in :class:`ThrottlePolicy` and docs/login.md.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from sealring.errors import SealringError
from sealring.server.accounts import normalize_username
from sealring.server.stores._transactions import write_transaction
from sealring.server.stores.login_tables import LoginThrottleRow
from sealring.server.tokens.handles import HandleHasher, HandleKind

__all__ = ["LoginThrottle", "LoginThrottled", "ThrottlePolicy"]

_IPV6_PREFIX: Final = 64


class LoginThrottled(SealringError):
    """Too many failed sign-ins for this username or from this address; try after a pause."""

    code = "login_throttled"

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(f"too many failed sign-ins; try again in {seconds} s")
        self.retry_after = seconds


@dataclass(frozen=True)
class Limit:
    """Failures allowed before backoff starts, for one kind of key."""

    free_failures: int


@dataclass(frozen=True)
class ThrottlePolicy:
    username: Limit = Limit(free_failures=5)
    # Higher: an office or a mobile carrier puts many people behind one address.
    client_ip: Limit = Limit(free_failures=20)
    base_delay: float = 1.0
    max_delay: float = 900.0
    forget_after: float = 3600.0

    def __post_init__(self) -> None:
        if self.username.free_failures < 1 or self.client_ip.free_failures < 1:
            raise ValueError("free_failures must be at least 1")
        if not 0 < self.base_delay <= self.max_delay:
            raise ValueError("throttle delays: 0 < base_delay <= max_delay")
        if self.forget_after < self.max_delay:
            raise ValueError("forget_after must be at least max_delay")

    def delay(self, limit: Limit, failures: int) -> float:
        """Seconds a key is blocked after its ``failures``-th failure in a row."""
        over = failures - limit.free_failures
        if over < 0:
            return 0.0
        # Capped exponent: 2**over for a large count would be a huge float for nothing.
        return min(self.base_delay * 2.0 ** min(over, 64), self.max_delay)


def client_network(address: str) -> str:
    """The unit an address is counted by: the IPv4 address, or the IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # e.g. "unknown" behind a proxy that hid it: one shared bucket
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{_IPV6_PREFIX}", strict=False))
    return str(ip)


class LoginThrottle:
    def __init__(
        self, engine: Engine, hasher: HandleHasher, policy: ThrottlePolicy | None = None
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self.policy = policy or ThrottlePolicy()

    def _key(self, kind: str, value: str) -> bytes:
        return self._hasher.hash(HandleKind.LOGIN_THROTTLE, kind + "\0" + value)

    def _keys(self, username: str, client_ip: str) -> list[tuple[bytes, Limit]]:
        return [
            (self._key("user", normalize_username(username)), self.policy.username),
            (self._key("ip", client_network(client_ip)), self.policy.client_ip),
        ]

    def check(self, username: str, client_ip: str, *, now: float) -> None:
        """Raise :class:`LoginThrottled` if either key is blocked; call before the password check."""
        keys = [key for key, _ in self._keys(username, client_ip)]
        with self._engine.connect() as conn:
            blocked = conn.execute(
                select(LoginThrottleRow.blocked_until).where(
                    LoginThrottleRow.key_hash.in_(keys), LoginThrottleRow.blocked_until > now
                )
            ).scalars()
            wait = max((until - now for until in blocked), default=0.0)
        if wait > 0:
            raise LoginThrottled(wait)

    def failure(self, username: str, client_ip: str, *, now: float) -> float:
        """Count a failed sign-in; returns how long the longer of the two blocks now lasts."""
        wait = 0.0
        for key, limit in self._keys(username, client_ip):
            wait = max(wait, self._count(key, limit, now))
        return wait

    def _count(self, key: bytes, limit: Limit, now: float) -> float:
        for _ in range(2):  # a concurrent first insert turns ours into an update
            try:
                with write_transaction(self._engine) as conn:
                    row = conn.execute(
                        select(LoginThrottleRow.failures, LoginThrottleRow.last_failure_at)
                        .where(LoginThrottleRow.key_hash == key)
                        .with_for_update()
                    ).first()
                    fresh = row is None or now - row.last_failure_at > self.policy.forget_after
                    failures = 1 if fresh or row is None else row.failures + 1
                    delay = self.policy.delay(limit, failures)
                    values = {
                        "failures": failures,
                        "last_failure_at": now,
                        "blocked_until": now + delay,
                    }
                    if row is None:
                        conn.execute(insert(LoginThrottleRow).values(key_hash=key, **values))
                    else:
                        conn.execute(
                            update(LoginThrottleRow)
                            .where(LoginThrottleRow.key_hash == key)
                            .values(**values)
                        )
                return delay
            except IntegrityError:
                continue
        raise RuntimeError("login throttle row could not be written")  # pragma: no cover

    def success(self, username: str) -> None:
        """The password was right: clear the username's count (not the address's)."""
        key = self._key("user", normalize_username(username))
        with write_transaction(self._engine) as conn:
            conn.execute(delete(LoginThrottleRow).where(LoginThrottleRow.key_hash == key))

    def prune(self, now: float) -> int:
        """Delete counts nobody would look at again (older than ``forget_after``)."""
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                delete(LoginThrottleRow).where(
                    LoginThrottleRow.last_failure_at < now - self.policy.forget_after,
                    LoginThrottleRow.blocked_until <= now,
                )
            )
            return int(result.rowcount)
