"""uvicorn's httptools protocol, answering the prebuilt responses without an ASGI request.

For the JWKS and the metadata the application's answer is a response built once
(:meth:`~sealring.server.http.middleware.RequestContext.prebuilt_answer`), yet every request
through ASGI still costs the HTTP server a scope dict, a ``RequestResponseCycle``, an asyncio
Task, an ``Event`` and two writes: most of the CPU such a request takes (docs/benchmarks.md).
:class:`PrebuiltHttpToolsProtocol` answers a request that can only get that response directly
from the parser callback, in one write, with the same bytes (the server's ``Date`` header, the
application's headers, ``X-Request-ID``, ``nosniff``, the body), the same access-log line and
the same latency metric. Anything else goes the normal way, untouched: another method or path, a
query string, a body, ``If-None-Match``, ``Expect``, oversized headers, HTTP/1.0 or
``Connection: close``, a pipelined request behind one still in flight, a paused transport.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from sealring.server.http.middleware import MAX_HEADER_BYTES, RequestContext
from sealring.server.logging import logger

__all__ = ["PrebuiltHttpToolsProtocol", "find_request_context"]

_STATUS_200 = STATUS_LINE[200]
# Request headers after which the answer may differ from the prebuilt one (or that need the
# ASGI path's handling of a request body).
_FALL_BACK = frozenset(
    {b"if-none-match", b"content-length", b"transfer-encoding", b"expect", b"upgrade"}
)


def find_request_context(app: Any) -> RequestContext | None:
    """The :class:`RequestContext` inside ``app`` (uvicorn's wrappers, Starlette, its
    middleware stack), or ``None``."""
    for _ in range(16):
        if isinstance(app, RequestContext):
            return app
        app = app.middleware_stack if isinstance(app, Starlette) else getattr(app, "app", None)
        if app is None:
            return None
    return None


class PrebuiltHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` plus the direct answer to a plain ``GET`` of a prebuilt path."""

    _answered = False
    _context: RequestContext | None = None

    def on_headers_complete(self) -> None:
        answer = self._prebuilt_answer()
        if answer is None:
            super().on_headers_complete()
            return
        self._answered = True
        head = [_STATUS_200]
        for name, value in self.server_state.default_headers:
            head += (name, b": ", value, b"\r\n")
        head.append(answer)
        self.transport.write(b"".join(head))
        self.on_response_complete()

    def on_body(self, body: bytes) -> None:
        if not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._answered:
            self._answered = False
            return
        super().on_message_complete()

    def _prebuilt_answer(self) -> bytes | None:
        url = self.url
        if b"?" in url or b"%" in url or self.root_path or self.pipeline:
            return None
        if self.cycle is not None and not self.cycle.response_complete:
            return None  # pipelined behind a request still in flight: keep the order
        parser = self.parser
        if parser.get_method() != b"GET" or parser.get_http_version() != "1.1":
            return None
        if not parser.should_keep_alive() or self.flow.write_paused:
            return None
        context = self._context
        if context is None:
            context = self._context = find_request_context(self.app)
            if context is None:
                return None
        path = url.decode("ascii", "replace")
        if path not in context.prebuilt:
            return None
        incoming = None
        size = 0
        for name, value in self.headers:
            size += len(name) + len(value)
            if name in _FALL_BACK:
                return None
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
        if size > MAX_HEADER_BYTES:
            return None
        try:
            return context.prebuilt_answer(path, incoming)
        except Exception as exc:  # raised from a parser callback it would become a 400
            logger.error("prebuilt answer failed", extra={"error_type": type(exc).__name__})
            return None  # the ASGI path answers instead, as it would have without this protocol
