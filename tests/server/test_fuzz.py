"""Whatever arrives at the OAuth endpoints, the answer is a JSON OAuth error or success, never
a 5xx (hypothesis over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.server import LiveServer, start_server

CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
    ]
)
PARAMS = st.sampled_from(
    ["grant_type", "scope", "resource", "client_id", "client_secret", "client_assertion",
     "client_assertion_type", "token", "token_type_hint", "x"]
)  # fmt: skip
FORM_BODIES = st.lists(st.tuples(PARAMS, st.text(max_size=40)), max_size=8).map(
    lambda pairs: httpx.QueryParams(pairs).__str__().encode()
)
BODIES = st.one_of(st.binary(max_size=300), FORM_BODIES)
AUTH = st.one_of(
    st.none(),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(
        lambda t: ("Basic " + t).strip()
    ),
    st.sampled_from(["Basic", "Basic Og==", "Bearer x", "basic  YTpi", "Basic YTpi"]),
)


@pytest.fixture(scope="module")
def sqlite_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Input handling does not depend on the database: one server on SQLite is enough.
    server = start_server(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
def test_no_server_errors(sqlite_live: LiveServer, path: str) -> None:
    with httpx.Client(base_url=sqlite_live.url, timeout=10) as http:

        @settings(max_examples=150, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
        @given(body=BODIES, content_type=CONTENT_TYPES, auth=AUTH)
        def check(body: bytes, content_type: str, auth: str | None) -> None:
            headers = {"Content-Type": content_type} if content_type else {}
            if auth is not None:
                headers["Authorization"] = auth
            response = http.post(path, content=body, headers=headers)
            assert response.status_code < 500, response.text
            assert response.headers["content-type"] == "application/json" or (
                response.status_code == 200 and path == "/revoke"
            )
            if response.status_code >= 400:
                assert set(response.json()) <= {"error", "error_description"}

        check()
