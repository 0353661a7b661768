"""The ASGI middleware around every request: request id, access log, latency, 431 and opaque 500.

Every response leaves with ``X-Content-Type-Options: nosniff`` (so no browser renders a JSON
error or a JWKS as a page), whichever layer produced it.

The hot endpoints (the token endpoint, the JWKS, the metadata) are dispatched here directly, by
exact method and path, to their handlers (:func:`direct_endpoint`), skipping Starlette's router
and exception wrappers; every other request, and every route added later, goes on to Starlette.
Both ways run inside the same wrapper, so the request id, headers, access-log line and latency
metric do not depend on which way a request took (docs/benchmarks.md: what the layers cost).

The JWKS and the metadata are prebuilt responses; :meth:`RequestContext.prebuilt_answer` gives
an HTTP server the bytes of such an answer, access-logged and measured like the ASGI path, so it
can answer a plain ``GET`` of those paths without building an ASGI request at all
(:mod:`sealring.server.http.uvicorn_protocol`).

Also the JSON answer to Starlette's own 404/405 (:func:`http_error`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealring.server.errors import NO_STORE_HEADERS
from sealring.server.logging import access_log, logger, new_request_id, request_id
from sealring.server.metrics import Metrics
from sealring.server.routes import endpoint_name

__all__ = [
    "MAX_HEADER_BYTES",
    "DirectRoutes",
    "PostedRoutes",
    "PrebuiltRoutes",
    "RequestContext",
    "direct_endpoint",
    "http_error",
]

MAX_HEADER_BYTES = 16 * 1024


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"pragma", b"no-cache"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_HEADERS_TOO_LARGE = json.dumps(
    {
        "error": "invalid_request",
        "error_description": f"the request headers exceed {MAX_HEADER_BYTES} bytes",
    }
).encode()


#: ``(method, path) -> ASGI app`` answered without Starlette's router (:class:`RequestContext`).
DirectRoutes = Mapping[tuple[str, str], ASGIApp]
#: ``path -> the current answer to GET path`` for the prebuilt responses (``None`` until the
#: server context exists); the same Response object the direct route's handler returns.
PrebuiltRoutes = Mapping[str, Callable[[], Response | None]]
#: ``path -> the answer to a POST of path`` computed synchronously from the request's headers
#: (lower-case names), whole body and caller address: the response and the client id to log,
#: or ``None`` (before any side effect) for the ASGI path to answer
#: (:class:`~sealring.server.endpoints.token.DirectToken`).
PostedRoutes = Mapping[
    str,
    Callable[[Sequence[tuple[bytes, bytes]], bytes, str | None], tuple[Response, str] | None],
]


def direct_endpoint(handler: Callable[[Request], Awaitable[Response]]) -> ASGIApp:
    """``handler`` as a plain ASGI app, without Starlette's per-route exception wrapper.

    Only for handlers that raise nothing Starlette's exception handlers would translate
    (``HTTPException``): their own errors are answered by ``oauth_endpoint``, and anything
    unexpected reaches :class:`RequestContext`, which answers the opaque 500 either way.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handler(Request(scope, receive))
        await response(scope, receive, send)

    return app


