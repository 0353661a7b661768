"""The built-in login, consent and error pages and their rendering (sealring.server.pages)."""

from __future__ import annotations

import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest

from sealring.server.pages import CONTENT_SECURITY_POLICY, SECURITY_HEADERS, PageRenderer

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = ROOT / "src" / "sealring" / "server" / "templates"

LOGIN = {
    "action": "/interaction/abc/login",
    "csrf_token": "tok-123",
    "client_name": "Photo App",
    "login_hint": None,
    "error": None,
}
CONSENT = {
    "action": "/interaction/abc/consent",
    "csrf_token": "tok-456",
    "client_name": "Photo App",
    "username": "alice",
    "scopes": [
        {"name": "openid", "description": "Sign you in"},
        {"name": "email", "description": "See your email address"},
        {"name": "offline_access", "description": ""},
    ],
}
ERROR = {"error": "invalid_request", "description": "The link is broken.", "restart_url": None}


class Elements(HTMLParser):
    """Every start tag with its attributes, in document order, and the text of labels."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(html: bytes) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html.decode("utf-8"))
    return parser.tags


@pytest.fixture
def renderer() -> PageRenderer:
    return PageRenderer()


def test_every_page_carries_the_security_headers(renderer: PageRenderer) -> None:
    for name, context in [("login.html", LOGIN), ("consent.html", CONSENT), ("error.html", ERROR)]:
        page = renderer.render(name, context)
        assert page.headers == SECURITY_HEADERS
        assert page.media_type == "text/html; charset=utf-8"
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert SECURITY_HEADERS["Cache-Control"] == "no-store"
    assert SECURITY_HEADERS["Referrer-Policy"] == "no-referrer"
    assert SECURITY_HEADERS["X-Frame-Options"] == "DENY"


def test_csp_forbids_framing_and_script() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'none'"
    assert "script-src" not in directives  # falls back to default-src 'none'
    assert "form-action" not in directives  # would block the redirect to the client


def test_page_headers_are_a_copy(renderer: PageRenderer) -> None:
    page = renderer.render("error.html", ERROR)
    page.headers["X-Extra"] = "1"  # type: ignore[index]
    assert "X-Extra" not in SECURITY_HEADERS


def test_values_are_html_escaped(renderer: PageRenderer) -> None:
    evil = '<script>alert("x")</script>'
    page = renderer.render("consent.html", {**CONSENT, "client_name": evil, "username": evil})
    assert b"<script>" not in page.body
    assert b"&lt;script&gt;" in page.body


def test_attribute_values_are_escaped(renderer: PageRenderer) -> None:
    page = renderer.render("login.html", {**LOGIN, "login_hint": '"><img src=x>'})
    tags = parse(page.body)
    assert not any(tag == "img" for tag, _ in tags)
    username = next(a for t, a in tags if t == "input" and a.get("name") == "username")
    assert username["value"] == '"><img src=x>'


def test_built_in_pages_have_no_script(renderer: PageRenderer) -> None:
    for path in TEMPLATES.glob("*.html"):
        assert "<script" not in path.read_text().lower(), path.name


def test_login_form_has_labelled_username_and_password(renderer: PageRenderer) -> None:
    tags = parse(renderer.render("login.html", LOGIN).body)
    labels = {a["for"] for t, a in tags if t == "label"}
    inputs = {a["name"]: a for t, a in tags if t == "input"}
    assert inputs["username"]["id"] in labels
    assert inputs["password"]["id"] in labels
    assert inputs["password"]["type"] == "password"
    assert inputs["username"]["autocomplete"] == "username"
    assert inputs["password"]["autocomplete"] == "current-password"


def test_forms_post_to_the_action_with_a_csrf_field(renderer: PageRenderer) -> None:
    for name, context in [("login.html", LOGIN), ("consent.html", CONSENT)]:
        tags = parse(renderer.render(name, context).body)
        form = next(a for t, a in tags if t == "form")
        assert form["method"] == "post"
        assert form["action"] == context["action"]
        csrf = [a for t, a in tags if t == "input" and a.get("name") == "csrf_token"]
        assert csrf == [{"type": "hidden", "name": "csrf_token", "value": context["csrf_token"]}]


def test_login_form_works_without_javascript(renderer: PageRenderer) -> None:
    tags = parse(renderer.render("login.html", LOGIN).body)
    submits = [a for t, a in tags if t == "button"]
    assert submits == [{"type": "submit"}]
    assert not any(k.startswith("on") for _, a in tags for k in a)


def test_login_hint_prefills_the_username(renderer: PageRenderer) -> None:
    tags = parse(renderer.render("login.html", {**LOGIN, "login_hint": "alice"}).body)
    username = next(a for t, a in tags if t == "input" and a.get("name") == "username")
    assert username["value"] == "alice"


def test_login_error_is_announced(renderer: PageRenderer) -> None:
    page = renderer.render("login.html", {**LOGIN, "error": "Wrong username or password."})
    assert b'role="alert"' in page.body
    assert b"Wrong username or password." in page.body


def test_consent_names_the_client_and_each_scope(renderer: PageRenderer) -> None:
    body = renderer.render("consent.html", CONSENT).body.decode()
    assert "Photo App" in body
    for scope in CONSENT["scopes"]:
        assert f"<strong>{scope['name']}</strong>" in body  # type: ignore[index]


def test_consent_offers_allow_and_deny(renderer: PageRenderer) -> None:
    tags = parse(renderer.render("consent.html", CONSENT).body)
    buttons = [(a["name"], a["value"]) for t, a in tags if t == "button"]
    assert buttons == [("decision", "allow"), ("decision", "deny")]


def test_error_page_links_back_only_when_given(renderer: PageRenderer) -> None:
    without = parse(renderer.render("error.html", ERROR).body)
    assert not any(t == "a" for t, _ in without)
    given = parse(renderer.render("error.html", {**ERROR, "restart_url": "/authorize?x=1"}).body)
    assert [a["href"] for t, a in given if t == "a"] == ["/authorize?x=1"]


def test_status_code_is_passed_through(renderer: PageRenderer) -> None:
    assert renderer.render("error.html", ERROR, status_code=400).status_code == 400


def test_missing_context_is_an_error_not_a_blank(renderer: PageRenderer) -> None:
    with pytest.raises(jinja2.UndefinedError):
        renderer.render("login.html", {"action": "/x"})


def test_user_folder_overrides_a_built_in(tmp_path: Path) -> None:
    (tmp_path / "login.html").write_text("<p>Custom {{ client_name }}</p>")
    renderer = PageRenderer(tmp_path)
    assert renderer.render("login.html", LOGIN).body == b"<p>Custom Photo App</p>"
    # The other pages still come from the built-ins.
    assert b"Allow" in renderer.render("consent.html", CONSENT).body


def test_user_templates_are_autoescaped_too(tmp_path: Path) -> None:
    (tmp_path / "error.txt").write_text("{{ description }}")
    page = PageRenderer(tmp_path).render("error.txt", {"description": "<b>"})
    assert page.body == b"&lt;b&gt;"


def test_user_template_can_extend_the_built_in_base(tmp_path: Path) -> None:
    (tmp_path / "error.html").write_text(
        '{% extends "base.html" %}{% block main %}<p>Oops: {{ error }}</p>{% endblock %}'
    )
    body = PageRenderer(tmp_path).render("error.html", ERROR).body
    assert b"<!doctype html>" in body
    assert b"<p>Oops: invalid_request</p>" in body


def test_missing_template_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        PageRenderer(tmp_path / "nope")


def test_templates_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["sealring"]
    shipped = {p.name for p in TEMPLATES.glob("*.html")}
    assert {"login.html", "consent.html", "error.html", "base.html"} <= shipped
    covered = {
        p.name
        for pattern in patterns
        for p in (ROOT / "src" / "sealring").glob(pattern)
        if re.search(r"templates", pattern)
    }
    assert shipped <= covered
