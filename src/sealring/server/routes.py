"""Every path the server answers, once: the route table.

Starlette's routes (``app.py``), the URLs in the metadata and in :class:`Settings`
(``token_endpoint`` ...), the metric label of each request and the OpenAPI document are all derived
from :data:`ROUTES`.  The table holds names, not handlers: settings, client authentication (the
assertion audience) and the metrics middleware need the paths and sit below the endpoints, so a
table of handlers would pull every endpoint into their imports.  ``app.py`` binds each name to its
handler from :data:`sealring.server.endpoints.HANDLERS` and refuses to start if the two differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "DISCOVERY",
    "OPENID_CONFIGURATION_PATH",
    "ROUTES",
    "WELL_KNOWN_PATH",
    "Route",
    "advertised_urls",
    "endpoint_name",
    "endpoint_url",
    "page_url",
    "well_known_paths",
]

WELL_KNOWN_PATH = "/.well-known/oauth-authorization-server"  # RFC 8414 §3
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"  # OIDC Discovery §4


@dataclass(frozen=True)
class Route:
    name: str  # the handler's key, the metric label and the OpenAPI operation
    path: str  # relative to the issuer
    methods: tuple[str, ...]
    advertised_as: str | None = None  # the RFC 8414 §2 metadata member naming its URL
    browser: bool = False  # a page or redirect a browser follows (served under the issuer path)


ROUTES: tuple[Route, ...] = (
    Route("authorization", "/authorize", ("GET", "POST"), "authorization_endpoint", True),
    Route("interaction", "/interaction/{uid}", ("GET", "POST"), None, True),
    Route("interaction_resume", "/interaction/{uid}/resume", ("GET",), None, True),
    Route("end_session", "/logout", ("GET", "POST"), "end_session_endpoint", True),
    Route("userinfo", "/userinfo", ("GET", "POST"), "userinfo_endpoint"),
    Route("token", "/token", ("POST",), "token_endpoint"),
    Route("introspection", "/introspect", ("POST",), "introspection_endpoint"),
    Route("revocation", "/revoke", ("POST",), "revocation_endpoint"),
    Route("jwks", "/jwks.json", ("GET",), "jwks_uri"),
    Route("healthz", "/healthz", ("GET",)),
    Route("readyz", "/readyz", ("GET",)),
    Route("metrics", "/metrics", ("GET",)),
    Route("openapi", "/openapi.json", ("GET",)),
)
DISCOVERY = "discovery"  # the metadata's own name: served at the well-known paths below

_BY_NAME: Mapping[str, Route] = {route.name: route for route in ROUTES}
_BY_PATH: Mapping[str, str] = {route.path: route.name for route in ROUTES if "{" not in route.path}
# Templated paths, by their fixed segments: "/interaction/{uid}/resume" -> ("interaction", None,
# "resume"); None matches any one segment.
_TEMPLATES: tuple[tuple[tuple[str | None, ...], str], ...] = tuple(
    (
        tuple(None if part.startswith("{") else part for part in route.path.split("/")[1:]),
        route.name,
    )
    for route in ROUTES
    if "{" in route.path
)


def _templated(path: str) -> str | None:
    parts = path.split("/")[1:]
    for template, name in _TEMPLATES:
        if len(parts) == len(template) and all(
            (want is None and got) or want == got for want, got in zip(template, parts, strict=True)
        ):
            return name
    return None


def endpoint_url(issuer: str, name: str) -> str:
    """The absolute URL of the route ``name`` under ``issuer``."""
    return issuer + _BY_NAME[name].path


def page_url(issuer: str, name: str, **params: str) -> str:
    """The absolute URL of a templated route, e.g. ``interaction`` with ``uid``."""
    return issuer + _BY_NAME[name].path.format(**params)


def advertised_urls(issuer: str) -> dict[str, str]:
    """The endpoint URLs of the RFC 8414 metadata, by member name."""
    return {route.advertised_as: issuer + route.path for route in ROUTES if route.advertised_as}


def endpoint_name(path: str, prefix: str = "") -> str:
    """The route a request path belongs to (the metric label); ``other`` when none.

    ``prefix`` is the issuer's path, under which every route is served as well.
    """
    name = _BY_PATH.get(path) or _templated(path)
    if name is not None:
        return name
    if "/.well-known/" in path:
        return DISCOVERY
    if prefix and path.startswith(prefix + "/"):
        rest = path[len(prefix) :]
        return _BY_PATH.get(rest) or _templated(rest) or "other"
    return "other"


def well_known_paths(issuer: str) -> list[str]:
    """Where the metadata is served, for an issuer with or without a path.

    RFC 8414 §3.1 puts the well-known segment before the issuer's path; OpenID Connect Discovery
    §4 appends it after the path, and some clients try the RFC 8414 form of the OpenID name too.
    The root paths are served as well: behind a proxy that strips the issuer's path they are where
    ``{issuer}/.well-known/...`` arrives.
    """
    path = urlsplit(issuer).path.rstrip("/")
    if not path:
        return [WELL_KNOWN_PATH, OPENID_CONFIGURATION_PATH]
    return [
        WELL_KNOWN_PATH,
        WELL_KNOWN_PATH + path,
        OPENID_CONFIGURATION_PATH,
        path + OPENID_CONFIGURATION_PATH,
        OPENID_CONFIGURATION_PATH + path,
    ]
