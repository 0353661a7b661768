"""Raw HTTP/1.1 over a socket to a live server.

For the tests that compare the answers :class:`PrebuiltHttpToolsProtocol` writes itself with the
ASGI path's, byte for byte (tests/server/test_prebuilt_protocol.py, test_direct_token.py).
"""

from __future__ import annotations

import io
import json
import re
import socket

from sealring.server.logging import access_log
from tests.helpers.server import LiveServer

__all__ = ["access_entries", "port_of", "read_response"]


def port_of(server: LiveServer) -> int:
    port: int = server.sock.getsockname()[1]
    return port


def _fill(sock: socket.socket, buffer: bytearray, what: str) -> None:
    chunk = sock.recv(65536)
    if not chunk:
        raise AssertionError(f"connection closed mid-{what}: {bytes(buffer)!r}")
    buffer += chunk


def read_response(sock: socket.socket, buffer: bytearray) -> bytes:
    """One complete response (by its Content-Length, or chunked) from ``sock``, leaving the
    rest in ``buffer``."""
    while b"\r\n\r\n" not in buffer:
        _fill(sock, buffer, "response")
    head_end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:head_end])
    if b"\r\ntransfer-encoding: chunked\r\n" in head:
        while b"\r\n0\r\n\r\n" not in buffer[head_end - 2 :]:
            _fill(sock, buffer, "body")
        total = buffer.index(b"\r\n0\r\n\r\n", head_end - 2) + 7
    else:
        length = re.search(rb"\r\ncontent-length: (\d+)\r\n", head)
        total = head_end + (int(length[1]) if length else 0)
    while len(buffer) < total:
        _fill(sock, buffer, "body")
    response = bytes(buffer[:total])
    del buffer[:total]
    return response


def access_entries(stream: io.StringIO) -> list[dict[str, object]]:
    """The access-log lines written to ``stream`` so far (flushed first), without their time
    stamp and duration (checked for form); the stream is emptied."""
    access_log.flush()
    entries = []
    for line in stream.getvalue().splitlines():
        entry = json.loads(line)
        assert entry.pop("ts").endswith("Z")
        assert isinstance(entry.pop("duration_ms"), float)
        entries.append(entry)
    stream.seek(0)
    stream.truncate()
    return entries
