"""uvicorn's httptools protocol, answering the hottest requests without an ASGI request.

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

The token endpoint's ``POST`` goes the same way when the application answers it synchronously
(:meth:`~sealring.server.http.middleware.RequestContext.posted_answer`): a plain request of
exactly that path with a ``Content-Length`` body has the body held back from uvicorn until the
message is complete, and the application is asked then. When it declines (any error, a user
grant, a client not cached: it decides before doing anything), the held request is handed to
uvicorn's own callbacks in their order (headers, body, end of message), and the ASGI path answers
it exactly as without this protocol.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
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
# For a held POST: the body must come with one Content-Length; no other framing, no interim
# response, no protocol switch.
_POST_FALL_BACK = frozenset({b"transfer-encoding", b"expect", b"upgrade"})
_PROXIED_FALL_BACK = _POST_FALL_BACK | {b"x-forwarded-for"}
# The most body a held POST may carry: what uvicorn itself buffers before pausing the reads.
MAX_HELD_BODY = HIGH_WATER_LIMIT


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


def _proxy_headers(app: Any) -> ProxyHeadersMiddleware | None:
    """uvicorn's ``X-Forwarded-For`` middleware in front of the application, if any."""
    for _ in range(16):
        if isinstance(app, ProxyHeadersMiddleware):
            return app
        if app is None or isinstance(app, RequestContext | Starlette):
            return None
        app = getattr(app, "app", None)
    return None


class PrebuiltHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` plus the direct answer to a plain ``GET`` of a prebuilt path
    and to a plain ``POST`` of the token endpoint."""

    _answered = False
    _context: RequestContext | None = None
    _held: bytearray | None = None  # the body of a POST held back for the direct answer
    _held_path = ""
    _held_request_id: str | None = None
    _proxied_peer: bool | None = None

    def on_headers_complete(self) -> None:
        method = self.parser.get_method()
        if method == b"POST" and self._hold_post():
            return
        answer = self._prebuilt_answer() if method == b"GET" else None
        if answer is None:
            super().on_headers_complete()
            return
        self._answered = True
        self._write_200(answer)

    def on_body(self, body: bytes) -> None:
        held = self._held
        if held is not None:
            held += body
        elif not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            answer = self._posted_answer(bytes(held))
            if answer is not None:
                self._write_200(answer)
                return
            # The ASGI path, as if nothing had been held: uvicorn's callbacks in their order.
            super().on_headers_complete()
            if held:
                super().on_body(bytes(held))
            super().on_message_complete()
            return
        if self._answered:
            self._answered = False
            return
        super().on_message_complete()

    def _write_200(self, answer: bytes) -> None:
        head = [_STATUS_200]
        for name, value in self.server_state.default_headers:
            head += (name, b": ", value, b"\r\n")
        head.append(answer)
        self.transport.write(b"".join(head))
        self.on_response_complete()

    def _plain(self) -> RequestContext | None:
        """The application's :class:`RequestContext` if this request is for a path without
        query on a keep-alive HTTP/1.1 connection with nothing in flight."""
        url = self.url
        if b"?" in url or b"%" in url or self.root_path or self.pipeline:
            return None
        if self.cycle is not None and not self.cycle.response_complete:
            return None  # pipelined behind a request still in flight: keep the order
        parser = self.parser
        if parser.get_http_version() != "1.1":
            return None
        if not parser.should_keep_alive() or self.flow.write_paused:
            return None
        context = self._context
        if context is None:
            context = self._context = find_request_context(self.app)
        return context

    def _prebuilt_answer(self) -> bytes | None:
        context = self._plain()
        if context is None:
            return None
        path = self.url.decode("ascii", "replace")
        if path not in context.prebuilt:
            return None
        sent = self._request_headers(_FALL_BACK)
        if sent is None:
            return None
        try:
            return context.prebuilt_answer(path, sent[0])
        except Exception as exc:  # raised from a parser callback it would become a 400
            logger.error("prebuilt answer failed", extra={"error_type": type(exc).__name__})
            return None  # the ASGI path answers instead, as it would have without this protocol

    def _hold_post(self) -> bool:
        """Start holding the body of a plain ``POST`` of a path with a synchronous answer."""
        context = self._plain()
        if context is None:
            return False
        path = self.url.decode("ascii", "replace")
        if path not in context.posted:
            return False
        # Behind a trusted proxy the caller's address is the proxy middleware's to work out.
        sent = self._request_headers(_PROXIED_FALL_BACK if self._proxied() else _POST_FALL_BACK)
        if sent is None or sent[1] is None or sent[1] > MAX_HELD_BODY:
            return False
        self._held = bytearray()
        self._held_path = path
        self._held_request_id = sent[0]
        return True

    def _request_headers(self, refused: frozenset[bytes]) -> tuple[str | None, int | None] | None:
        """The ``X-Request-ID`` and ``Content-Length`` sent, or ``None``: a header in ``refused``,
        a repeated or malformed ``Content-Length``, headers over :data:`MAX_HEADER_BYTES`."""
        incoming = None
        length = None
        size = 0
        for name, value in self.headers:
            size += len(name) + len(value)
            if name in refused:
                return None
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"content-length":
                if length is not None or not value.isdigit():
                    return None
                length = int(value)
        if size > MAX_HEADER_BYTES:
            return None
        return incoming, length

    def _proxied(self) -> bool:
        """Whether uvicorn's proxy middleware takes this connection's caller address from
        ``X-Forwarded-For`` (the peer is a proxy it trusts)."""
        proxied = self._proxied_peer
        if proxied is None:
            proxy = _proxy_headers(self.app)
            host = self.client[0] if self.client else None
            proxied = self._proxied_peer = proxy is not None and host in proxy.trusted_hosts
        return proxied

    def _posted_answer(self, body: bytes) -> bytes | None:
        context = self._context
        if context is None or self.flow.write_paused or self.transport.is_closing():
            return None
        try:
            return context.posted_answer(
                self._held_path,
                self.headers,
                body,
                self.client[0] if self.client else None,
                self._held_request_id,
            )
        except Exception as exc:  # raised from a parser callback it would become a 400
            logger.error("direct answer failed", extra={"error_type": type(exc).__name__})
            return None
