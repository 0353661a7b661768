"""A bounded cache of verified access tokens (the idea of Envoy's ``jwt_authn`` token cache).

Verifying a signature is the expensive part of accepting a token; a client sends the same token
with every request until it expires. The cache maps the *exact* token (its ASCII bytes) to its
verified claims, so a hit proves the same bytes verified before. An entry:

* is valid while ``now < exp`` of the token, exactly: no leeway is added and none is taken off
  (after ``exp`` a request goes through full verification, which applies the configured leeway);
* is dropped when the key that verified it leaves its issuer's key set or is revoked;
* is evicted least-recently-used first once ``max_entries`` entries or ``max_bytes`` of estimated
  memory are reached (a token too large for ``max_bytes`` on its own is not cached).

Keys are bytes so that an ASGI adapter can look up the raw ``Authorization`` header it was given
(``offset`` skips ``Bearer ``) without decoding or copying it. The dict is keyed on the token's
last :data:`KEY_CHARS` bytes (inside the signature), and a hit compares the whole token: equality
is a ``memcmp``, cheaper than hashing the whole fresh token for every lookup. The tail is as
unique as the signatures are; two tokens that share one only take turns in the cache, and since
entries are put only after a successful verification, nobody without a trusted key can push one
out.

Thread-safe. Writers (``put``, evictions) hold one lock over an ``OrderedDict`` and a
per-(issuer, kid) index. A hit takes no lock: it is one dict read of an immutable entry and a
``move_to_end``, each a single operation under the GIL, and the only race (another thread evicted
the entry in between) is caught and answered as the miss it has become: a hit is the hot path of
every protected request. The costs that led here are in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_CACHE_SIZE",
    "KEY_CHARS",
    "VerifiedTokenCache",
    "entry_cost",
]

#: Default number of tokens kept: about 25 MB with 450-byte tokens (the memory per entry is in
#: docs/benchmarks.md, "Verified-token cache memory").
DEFAULT_CACHE_SIZE = 10_000
#: Default bound on the entries' estimated memory (:func:`entry_cost`), whichever bound is
#: reached first: it only binds when tokens are large (16 KiB tokens: about 1,000 entries).
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024

#: How many bytes of the token's end the dict hashes; the whole token is compared on a hit.
KEY_CHARS = 32

_T = TypeVar("_T")


def entry_cost(token: bytes) -> int:
    """The estimated memory of a cached token and its verified claims, in bytes.

    Four times the token plus a fixed part, fitted to the measured cost of an entry (its bytes,
    the decoded claims dict, the claims object and the cache's own records; docs/benchmarks.md).
    """
    return 4 * len(token) + 600


@dataclass(frozen=True, slots=True)
class _Entry(Generic[_T]):
    token: bytes
    value: _T
    expires_at: float
    issuer: str
    kid: str


class VerifiedTokenCache(Generic[_T]):
    """An LRU of verified tokens, keyed on the token, bounded by ``max_entries`` and by
    ``max_bytes`` of estimated memory (:func:`entry_cost`), whichever is reached first."""

    def __init__(
        self, max_entries: int = DEFAULT_CACHE_SIZE, max_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        if not (isinstance(max_entries, int) and max_entries > 0):
            raise ValueError(f"max_entries must be a positive int, not {max_entries!r}")
        if not (isinstance(max_bytes, int) and max_bytes > 0):
            raise ValueError(f"max_bytes must be a positive int, not {max_bytes!r}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[bytes, _Entry[_T]] = OrderedDict()
        # (issuer, kid) -> the dict keys of the tokens it verified
        self._by_key: dict[tuple[str, str], set[bytes]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def estimated_bytes(self) -> int:
        """The estimated memory of the entries held now (:func:`entry_cost` summed)."""
        return self._bytes

    def get(self, token: bytes, now: float, offset: int = 0) -> _T | None:
        """The cached value of ``token[offset:]`` while ``now < exp``; ``None`` otherwise.

        An expired entry is dropped. ``offset`` lets a caller pass a buffer the token ends.
        """
        entries = self._entries
        size = len(token) - offset
        key = token[-KEY_CHARS:] if size >= KEY_CHARS else token[offset:]
        entry = entries.get(key)
        if entry is not None and now < entry.expires_at:
            if size == len(entry.token) and token.endswith(entry.token):
                try:
                    entries.move_to_end(key)
                except KeyError:  # evicted by another thread since the read: a miss
                    return None
                return entry.value
            return None
        if entry is None:
            return None
        # Expired, or a NaN clock (a miss, never a hit): drop it unless already replaced.
        with self._lock:
            if self._entries.get(key) is entry:
                self._remove(key, entry)
        return None

    def put(
        self, token: bytes, value: _T, *, expires_at: float, issuer: str, kid: str, now: float
    ) -> None:
        """Remember a token verified at ``now``; ignored if it is already expired."""
        if not now < expires_at or entry_cost(token) > self.max_bytes:
            return
        key = token[-KEY_CHARS:]
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._unindex(key, old)
            self._entries[key] = _Entry(token, value, expires_at, issuer, kid)
            self._by_key.setdefault((issuer, kid), set()).add(key)
            self._bytes += entry_cost(token)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                oldest, entry = self._entries.popitem(last=False)
                self._unindex(oldest, entry)

    def discard(self, token: bytes) -> bool:
        """Drop ``token``'s entry if there is one; returns whether there was."""
        key = token[-KEY_CHARS:]
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.token != token:
                return False
            self._remove(key, entry)
            return True

    def evict_kid(self, issuer: str, kid: str) -> int:
        """Drop every token verified with ``kid`` of ``issuer``; returns how many."""
        with self._lock:
            keys = self._by_key.pop((issuer, kid), set())
            for key in keys:
                entry = self._entries.pop(key, None)
                if entry is not None:
                    self._bytes -= entry_cost(entry.token)
            return len(keys)

    def retain_kids(self, issuer: str, kids: Collection[str]) -> int:
        """Drop the tokens of ``issuer`` whose kid is not in ``kids`` (the new key set)."""
        with self._lock:
            gone = [key for key in self._by_key if key[0] == issuer and key[1] not in kids]
        return sum(self.evict_kid(issuer, kid) for _, kid in gone)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_key.clear()
            self._bytes = 0

    def _remove(self, key: bytes, entry: _Entry[_T]) -> None:
        del self._entries[key]
        self._unindex(key, entry)

    def _unindex(self, key: bytes, entry: _Entry[_T]) -> None:
        """Forget a removed entry: its index record and its share of the byte count."""
        self._bytes -= entry_cost(entry.token)
        by_key = (entry.issuer, entry.kid)
        keys = self._by_key.get(by_key)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_key[by_key]
