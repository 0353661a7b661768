"""Structured JSON logs, one object per line, each with the request id of its request.

Only values chosen here are logged: method, path (never the query string), status, latency,
client id, error code.  Request bodies, headers, secrets, assertions and tokens never are.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar
from typing import Any

__all__ = ["JsonFormatter", "configure_logging", "logger", "new_request_id", "request_id"]

logger = logging.getLogger("sealring.server")
request_id: ContextVar[str | None] = ContextVar("sealring_request_id", default=None)
_INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of msg with terminal colour codes
}


def new_request_id(incoming: str | None) -> str:
    """Keep a caller's well-formed ``X-Request-ID``; otherwise make one."""
    if incoming and _INCOMING_ID.fullmatch(incoming):
        return incoming
    return secrets.token_hex(8)


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
    """Send ``sealring.*`` and the HTTP server's error log to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("sealring", "uvicorn.error", "_granian"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level.upper())
        log.propagate = False
