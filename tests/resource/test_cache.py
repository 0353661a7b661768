"""VerifiedTokenCache (resource/cache.py): keyed on the token's tail, bounded by count and bytes,
valid until exp, evicted with its kid; reads take no lock."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealring.resource.cache import KEY_CHARS, VerifiedTokenCache, entry_cost


def _check_invariants(cache: VerifiedTokenCache[Any]) -> None:
    """The byte count is the sum of the entries' costs; the index names exactly the entries."""
    entries = dict(cache._entries)
    assert cache.estimated_bytes == sum(entry_cost(e.token) for e in entries.values())
    assert cache.estimated_bytes <= cache.max_bytes
    assert len(entries) <= cache.max_entries
    indexed = {key: by for by, keys in cache._by_key.items() for key in keys}
    assert sum(len(keys) for keys in cache._by_key.values()) == len(indexed)  # one set per key
    assert all(keys for keys in cache._by_key.values())  # no empty sets left behind
    assert indexed == {key: (e.issuer, e.kid) for key, e in entries.items()}
    assert all(key == e.token[-KEY_CHARS:] for key, e in entries.items())


def test_cache_lru_bound() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(3)
    for i in range(5):
        cache.put(f"t{i}", i, expires_at=100, issuer="i", kid="k", now=0)
    assert len(cache) == 3
    assert cache.get("t0", 0) is None
    assert cache.get("t2", 0) == 2
    cache.put("t5", 5, expires_at=100, issuer="i", kid="k2", now=0)
    assert cache.get("t3", 0) is None  # t2 was used more recently than t3
    assert cache.retain_kids("i", ["k2"]) == 2
    assert len(cache) == 1
    cache.put("old", 1, expires_at=10, issuer="i", kid="k", now=10)
    assert cache.get("old", 0) is None
    with pytest.raises(ValueError):
        VerifiedTokenCache(0)


def test_tokens_sharing_a_tail_never_answer_for_each_other() -> None:
    cache: VerifiedTokenCache[str] = VerifiedTokenCache(10)
    tail = b"T" * KEY_CHARS
    a, b = b"header-a." + tail, b"header-bb." + tail
    cache.put(a, "claims of a", expires_at=100, issuer="i", kid="k", now=0)
    assert cache.get(a, 0) == "claims of a"
    assert cache.get(b, 0) is None
    assert cache.get(b"Bearer " + b, 0, 7) is None
    assert cache.get(b"Bearer " + a, 0, 7) == "claims of a"
    assert cache.get(b"Bearer x" + a, 0, 7) is None  # same tail, one byte longer
    cache.put(b, "claims of b", expires_at=100, issuer="i", kid="k2", now=0)
    assert cache.get(a, 0) is None  # they take turns
    assert cache.get(b, 0) == "claims of b"
    assert len(cache) == 1
    assert cache.retain_kids("i", ["k"]) == 1
    assert len(cache) == 0


def test_short_tokens_are_keyed_whole() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    cache.put(b"short", 1, expires_at=100, issuer="i", kid="k", now=0)
    assert cache.get(b"short", 0) == 1
    assert cache.get(b"Bearer short", 0, 7) == 1
    assert cache.get(b"Bearer xshort", 0, 7) is None
    assert cache.get(b"hort", 0) is None


def test_expired_entry_is_dropped_by_either_lookup() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    token = b"x" * 100
    cache.put(token, 1, expires_at=100, issuer="i", kid="k", now=0)
    assert cache.get(b"Bearer " + token, 99.999, 7) == 1
    assert cache.get(b"Bearer " + token, 100, 7) is None
    assert len(cache) == 0
    cache.put(token, 1, expires_at=100, issuer="i", kid="k", now=0)
    assert cache.get(token, float("nan")) is None  # a NaN clock is a miss, never a hit
    assert len(cache) == 0


