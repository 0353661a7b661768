"""``/metrics`` is not public (issue 10, item 6).

It lists every client id with its volumes and error counts.  On the public listener it answers
404 unless a ``metrics_token`` is configured, and then only to ``Authorization: Bearer`` with
that token; a scrape runs no database query (a scraper cannot load the database).
"""

from __future__ import annotations

import httpx
from sqlalchemy import event

from tests.helpers.server import METRICS_TOKEN, LiveServer, running_server


def test_metrics_are_not_served_without_a_token_configured(module_database_url: str) -> None:
    with (
        running_server(module_database_url, metrics_token=None) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        response = http.get("/metrics")
        # Indistinguishable from a path that does not exist.
        assert response.status_code == 404
        assert response.json() == http.get("/no-such-path").json()
        bearer = http.get("/metrics", headers={"Authorization": "Bearer anything"})
        assert bearer.status_code == 404


def test_metrics_need_the_bearer_token(live: LiveServer, http: httpx.Client) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer " + METRICS_TOKEN[:-1]},
        {"Authorization": "Bearer " + METRICS_TOKEN + "x"},
        {"Authorization": "Basic " + METRICS_TOKEN},
        {"Authorization": METRICS_TOKEN},
    ):
        refused = http.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "sealring_" not in refused.text
    ok = http.get("/metrics", headers={"Authorization": "Bearer " + METRICS_TOKEN})
    assert ok.status_code == 200
    assert "sealring_signing_keys" in ok.text


def test_a_scrape_runs_no_database_query(live: LiveServer, http: httpx.Client) -> None:
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = live.context.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(3):
            response = http.get("/metrics", headers={"Authorization": "Bearer " + METRICS_TOKEN})
            assert response.status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements == []
