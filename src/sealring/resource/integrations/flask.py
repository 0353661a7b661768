"""Flask: a decorator that verifies the bearer token and checks scopes.

::

    auth = TokenAuth(verifier, realm="api")

    @app.get("/items")
    @auth.require_token(scopes=["items:read"])
    def items():
        claims = current_claims()
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import ParamSpec, TypeVar

from flask import Response, g, request

from sealring.errors import SealringError
from sealring.resource.bearer import BearerOptions, error_response, extract_token
from sealring.resource.verifier import AccessTokenClaims, AccessTokenVerifier

__all__ = ["TokenAuth", "current_claims"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_G_KEY = "sealring_token"


def current_claims() -> AccessTokenClaims:
    """The claims verified for the current request (inside a ``require_token`` view)."""
    claims: AccessTokenClaims | None = g.get(_G_KEY)
    if claims is None:
        raise RuntimeError("current_claims() outside a view decorated with require_token")
    return claims


class TokenAuth:
    """Protect Flask views with bearer tokens verified by ``verifier``."""

    def __init__(
        self,
        verifier: AccessTokenVerifier,
        *,
        realm: str | None = None,
        allow_form: bool = False,
        allow_query: bool = False,
    ) -> None:
        self.verifier = verifier
        self.options = BearerOptions(realm=realm, allow_form=allow_form, allow_query=allow_query)

    def _token(self) -> str:
        form: list[str] = []
        if (
            self.options.allow_form
            and request.method not in ("GET", "HEAD")
            and request.mimetype == "application/x-www-form-urlencoded"
        ):
            form = request.form.getlist("access_token")
        query = request.args.getlist("access_token") if self.options.allow_query else []
        return extract_token(
            request.headers.get("Authorization"), form_values=form, query_values=query
        )

    def require_token(
        self, scopes: Collection[str] = ()
    ) -> Callable[[Callable[_P, _R]], Callable[_P, _R | Response]]:
        """Decorate a view: 401/400 without a valid token, 403 without every scope."""
        required = tuple(scopes)

        def decorate(view: Callable[_P, _R]) -> Callable[_P, _R | Response]:
            @functools.wraps(view)
            def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R | Response:
                try:
                    claims = self.verifier.verify(self._token())
                    claims.require_scopes(required)
                except SealringError as exc:
                    answer = error_response(exc, self.options.realm)
                    return Response(
                        answer.body, answer.status, dict(answer.headers), mimetype=answer.media_type
                    )
                setattr(g, _G_KEY, claims)
                return view(*args, **kwargs)

            return guarded

        return decorate
