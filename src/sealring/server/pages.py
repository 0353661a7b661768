"""Server-rendered HTML pages (login, consent, errors): Jinja2 and the headers they need.

Templates are looked up first in a folder the operator chooses, then among the built-in ones in
``sealring/server/templates``, so replacing ``login.html`` alone is enough.  Autoescaping is on
for every template whatever its file name: every value that reaches a page (a client name, a
scope, a login hint) is text from a request or a registration.

Every page carries the headers of :data:`SECURITY_HEADERS`: no framing (RFC 9700 §4.16, CSP
``frame-ancestors 'none'``), no script at all (the pages need none), no sniffing, no caching
(a page may show a CSRF token or a user name) and no ``Referer`` (the URL holds an interaction
id).  Nothing here knows Starlette: :class:`Page` is the body, status and headers that the HTTP
layer turns into a response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import jinja2

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "Page", "PageRenderer"]

# No script, no plugin, no framing; styles and images only from this origin.  form-action is left
# out on purpose: browsers apply it to the redirects after a form post, and the consent form ends
# in a redirect to the client's origin.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
}
_BUILT_IN: Final = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Page:
    """A rendered page: UTF-8 HTML, its status and headers (security headers included)."""

    body: bytes
    status_code: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: dict(SECURITY_HEADERS))
    media_type: str = "text/html; charset=utf-8"


class PageRenderer:
    """The Jinja2 environment for the built-in pages and an operator's replacements."""

    def __init__(self, template_dir: str | Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if template_dir is not None:
            folder = Path(template_dir)
            if not folder.is_dir():
                raise ValueError(f"template folder {str(folder)!r} does not exist")
            loaders.append(jinja2.FileSystemLoader(folder))
        loaders.append(jinja2.FileSystemLoader(_BUILT_IN))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
        )

    def render(self, name: str, context: Mapping[str, object], *, status_code: int = 200) -> Page:
        """Render template ``name`` with ``context``; a missing variable is an error."""
        html = self._env.get_template(name).render(**context)
        return Page(html.encode("utf-8"), status_code)
