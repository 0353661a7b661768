"""The JSON log line carries what a log pipeline needs, and nothing meant for a terminal."""

from __future__ import annotations

import json
import logging

from sealring.server.logging import JsonFormatter


def test_uvicorn_colour_copy_is_dropped() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started %d", (7,), None)
    record.color_message = "Started \x1b[36m%d\x1b[0m"
    record.worker = 2
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "Started 7"
    assert line["worker"] == 2
    assert "color_message" not in line
