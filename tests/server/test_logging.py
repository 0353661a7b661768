"""Structured logs: JSON lines with a request id; never a secret, assertion or token."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from sealring.server.logging import JsonFormatter
from tests.helpers.server import LiveServer, access_log_lines

API = "https://api.example.test"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("sealring")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with access_log_lines(stream):
            yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_no_secret_or_token_in_logs(
    live: LiveServer, http: httpx.Client, log_lines: io.StringIO
) -> None:
    client_id, secret = live.create_client(scope="s", audiences=[API])
    assert secret is not None
    jwt_id, key = live.create_jwt_client(scope="s", audiences=[API])
    assertion = live.assertion(jwt_id, key, aud=live.url)
    jwt_form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    ok = http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    token = ok.json()["access_token"]
    assert http.post("/token", data=jwt_form).status_code == 200
    assert http.post("/token", data=jwt_form).status_code == 401  # replay, logged as an error
    http.post("/token?client_secret=" + secret, data={"grant_type": "client_credentials"})
    http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret + "x",
        },
    )
    http.post("/introspect", data={"token": token}, auth=(client_id, secret))
    http.post(
        "/revoke",
        data={"token": token},
        auth=(client_id, secret),
        headers={"X-Request-ID": "trace-42"},
    )
    time.sleep(0.1)
    text = log_lines.getvalue()
    records = [json.loads(line) for line in text.splitlines()]
    requests = [r for r in records if r["msg"] == "request"]
    assert len(requests) >= 7
    assert all(r["request_id"] for r in requests)
    assert any(r["request_id"] == "trace-42" and r["path"] == "/revoke" for r in requests)
    assert any(r.get("error") == "invalid_client" for r in records)
    for sensitive in (secret, token, assertion, token.split(".")[2], assertion.split(".")[2]):
        assert sensitive not in text
    assert all("?" not in r["path"] for r in requests)


def test_formatter_hides_exception_messages() -> None:
    try:
        raise ValueError("secret-value-in-message")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "sealring.x", logging.ERROR, "f", 1, "failed", (), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "secret-value-in-message" not in line
    assert json.loads(line)["error_type"] == "ValueError"


def test_oversized_headers_are_access_logged(
    live: LiveServer, http: httpx.Client, log_lines: io.StringIO
) -> None:
    response = http.get("/jwks.json", headers={"X-Pad": "a" * 20000, "X-Request-ID": "big-1"})
    assert response.status_code == 431
    assert response.headers["x-request-id"] == "big-1"
    time.sleep(0.1)
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    logged = [r for r in records if r["msg"] == "request" and r["request_id"] == "big-1"]
    assert [(r["status"], r["path"]) for r in logged] == [(431, "/jwks.json")]
    assert "a" * 100 not in log_lines.getvalue()
