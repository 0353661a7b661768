"""Login throttling per username and per client IP, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from sealring.db import alembic_config, make_engine, upgrade
from sealring.server.stores.login_tables import LoginThrottleRow
from sealring.server.stores.login_throttle import (
    Limit,
    LoginThrottle,
    LoginThrottled,
    ThrottlePolicy,
    client_network,
)
from sealring.server.tokens.handles import HandleHasher

NOW = 1_800_000_000.0
HASHER = HandleHasher(b"t" * 32)
POLICY = ThrottlePolicy(
    username=Limit(free_failures=3),
    client_ip=Limit(free_failures=5),
    base_delay=2.0,
    max_delay=60.0,
    forget_after=600.0,
)


@pytest.fixture
def throttle(engine: Engine) -> LoginThrottle:
    return LoginThrottle(engine, HASHER, POLICY)


def blocked_for(throttle: LoginThrottle, username: str, ip: str, now: float) -> int:
    """Seconds the check asks to wait, 0 if it lets the attempt through."""
    try:
        throttle.check(username, ip, now=now)
    except LoginThrottled as exc:
        return exc.retry_after
    return 0


def test_backoff_doubles_and_is_capped() -> None:
    limit = Limit(free_failures=3)
    delays = [POLICY.delay(limit, n) for n in range(1, 10)]
    assert delays == [0, 0, 2, 4, 8, 16, 32, 60, 60]
    assert POLICY.delay(limit, 10_000) == 60
    with pytest.raises(ValueError):
        ThrottlePolicy(base_delay=0)
    with pytest.raises(ValueError):
        ThrottlePolicy(username=Limit(free_failures=0))


def test_the_smallest_policy_values_are_accepted() -> None:
    # One free failure per key, a sub-second delay, base == max and forget_after == max_delay.
    ThrottlePolicy(Limit(1), Limit(1), base_delay=0.5, max_delay=0.5, forget_after=0.5)
    with pytest.raises(ValueError):
        ThrottlePolicy(client_ip=Limit(free_failures=0))
    with pytest.raises(ValueError):
        ThrottlePolicy(base_delay=2.0, max_delay=1.0, forget_after=10.0)
    with pytest.raises(ValueError):
        ThrottlePolicy(max_delay=10.0, forget_after=9.5)


def test_username_is_blocked_from_any_address(throttle: LoginThrottle) -> None:
    for i in range(2):
        assert throttle.failure("alice", f"192.0.2.{i}", now=NOW) == 0
        assert blocked_for(throttle, "alice", "198.51.100.9", NOW) == 0
    assert throttle.failure("Alice", "192.0.2.7", now=NOW) == 2  # the name is normalised
    assert blocked_for(throttle, "ALICE", "198.51.100.9", NOW + 1) == 1
    assert blocked_for(throttle, "bob", "198.51.100.9", NOW + 1) == 0
    assert blocked_for(throttle, "alice", "198.51.100.9", NOW + 2) == 0  # the pause is over
    assert throttle.failure("alice", "192.0.2.8", now=NOW + 2) == 4
    with pytest.raises(LoginThrottled, match="try again in 4 s"):
        throttle.check("alice", "203.0.113.1", now=NOW + 2)


def test_unknown_and_known_usernames_are_throttled_alike(throttle: LoginThrottle) -> None:
    # The throttle never looks at accounts: a name nobody has is counted like any other.
    for _ in range(3):
        throttle.failure("no-such-user", "192.0.2.1", now=NOW)
        throttle.failure("alice", "192.0.2.2", now=NOW)
    assert blocked_for(throttle, "no-such-user", "198.51.100.1", NOW) == 2
    assert blocked_for(throttle, "alice", "198.51.100.1", NOW) == 2


def test_address_is_blocked_across_usernames(throttle: LoginThrottle) -> None:
    for i in range(5):
        throttle.failure(f"user{i}", "192.0.2.1", now=NOW)
    assert blocked_for(throttle, "someone-else", "192.0.2.1", NOW) == 2
    assert blocked_for(throttle, "someone-else", "192.0.2.2", NOW) == 0


def test_ipv6_counts_per_64(throttle: LoginThrottle) -> None:
    assert client_network("2001:db8:1:2::5") == "2001:db8:1:2::/64"
    assert client_network("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_network("unknown") == "unknown"
    for i in range(5):
        throttle.failure(f"user{i}", f"2001:db8:1:2::{i + 1:x}", now=NOW)
    assert blocked_for(throttle, "x", "2001:db8:1:2:ffff::1", NOW) == 2
    assert blocked_for(throttle, "x", "2001:db8:1:3::1", NOW) == 0


def test_success_clears_the_username_not_the_address(throttle: LoginThrottle) -> None:
    for i in range(5):
        throttle.failure("alice" if i < 3 else f"user{i}", "192.0.2.1", now=NOW)
    throttle.success("Alice")
    assert blocked_for(throttle, "alice", "198.51.100.1", NOW) == 0
    assert blocked_for(throttle, "alice", "192.0.2.1", NOW) == 2
    # The username count starts again from one.
    assert throttle.failure("alice", "198.51.100.1", now=NOW + 10) == 0


def test_count_is_forgotten_after_a_quiet_period(throttle: LoginThrottle) -> None:
    for _ in range(3):
        throttle.failure("alice", "192.0.2.1", now=NOW)
    assert throttle.failure("alice", "192.0.2.1", now=NOW + 601) == 0
    assert throttle.prune(NOW + 601 + 601) == 2
    assert throttle.prune(NOW + 601 + 601) == 0


def test_a_failure_exactly_forget_after_later_still_counts(throttle: LoginThrottle) -> None:
    for _ in range(3):
        throttle.failure("alice", "192.0.2.1", now=NOW)
    # 600 s is not more than forget_after: the fourth failure in a row doubles the delay.
    assert throttle.failure("alice", "192.0.2.1", now=NOW + 600) == 4


def test_prune_keeps_a_recent_count_even_when_it_blocks_nothing(throttle: LoginThrottle) -> None:
    throttle.failure("alice", "192.0.2.1", now=NOW)
    assert throttle.prune(NOW + 10) == 0
    throttle.failure("alice", "192.0.2.1", now=NOW + 20)
    assert throttle.failure("alice", "192.0.2.1", now=NOW + 30) == 2  # the third in a row


def test_prune_forgets_a_count_only_after_forget_after(throttle: LoginThrottle) -> None:
    throttle.failure("alice", "192.0.2.1", now=NOW)
    assert throttle.prune(NOW + 600) == 0
    assert throttle.prune(NOW + 600.5) == 2  # the username's row and the address's


def test_prune_never_frees_a_key_still_blocked_after_a_policy_change(engine: Engine) -> None:
    # Blocked for 5000 s from the first failure (username, client IP, base, max, forget_after).
    strict = ThrottlePolicy(Limit(1), Limit(1), 5000.0, 5000.0, 5000.0)
    assert LoginThrottle(engine, HASHER, strict).failure("alice", "192.0.2.1", now=NOW) == 5000
    relaxed = LoginThrottle(engine, HASHER, POLICY)  # forget_after 600 s
    assert relaxed.prune(NOW + 1000) == 0
    assert blocked_for(relaxed, "alice", "198.51.100.1", NOW + 1000) == 4000
    assert relaxed.prune(NOW + 5000) == 2  # blocked until exactly now: free, and long forgotten


def test_replicas_share_the_count(database_url: str, engine: Engine) -> None:
    other = make_engine(database_url)  # a second process's engine on the same database
    try:
        replica = LoginThrottle(other, HASHER, POLICY)
        local = LoginThrottle(engine, HASHER, POLICY)
        local.failure("alice", "192.0.2.1", now=NOW)
        replica.failure("alice", "192.0.2.2", now=NOW)
        local.failure("alice", "192.0.2.3", now=NOW)
        assert blocked_for(replica, "alice", "192.0.2.4", NOW) == 2
    finally:
        other.dispose()


def test_concurrent_failures_are_all_counted(engine: Engine, throttle: LoginThrottle) -> None:
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def fail_once() -> None:
        barrier.wait()
        try:
            throttle.failure("alice", "192.0.2.1", now=NOW)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=fail_once) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with Session(engine) as session:
        counts = sorted(session.scalars(select(LoginThrottleRow.failures)))
    assert counts == [8, 8]


def test_downgrade_removes_only_the_throttle_table(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0005_key_published_at")
    names = set(inspect(engine).get_table_names())
    assert "oauth_login_throttle" not in names
    assert "oauth_accounts" in names
    upgrade(engine)
    assert "oauth_login_throttle" in set(inspect(engine).get_table_names())