def test_byte_budget_bounds_large_tokens() -> None:
    big = entry_cost(b"x" * 16384)
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(max_entries=1000, max_bytes=10 * big)
    for i in range(25):
        cache.put(b"x" * 16379 + b"%05d" % i, i, expires_at=100, issuer="i", kid="k", now=0)
    assert len(cache) == 10
    assert cache.estimated_bytes == 10 * big
    assert cache.get(b"x" * 16379 + b"%05d" % 24, 0) == 24  # the newest stay
    assert cache.get(b"x" * 16379 + b"%05d" % 14, 0) is None
    # Small tokens fill by count as before; every removal path gives its bytes back.
    small = b"s" * 100
    cache.put(small, 1, expires_at=100, issuer="i", kid="small", now=0)
    assert cache.estimated_bytes <= 10 * big
    assert cache.evict_kid("i", "small") == 1
    cache.put(small, 1, expires_at=10, issuer="i", kid="small", now=0)
    assert cache.get(small, 10) is None  # expired: dropped
    held = len(cache)
    assert held == 9  # one large entry made room for the small one
    assert cache.retain_kids("i", []) == held
    assert cache.estimated_bytes == 0
    assert len(cache) == 0
    # A token too large for the whole budget is not cached (and evicts nothing).
    cache.put(small, 1, expires_at=100, issuer="i", kid="k", now=0)
    tiny: VerifiedTokenCache[int] = VerifiedTokenCache(max_bytes=entry_cost(small))
    tiny.put(small, 1, expires_at=100, issuer="i", kid="k", now=0)
    tiny.put(small + b"!", 2, expires_at=100, issuer="i", kid="k", now=0)
    assert tiny.get(small, 0) == 1
    assert len(tiny) == 1
    with pytest.raises(ValueError, match="max_bytes"):
        VerifiedTokenCache(max_bytes=0)


def test_cache_discard() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    token = b"t" * 40
    cache.put(token, 1, expires_at=100, issuer="i", kid="k", now=0)
    assert not cache.discard(b"u" + token[1:])  # same tail, other token: untouched
    assert cache.get(token, 0) == 1
    assert cache.discard(token)
    assert not cache.discard(token)
    assert cache.get(token, 0) is None
    assert cache.estimated_bytes == 0


def test_byte_count_holds_on_every_removal_path() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(max_entries=3, max_bytes=10_000)
    tail = b"T" * KEY_CHARS
    a, b = b"a." + tail, b"bb." + tail
    cache.put(a, 1, expires_at=100, issuer="i", kid="ka", now=0)
    cache.put(a, 2, expires_at=100, issuer="i", kid="ka", now=0)  # the same token again
    _check_invariants(cache)
    cache.put(b, 3, expires_at=100, issuer="i", kid="kb", now=0)  # replaces a (shared tail)
    _check_invariants(cache)
    assert cache.evict_kid("i", "ka") == 0  # a's index record went with it
    assert cache.estimated_bytes == entry_cost(b)
    assert cache.get(b, 100) is None  # expired on a lookup
    _check_invariants(cache)
    assert cache.estimated_bytes == 0
    cache.put(b, 3, expires_at=100, issuer="i", kid="kb", now=0)
    cache.put(b"x" * 2000, 4, expires_at=100, issuer="j", kid="kb", now=0)  # byte-evicts
    cache.put(b"y" * 2000, 5, expires_at=100, issuer="j", kid="kb", now=0)
    _check_invariants(cache)
    assert cache.retain_kids("j", []) == 1
    _check_invariants(cache)
    cache.put(b"z" * 10, 6, expires_at=100, issuer="j", kid="kz", now=0)
    assert cache.get(b"z" * 10, float("nan")) is None  # dropped on a NaN clock
    _check_invariants(cache)
    cache.put(b"z" * 10, 6, expires_at=100, issuer="j", kid="kz", now=0)
    cache.clear()
    _check_invariants(cache)
    assert cache.estimated_bytes == 0


_TAIL = b"S" * KEY_CHARS


