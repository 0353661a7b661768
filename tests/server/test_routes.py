"""The route table: every path once, and what is derived from it."""

from __future__ import annotations

from sealring.server.endpoints import HANDLERS
from sealring.server.openapi import openapi_document
from sealring.server.routes import (
    DISCOVERY,
    ROUTES,
    WELL_KNOWN_PATH,
    advertised_urls,
    endpoint_name,
    endpoint_url,
)
from sealring.server.settings import Settings


def test_every_route_has_a_handler_and_every_handler_a_route() -> None:
    assert set(HANDLERS) == {route.name for route in ROUTES} | {DISCOVERY}
    assert len({route.path for route in ROUTES}) == len(ROUTES)


def test_settings_and_metadata_urls_come_from_the_table() -> None:
    settings = Settings.load({"issuer": "https://auth.example/tenant"}, environ={})
    assert settings.token_endpoint == "https://auth.example/tenant/token"
    assert endpoint_url(settings.issuer, "jwks") == settings.jwks_uri
    assert advertised_urls(settings.issuer) == {
        "authorization_endpoint": "https://auth.example/tenant/authorize",
        "end_session_endpoint": "https://auth.example/tenant/logout",
        "userinfo_endpoint": "https://auth.example/tenant/userinfo",
        "token_endpoint": settings.token_endpoint,
        "introspection_endpoint": settings.introspection_endpoint,
        "revocation_endpoint": settings.revocation_endpoint,
        "jwks_uri": settings.jwks_uri,
    }


def test_metric_labels_name_the_route_with_or_without_the_issuer_path() -> None:
    assert endpoint_name("/token") == "token"
    assert endpoint_name("/tenant/token", "/tenant") == "token"
    assert endpoint_name("/tenant/healthz", "/tenant") == "healthz"
    assert endpoint_name(WELL_KNOWN_PATH + "/tenant", "/tenant") == DISCOVERY
    assert endpoint_name("/other/token", "/tenant") == "other"
    assert endpoint_name("/tokens") == "other"
    assert endpoint_name("/interaction/abc") == "interaction"
    assert endpoint_name("/tenant/interaction/abc/resume", "/tenant") == "interaction_resume"
    assert endpoint_name("/interaction/") == "other"
    assert endpoint_name("/interaction/abc/other") == "other"


def test_the_openapi_document_lists_every_route_but_itself() -> None:
    paths = openapi_document(Settings.load(environ={}))["paths"]
    assert {route.path for route in ROUTES if route.name != "openapi"} <= set(paths)