class RequestContext:
    """Request id, access log line, latency histogram, and a JSON 500 that leaks nothing."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Callable[[], Metrics | None],
        prefix: str = "",
        direct: DirectRoutes | None = None,
        prebuilt: PrebuiltRoutes | None = None,
        posted: PostedRoutes | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.prefix = prefix  # the issuer's path, under which the endpoints are served too
        self.direct = dict(direct or {})
        self.prebuilt = dict(prebuilt or {})
        self.posted = dict(posted or {})
        # path -> (the Response last encoded, its encoded headers); rebuilt when the handler's
        # answer changes (a new JWKS after a rotation).
        self._encoded: dict[str, tuple[Response, bytes]] = {}
        # The latency histogram's child per endpoint label: labels() takes a lock and builds a
        # key on every call. Reset when the application's Metrics change (a new lifespan).
        self._metrics: Metrics | None = None
        self._observers: dict[str, Callable[[float], None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        header_bytes = 0
        for name, value in scope.get("headers", ()):
            header_bytes += len(name) + len(value)
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
        rid = new_request_id(incoming)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if header_bytes > MAX_HEADER_BYTES:
                # Some HTTP servers (uvicorn with httptools) set no limit of their own. Refused
                # here, inside the try, so the refusal is access-logged like any response.
                await _send_json(send_wrapper, 431, _HEADERS_TOO_LARGE)
            else:
                app = self.direct.get((scope["method"], scope["path"]), self.app)
                await app(scope, receive, send_wrapper)
        except Exception as exc:
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            logger.error(
                "unhandled error", extra={"error_type": type(exc).__name__, "where": where}
            )
            if not response_started:
                await _send_json(send_wrapper, 500, b'{"error":"server_error"}')
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            endpoint = endpoint_name(path, self.prefix)
            metrics = self.metrics()
            if metrics is not None:
                self._observer(metrics, endpoint)(elapsed)
            if access_log.enabled:
                access_log.record(
                    method=scope.get("method"),
                    path=path[:200],
                    status=status,
                    duration_ms=elapsed * 1000,
                    client_id=scope.get("sealring.client_id"),
                    request_id=rid,
                )
            request_id.reset(token)

    def prebuilt_answer(self, path: str, incoming_request_id: str | None) -> bytes | None:
        """Everything after the HTTP server's status line and own headers (``Date``) in the
        answer to a plain ``GET path``, when ``path`` has a prebuilt response; else ``None``.

        Byte for byte what the ASGI path sends for that request (its headers in the order the
        HTTP server writes them, then ``X-Request-ID`` and ``nosniff``, the blank line, the
        body), with the same access-log line and latency observation. The caller has checked
        that the request is one the ASGI path would answer with this response: ``GET``, exactly
        this path, no query, no body, no ``If-None-Match``, headers within
        :data:`MAX_HEADER_BYTES`.
        """
        answer = self.prebuilt.get(path)
        if answer is None:
            return None
        started = time.perf_counter()
        try:
            response = answer()
        except Exception:  # the ASGI path asks again, and answers and logs the opaque 500
            return None
        if response is None or response.status_code != 200:
            return None
        cached = self._encoded.get(path)
        if cached is None or cached[0] is not response:
            cached = self._encoded[path] = (response, _encoded_headers(response))
        return self._answered("GET", path, response, cached[1], None, started, incoming_request_id)

    def posted_answer(
        self,
        path: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        address: str | None,
        incoming_request_id: str | None,
    ) -> bytes | None:
        """Like :meth:`prebuilt_answer`, for a ``POST path`` with a :data:`PostedRoutes` answer:
        everything after the HTTP server's status line and own headers, byte for byte what the
        ASGI path sends when that answer is a ``200``, access-logged (with the client id) and
        measured the same; ``None`` when the ASGI path must answer, nothing done then. The
        caller has checked that the request is a plain one (``POST``, exactly this path, no
        query, the whole body at hand, headers within :data:`MAX_HEADER_BYTES`)."""
        answer = self.posted.get(path)
        if answer is None:
            return None
        started = time.perf_counter()
        done = answer(headers, body, address)
        if done is None:
            return None
        response, client_id = done
        head = _encoded_headers(response)
        return self._answered("POST", path, response, head, client_id, started, incoming_request_id)

    def _answered(
        self,
        method: str,
        path: str,
        response: Response,
        head: bytes,
        client_id: str | None,
        started: float,
        incoming_request_id: str | None,
    ) -> bytes:
        rid = new_request_id(incoming_request_id)
        out = b"".join(
            (
                head,
                b"x-request-id: ",
                rid.encode(),
                b"\r\nx-content-type-options: nosniff\r\n\r\n",
                response.body,
            )
        )
        elapsed = time.perf_counter() - started
        metrics = self.metrics()
        if metrics is not None:
            self._observer(metrics, endpoint_name(path, self.prefix))(elapsed)
        if access_log.enabled:
            access_log.record(
                method=method,
                path=path[:200],
                status=response.status_code,
                duration_ms=elapsed * 1000,
                client_id=client_id,
                request_id=rid,
            )
        return out

    def _observer(self, metrics: Metrics, endpoint: str) -> Callable[[float], None]:
        if metrics is not self._metrics:
            self._metrics = metrics
            self._observers = {}
        observe = self._observers.get(endpoint)
        if observe is None:
            observe = self._observers[endpoint] = metrics.latency.labels(endpoint).observe
        return observe


def _encoded_headers(response: Response) -> bytes:
    """``response``'s headers as the HTTP server writes them after its own."""
    return b"".join(name + b": " + value + b"\r\n" for name, value in response.raw_headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
    return Response(
        json.dumps({"error": code}),
        status_code=exc.status_code,
        headers={**NO_STORE_HEADERS, **(exc.headers or {})},
        media_type="application/json",
    )
