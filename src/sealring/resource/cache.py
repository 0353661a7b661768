"""A bounded cache of verified access tokens (the idea of Envoy's ``jwt_authn`` token cache).

Verifying a signature is the expensive part of accepting a token; a client sends the same token
with every request until it expires. The cache maps the *exact* token string to its verified
claims, so a hit proves the same bytes verified before. An entry:

* is valid while ``now < exp`` of the token, exactly: no leeway is added and none is taken off
  (after ``exp`` a request goes through full verification, which applies the configured leeway);
* is dropped when the key that verified it leaves its issuer's key set or is revoked;
* is evicted least-recently-used first once ``max_entries`` is reached.

Thread-safe; one lock guards an ``OrderedDict`` and a per-(issuer, kid) index.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["DEFAULT_CACHE_SIZE", "VerifiedTokenCache"]

#: Default number of tokens kept; at about 1 KiB per token and claims, about 10 MiB at most.
DEFAULT_CACHE_SIZE = 10_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    value: T
    expires_at: float
    issuer: str
    kid: str


class VerifiedTokenCache(Generic[T]):
    """An LRU of verified tokens, keyed on the token string, bounded by ``max_entries``."""

    def __init__(self, max_entries: int = DEFAULT_CACHE_SIZE) -> None:
        if not (isinstance(max_entries, int) and max_entries > 0):
            raise ValueError(f"max_entries must be a positive int, not {max_entries!r}")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._by_key: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> T | None:
        """The cached value while ``now < exp``; ``None`` (and the entry dropped) otherwise."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            if not now < entry.expires_at:  # a NaN clock is a miss, never a hit
                self._remove(token, entry)
                return None
            self._entries.move_to_end(token)
            return entry.value

    def put(
        self, token: str, value: T, *, expires_at: float, issuer: str, kid: str, now: float
    ) -> None:
        """Remember a token verified at ``now``; ignored if it is already expired."""
        if not now < expires_at:
            return
        with self._lock:
            old = self._entries.pop(token, None)
            if old is not None:
                self._unindex(token, old)
            self._entries[token] = _Entry(value, expires_at, issuer, kid)
            self._by_key.setdefault((issuer, kid), set()).add(token)
            while len(self._entries) > self.max_entries:
                oldest, entry = self._entries.popitem(last=False)
                self._unindex(oldest, entry)

    def evict_kid(self, issuer: str, kid: str) -> int:
        """Drop every token verified with ``kid`` of ``issuer``; returns how many."""
        with self._lock:
            tokens = self._by_key.pop((issuer, kid), set())
            for token in tokens:
                self._entries.pop(token, None)
            return len(tokens)

    def retain_kids(self, issuer: str, kids: Collection[str]) -> int:
        """Drop the tokens of ``issuer`` whose kid is not in ``kids`` (the new key set)."""
        with self._lock:
            gone = [key for key in self._by_key if key[0] == issuer and key[1] not in kids]
        return sum(self.evict_kid(issuer, kid) for _, kid in gone)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_key.clear()

    def _remove(self, token: str, entry: _Entry[T]) -> None:
        del self._entries[token]
        self._unindex(token, entry)

    def _unindex(self, token: str, entry: _Entry[T]) -> None:
        key = (entry.issuer, entry.kid)
        tokens = self._by_key.get(key)
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                del self._by_key[key]
