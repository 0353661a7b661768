"""One blocking interface over :class:`JWKSClient` and :class:`AsyncJWKSClient`.

The two clients are hand-written twins over one policy; a test written once against this
interface runs against both (``open_client(kind, ...)`` with ``kind`` in :data:`CLIENT_KINDS`),
so the drivers cannot drift apart unnoticed. The async client runs on one event loop kept for
its whole life, as an application's would be.

A usable stale key set is refreshed in the background (a thread, a task). ``get_key_set`` here
waits for that refresh to end before it returns, so that a test reads the fetch counts and key
sets deterministically; ``get_key_set(kid, settle=False)`` returns as soon as the client does,
which is what the stale-while-revalidate tests measure, and ``settle()`` waits afterwards.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from sealring.jose.jwks import KeySet
from sealring.resource import AsyncJWKSClient, JWKSClient

CLIENT_KINDS = ("sync", "async")


class SyncDriver:
    """A :class:`JWKSClient` as it is: its methods already block."""

    kind = "sync"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.client = JWKSClient(*args, **kwargs)

    def get_key_set(self, kid: str | None = None, *, settle: bool = True) -> KeySet:
        try:
            return self.client.get_key_set(kid)
        finally:
            if settle:
                self.settle()

    def settle(self) -> None:
        """Wait for the background refresh, if one is running."""
        refresher = self.client._refresher
        if refresher is not None:
            refresher.join()

    def refreshing(self) -> bool:
        refresher = self.client._refresher
        return refresher is not None and refresher.is_alive()

    def refresh(self) -> KeySet:
        return self.client.refresh()

    def concurrently(self, count: int, kid: str | None = None) -> list[KeySet]:
        """``count`` threads released together, each asking for the key set."""
        barrier = threading.Barrier(count)
        results: list[KeySet] = []

        def worker() -> None:
            barrier.wait()
            results.append(self.client.get_key_set(kid))

        threads = [threading.Thread(target=worker) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def close(self) -> None:
        self.client.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)  # the I/O-free accessors are the same on both


class AsyncDriver:
    """An :class:`AsyncJWKSClient` driven on an event loop of its own."""

    kind = "async"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.client = AsyncJWKSClient(*args, **kwargs)
        self._runner = asyncio.Runner()
        self._closed = False

    def get_key_set(self, kid: str | None = None, *, settle: bool = True) -> KeySet:
        try:
            return self._runner.run(self.client.get_key_set(kid))
        finally:
            if settle:
                self.settle()

    def settle(self) -> None:
        """Run the loop until the background refresh task, if any, has ended."""
        refresher = self.client._refresher
        if refresher is not None and not refresher.done():
            self._runner.run(asyncio.wait([refresher]))

    def refreshing(self) -> bool:
        refresher = self.client._refresher
        return refresher is not None and not refresher.done()

    def refresh(self) -> KeySet:
        return self._runner.run(self.client.refresh())

    def concurrently(self, count: int, kid: str | None = None) -> list[KeySet]:
        """``count`` tasks gathered on the client's loop, each asking for the key set."""

        async def ask_all() -> list[KeySet]:
            return await asyncio.gather(*(self.client.get_key_set(kid) for _ in range(count)))

        return self._runner.run(ask_all())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.run(self.client.aclose())
        finally:
            self._runner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


Driver = SyncDriver | AsyncDriver
DRIVERS: dict[str, Callable[..., Driver]] = {"sync": SyncDriver, "async": AsyncDriver}


def open_client(kind: str, *args: Any, **kwargs: Any) -> Driver:
    """A JWKS client of ``kind`` (``"sync"`` or ``"async"``); the caller closes it."""
    return DRIVERS[kind](*args, **kwargs)
