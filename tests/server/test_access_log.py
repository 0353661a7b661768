"""The access log: JSON lines built without the logging machinery, written off the request path."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import warnings

import pytest

from sealring.server.logging import AccessLog, JsonFormatter, new_request_id, request_id


class Recorder(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)


def _record(log: AccessLog, **overrides: object) -> None:
    fields: dict[str, object] = {
        "method": "POST",
        "path": "/token",
        "status": 200,
        "duration_ms": 1.23456,
        "client_id": "abc123",
        "request_id": "rid-1",
    }
    fields.update(overrides)
    log.record(**fields)  # type: ignore[arg-type]


def test_line_is_json_with_the_request_fields() -> None:
    stream = Recorder()
    log = AccessLog(stream, interval=60)
    _record(log)
    log.close()
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record.pop("ts").endswith("Z")
    assert record == {
        "level": "info",
        "logger": "sealring.server",
        "msg": "request",
        "request_id": "rid-1",
        "method": "POST",
        "path": "/token",
        "status": 200,
        "duration_ms": 1.235,
        "client_id": "abc123",
    }


def test_line_has_the_same_fields_as_a_logging_record() -> None:
    # Log readers built for the logging formatter's request lines keep working.
    stream = Recorder()
    log = AccessLog(stream, interval=60)
    _record(log)
    log.close()
    fast = json.loads(stream.getvalue())
    rid = request_id.set("rid-1")
    try:
        record = logging.LogRecord("sealring.server", logging.INFO, "f", 1, "request", (), None)
        for key in ("method", "path", "status", "duration_ms", "client_id"):
            setattr(record, key, fast[key])
        slow = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(rid)
    assert set(fast) == set(slow)
    assert {k: v for k, v in fast.items() if k != "ts"} == {
        k: v for k, v in slow.items() if k != "ts"
    }


@pytest.mark.parametrize(
    "path", ['/a"b', "/back\\slash", "/ctl\x00\x1f\x7f", "/é/\u2028/\U0001f600", "/" + "x" * 300]
)
def test_hostile_paths_stay_one_valid_line(path: str) -> None:
    stream = Recorder()
    log = AccessLog(stream, interval=60)
    _record(log, path=path, method=None, client_id=None)
    log.close()
    lines = stream.getvalue().split("\n")
    assert lines[-1] == ""
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert record["path"] == path
    assert record["method"] is None
    assert record["client_id"] is None


def test_record_does_not_write_on_the_request_path() -> None:
    stream = Recorder()
    log = AccessLog(stream, interval=60)
    for i in range(5):
        _record(log, request_id=f"r{i}")
    assert stream.writes == []  # queued, not written
    log.close()
    assert len(stream.writes) == 1  # one write for the batch
    assert [json.loads(x)["request_id"] for x in stream.getvalue().splitlines()] == [
        "r0",
        "r1",
        "r2",
        "r3",
        "r4",
    ]


def test_a_line_carries_the_time_it_was_recorded_not_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The writer thread formats the lines a batch at a time; each keeps its request's time.
    stream = Recorder()
    log = AccessLog(stream, interval=60)
    clock = iter([1_700_000_000.25, 1_700_000_061.5])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    _record(log, request_id="a")
    _record(log, request_id="b")
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    log.close()
    stamps = [json.loads(x)["ts"] for x in stream.getvalue().splitlines()]
    assert stamps == ["2023-11-14T22:13:20.250Z", "2023-11-14T22:14:21.500Z"]


def test_writer_thread_flushes_on_its_interval() -> None:
    stream = Recorder()
    log = AccessLog(stream, interval=0.01)
    try:
        _record(log)
        deadline = time.monotonic() + 5
        while not stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert json.loads(stream.getvalue())["request_id"] == "rid-1"
    finally:
        log.close()


def test_a_blocked_stream_never_blocks_a_request_and_drops_the_oldest() -> None:
    release = threading.Event()

    class Blocking(Recorder):
        def write(self, s: str) -> int:
            release.wait(10)
            return super().write(s)

    stream = Blocking()
    log = AccessLog(stream, interval=0.001, max_queued=3)
    _record(log, request_id="first")
    time.sleep(0.05)  # the writer thread now sits in the blocked write
    started = time.perf_counter()
    for i in range(10):
        _record(log, request_id=f"r{i}")
    assert time.perf_counter() - started < 0.5
    assert log.dropped == 7
    release.set()
    log.close()
    ids = [json.loads(x)["request_id"] for x in stream.getvalue().splitlines()]
    assert ids == ["first", "r7", "r8", "r9"]


def test_a_broken_stream_loses_lines_not_requests() -> None:
    stream = io.StringIO()
    stream.close()
    log = AccessLog(stream, interval=60)
    _record(log)
    log.close()  # no exception


def test_request_ids_are_fresh_random_hex() -> None:
    ids = [new_request_id(None) for _ in range(3 * 512 + 5)]  # across pool refills
    assert len(set(ids)) == len(ids)
    assert all(len(rid) == 16 and int(rid, 16) >= 0 for rid in ids)
    assert new_request_id("caller-id.1") == "caller-id.1"
    assert new_request_id("bad id") != "bad id"


def test_a_forked_worker_does_not_repeat_its_parents_request_ids() -> None:
    new_request_id(None)  # the pool is filled before the fork
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; the child only writes.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_request_id(None).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert len(child) == 16
    assert child != new_request_id(None)