_TOKENS = [
    b"h1." + _TAIL,
    b"h22." + _TAIL,
    b"h333." + _TAIL,
    b"short",
    b"sh",
    b"p" * 300 + b"1" * KEY_CHARS,
    b"p" * 300 + b"2" * KEY_CHARS,
    b"L" * 900,
    b"M" * 2500,
]


_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("put"),
            st.integers(0, len(_TOKENS) - 1),
            st.sampled_from(["a", "b", "c"]),
            st.integers(0, 20),
        ),
        st.tuples(st.just("get"), st.integers(0, len(_TOKENS) - 1), st.booleans()),
        st.tuples(st.just("evict"), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("retain"), st.sets(st.sampled_from(["a", "b", "c"]))),
        st.tuples(st.just("tick"), st.integers(1, 5)),
        st.tuples(st.just("clear")),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=_OPS, max_entries=st.integers(1, 5), max_bytes=st.integers(600, 12_000))
def test_random_operations_keep_the_cache_sound(
    ops: list[tuple[Any, ...]], max_entries: int, max_bytes: int
) -> None:
    """A hit only ever returns the value last put for exactly those bytes, still valid and
    not evicted by its kid; the byte count and index stay exact whatever the sequence."""
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(max_entries, max_bytes)
    alive: dict[bytes, tuple[int, float, str]] = {}
    now, serial = 0.0, 0
    for op in ops:
        if op[0] == "put":
            token, kid, lifetime = _TOKENS[op[1]], op[2], op[3]
            serial += 1
            cache.put(token, serial, expires_at=now + lifetime, issuer="i", kid=kid, now=now)
            if lifetime > 0 and entry_cost(token) <= max_bytes:
                alive[token] = (serial, now + lifetime, kid)
        elif op[0] == "get":
            token = _TOKENS[op[1]]
            got = cache.get(b"Bearer " + token, now, 7) if op[2] else cache.get(token, now)
            if got is not None:
                assert token in alive
                value, expires_at, _ = alive[token]
                assert got == value
                assert now < expires_at
        elif op[0] == "evict":
            cache.evict_kid("i", op[1])
            alive = {t: v for t, v in alive.items() if v[2] != op[1]}
        elif op[0] == "retain":
            cache.retain_kids("i", op[1])
            alive = {t: v for t, v in alive.items() if v[2] in op[1]}
        elif op[0] == "tick":
            now += op[1]
        else:
            cache.clear()
            alive.clear()
        _check_invariants(cache)


def test_concurrent_writers_and_lock_free_readers(fast_switching: None) -> None:
    """Readers never get another token's value; the counts are exact once the writers stop."""
    cache: VerifiedTokenCache[bytes] = VerifiedTokenCache(max_entries=8, max_bytes=20_000)
    tokens = [b"%03d." % i + _TAIL for i in range(6)] + [b"t%02d" % i * 20 for i in range(10)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(body: Any) -> None:
        try:
            rng = random.Random()
            while not stop.is_set():
                body(rng)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def reader(rng: random.Random) -> None:
        token = rng.choice(tokens)
        got = cache.get(b"Bearer " + token, 1.0, 7) if rng.random() < 0.5 else cache.get(token, 1.0)
        assert got is None or got == token

    def writer(rng: random.Random) -> None:
        token = rng.choice(tokens)
        kid = rng.choice("abc")
        cache.put(token, token, expires_at=rng.choice((1.0, 2.0)), issuer="i", kid=kid, now=0)

    def evictor(rng: random.Random) -> None:
        if rng.random() < 0.5:
            cache.evict_kid("i", rng.choice("abc"))
        else:
            cache.retain_kids("i", rng.sample("abc", 2))

    threads = [threading.Thread(target=run, args=(f,)) for f in (reader, reader, writer, evictor)]
    for thread in threads:
        thread.start()
    time.sleep(0.4)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    _check_invariants(cache)
