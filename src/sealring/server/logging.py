"""Structured JSON logs, one object per line, each with the request id of its request.

Only values chosen here are logged: method, path (never the query string), status, latency,
client id, error code.  Request bodies, headers, secrets, assertions and tokens never are.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
from collections import deque
from contextvars import ContextVar
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, TextIO

__all__ = [
    "AccessLog",
    "JsonFormatter",
    "access_log",
    "configure_logging",
    "logger",
    "new_request_id",
    "request_id",
]

logger = logging.getLogger("sealring.server")
request_id: ContextVar[str | None] = ContextVar("sealring_request_id", default=None)
_INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of msg with terminal colour codes
}


class _RequestIds:
    """Fresh request ids: 8 random octets in hex, drawn from a pool filled 4 KiB at a time.

    One ``getrandom`` call per 512 requests instead of one per request, which showed in a
    worker's profile on the JWKS under load (docs/benchmarks.md). The pool is the operating system's CSPRNG output, so an id says
    nothing about the next one; a forked worker starts with an empty pool of its own, or two
    workers would hand out the same ids.
    """

    SIZE = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> str:
        at = self._at
        if at + 8 > len(self._pool):
            self._pool = secrets.token_bytes(self.SIZE)
            at = 0
        self._at = at + 8
        return self._pool[at : at + 8].hex()

    def after_fork(self) -> None:
        self._pool = b""
        self._at = 0


_request_ids = _RequestIds()
os.register_at_fork(after_in_child=_request_ids.after_fork)


def new_request_id(incoming: str | None) -> str:
    """Keep a caller's well-formed ``X-Request-ID``; otherwise make one."""
    if incoming and _INCOMING_ID.fullmatch(incoming):
        return incoming
    return _request_ids.next()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: an exception message may quote input.
            out["error_type"] = record.exc_info[0].__name__
        return json.dumps(out, default=str, separators=(",", ":"))


def configure_logging(level: str = "info") -> None:
    """Send ``sealring.*``, the access log and the HTTP server's error log to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("sealring", "uvicorn.error", "_granian"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level.upper())
        log.propagate = False
    access_log.stream = None
    access_log.enabled = logging.getLogger("sealring.server").isEnabledFor(logging.INFO)


# A queued access-log entry: (time.time(), method, path, status, duration_ms, client_id,
# request_id).
_Entry = tuple[float, str | None, str, int, float, str | None, str]


class AccessLog:
    """One JSON line per request, built without the logging machinery and written off the request path.

    The line has the fields a ``logging`` record of the ``sealring.server`` logger would have
    (``ts``, ``level``, ``logger``, ``msg: "request"``, ``request_id``) and the request's own
    (``method``, ``path``, ``status``, ``duration_ms``, ``client_id``). :meth:`record` only
    queues the line's fields; a daemon thread, started with the first line, writes what is
    queued every ``interval`` seconds in one write to ``stream`` (standard error when None), and
    :meth:`flush` or the end of the process writes the rest. A stream that blocks cannot stall
    requests: beyond ``max_queued`` lines the oldest are dropped and counted in ``dropped``.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        interval: float = 0.05,
        max_queued: int = 100_000,
    ) -> None:
        self.stream = stream
        self.enabled = enabled
        self.dropped = 0
        self._interval = interval
        self._queue: deque[_Entry] = deque(maxlen=max_queued)
        self._max_queued = max_queued
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._second = -1
        self._ts_prefix = ""
        self._format_lock = threading.Lock()

    def record(
        self,
        *,
        method: str | None,
        path: str,
        status: int,
        duration_ms: float,
        client_id: str | None,
        request_id: str,
    ) -> None:
        # Only the raw fields are queued: the writer thread formats the lines a batch at a time,
        # which costs a third of formatting each one between two requests (docs/benchmarks.md).
        queue = self._queue
        if len(queue) == self._max_queued:
            self.dropped += 1
        queue.append((time.time(), method, path, status, duration_ms, client_id, request_id))
        if self._thread is None:
            self._start()

    def flush(self) -> None:
        """Write every queued line now."""
        entries: list[_Entry] = []
        queue = self._queue
        while True:
            try:
                entries.append(queue.popleft())
            except IndexError:
                break
        if entries:
            text = self._format(entries)
            stream = self.stream if self.stream is not None else sys.stderr
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken stream loses the access log, never a request

    def _format(self, entries: list[_Entry]) -> str:
        lines: list[str] = []
        append = lines.append
        string = _json_string
        with self._format_lock:  # flush() runs in the writer thread and at shutdown
            for now, method, path, status, duration_ms, client_id, rid in entries:
                second = int(now)
                if second != self._second:
                    self._second = second
                    self._ts_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
                append(
                    f'{{"ts":"{self._ts_prefix}.{int((now - second) * 1000):03d}Z",'
                    '"level":"info","logger":"sealring.server","msg":"request",'
                    f'"request_id":{string(rid)},'
                    f'"method":{string(method) if method is not None else "null"},'
                    f'"path":{string(path)},"status":{status:d},'
                    f'"duration_ms":{duration_ms:.3f},'
                    f'"client_id":{string(client_id) if client_id is not None else "null"}}}\n'
                )
        return "".join(lines)

    def close(self) -> None:
        """Stop the writer thread and write what is left."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sealring-access-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self.flush()

    def _after_fork(self) -> None:
        # The writer thread does not survive a fork; the child starts its own with its first line.
        self._thread = None
        self._queue.clear()


#: The server's access log; :func:`configure_logging` switches it on for level ``info``.
access_log = AccessLog(enabled=False)
atexit.register(access_log.flush)
os.register_at_fork(after_in_child=access_log._after_fork)
