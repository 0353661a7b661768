"""The verified-token cache's bounds at their edge: entries, bytes, expiry and the key length.

``max_entries`` and ``max_bytes`` hold exactly (the last fitting entry stays, one more evicts the
least recently used), an entry lives while ``now < exp`` and not at ``exp``, and the byte count
goes back to zero as entries leave, whichever way they leave.
"""

from __future__ import annotations

import pytest

from sealring.resource.cache import (
    DEFAULT_CACHE_BYTES,
    DEFAULT_CACHE_SIZE,
    KEY_CHARS,
    VerifiedTokenCache,
    entry_cost,
)


def tok(i: int, size: int = 100) -> bytes:
    tail = f"{i:0{KEY_CHARS}d}".encode()
    return b"h" * (size - len(tail)) + tail


def put(cache: VerifiedTokenCache[int], token: bytes, value: int, kid: str = "k") -> None:
    cache.put(token, value, expires_at=100, issuer="i", kid=kid, now=0)


def test_cache_bounds_defaults() -> None:
    assert (DEFAULT_CACHE_SIZE, DEFAULT_CACHE_BYTES) == (10_000, 64 * 1024 * 1024)
    cache: VerifiedTokenCache[int] = VerifiedTokenCache()
    assert (cache.max_entries, cache.max_bytes) == (DEFAULT_CACHE_SIZE, DEFAULT_CACHE_BYTES)
    assert entry_cost(b"x" * 450) == 4 * 450 + 600


def test_max_entries_holds_at_its_value() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(3)
    for i in range(3):
        put(cache, tok(i), i)
    assert len(cache) == 3
    assert cache.get(tok(0), 1) == 0  # now the most recently used
    put(cache, tok(3), 3)
    assert len(cache) == 3
    assert cache.get(tok(1), 1) is None  # the least recently used went
    assert [cache.get(tok(i), 1) for i in (0, 2, 3)] == [0, 2, 3]


def test_max_bytes_holds_at_its_value() -> None:
    cost = entry_cost(tok(0))
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(100, max_bytes=2 * cost)
    put(cache, tok(0), 0)
    put(cache, tok(1), 1)
    assert (len(cache), cache.estimated_bytes) == (2, 2 * cost)
    put(cache, tok(2), 2)
    assert (len(cache), cache.estimated_bytes) == (2, 2 * cost)
    assert cache.get(tok(0), 1) is None


def test_a_token_costing_exactly_max_bytes_is_cached_and_one_byte_more_is_not() -> None:
    token = tok(0)
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10, max_bytes=entry_cost(token))
    put(cache, token, 1)
    assert cache.get(token, 1) == 1
    small: VerifiedTokenCache[int] = VerifiedTokenCache(10, max_bytes=entry_cost(token) - 1)
    put(small, token, 1)
    assert len(small) == 0
    assert small.estimated_bytes == 0


def test_an_entry_lives_until_exp_and_not_at_it() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    cache.put(tok(0), 1, expires_at=100, issuer="i", kid="k", now=99.5)
    assert cache.get(tok(0), 99.999) == 1
    assert cache.get(tok(0), 100) is None
    assert (len(cache), cache.estimated_bytes) == (0, 0)
    cache.put(tok(1), 1, expires_at=100, issuer="i", kid="k", now=100)
    assert len(cache) == 0  # already expired when verified


def test_the_byte_count_follows_every_removal() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    put(cache, tok(0), 0, kid="a")
    put(cache, tok(1), 1, kid="b")
    put(cache, tok(2), 2, kid="b")
    cost = entry_cost(tok(0))
    assert cache.estimated_bytes == 3 * cost
    put(cache, tok(2), 22, kid="b")  # replacing keeps one entry's cost
    assert cache.estimated_bytes == 3 * cost
    assert cache.discard(tok(0))
    assert not cache.discard(tok(0))
    assert cache.estimated_bytes == 2 * cost
    assert cache.evict_kid("i", "b") == 2
    assert cache.estimated_bytes == 0
    put(cache, tok(3), 3, kid="c")
    assert cache.retain_kids("i", ["c"]) == 0
    assert cache.retain_kids("other-issuer", []) == 0
    assert cache.retain_kids("i", []) == 1
    assert (len(cache), cache.estimated_bytes) == (0, 0)
    put(cache, tok(4), 4)
    cache.clear()
    assert (len(cache), cache.estimated_bytes) == (0, 0)


def test_discard_leaves_another_token_with_the_same_tail() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    put(cache, tok(0, 100), 0)
    assert not cache.discard(tok(0, 101))
    assert cache.get(tok(0, 100), 1) == 0


def test_a_token_of_exactly_key_chars_is_found_with_and_without_an_offset() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    token = tok(7, KEY_CHARS)
    put(cache, token, 7)
    assert cache.get(token, 1) == 7
    assert cache.get(b"Bearer " + token, 1, 7) == 7
    assert cache.get(token[1:], 1) is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, None])
def test_bounds_must_be_positive_ints(bad: object) -> None:
    with pytest.raises(ValueError):
        VerifiedTokenCache(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        VerifiedTokenCache(10, bad)  # type: ignore[arg-type]


def test_the_smallest_bounds_are_one_entry_and_one_byte() -> None:
    """1 is a positive int: a one-entry cache keeps the latest token, a one-byte one nothing."""
    single: VerifiedTokenCache[int] = VerifiedTokenCache(1)
    put(single, tok(1), 1)
    put(single, tok(2), 2)
    assert len(single) == 1
    assert single.get(tok(2), 1) == 2
    assert single.get(tok(1), 1) is None
    empty: VerifiedTokenCache[int] = VerifiedTokenCache(10, 1)
    put(empty, tok(1), 1)  # costs more than one byte: never cached, never an error
    assert len(empty) == 0
    assert empty.estimated_bytes == 0
