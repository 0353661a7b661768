"""When the authorization endpoint must show the login or consent page (OIDC Core §3.1.2.1,
§3.1.2.3, §3.1.2.4).

Pure decisions on plain values; the endpoint reads the session, the hint and the remembered
consent, and acts on the answer (``prompt=none`` turns a needed page into ``login_required`` or
``consent_required``, §3.1.2.6).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sealring.server.protocol.authorization_request import AuthorizationRequest

__all__ = ["SignedIn", "consent_needed", "login_reasons"]


@dataclass(frozen=True)
class SignedIn:
    """The browser's current sign-in, as the login checks need it."""

    subject: str
    username: str | None
    auth_time: float


def login_reasons(
    request: AuthorizationRequest,
    signed_in: SignedIn | None,
    *,
    hint_subject: str | None,
    login_hint: str | None,
    now: float,
) -> tuple[str, ...]:
    """Why the user must sign in (again); empty when the current sign-in will do.

    * no session;
    * ``prompt=login`` (``select_account`` too: there is no account chooser, so the login page
      is where another account is picked);
    * ``max_age`` elapsed since ``auth_time`` (``0``: always, like ``prompt=login``);
    * an ``id_token_hint`` for another subject (§3.1.2.1: the OP must not answer for someone
      else), or a ``login_hint`` (normalised username) that is not the signed-in user.
    """
    if signed_in is None:
        return ("no_session",)
    reasons: list[str] = []
    if request.prompt & {"login", "select_account"}:
        reasons.append("prompt")
    if request.max_age is not None and (
        request.max_age == 0 or now - signed_in.auth_time > request.max_age
    ):
        reasons.append("max_age")
    if hint_subject is not None and hint_subject != signed_in.subject:
        reasons.append("id_token_hint")
    if login_hint is not None and login_hint != signed_in.username:
        reasons.append("login_hint")
    return tuple(reasons)


def consent_needed(
    request: AuthorizationRequest, *, skip_consent: bool, remembered: Collection[str]
) -> bool:
    """Whether the consent page must be shown: ``prompt=consent`` always (§3.1.2.1), else any
    requested scope not yet allowed; never for a first-party client (``skip_consent``)."""
    if skip_consent:
        return False
    return "consent" in request.prompt or not set(request.scopes) <= set(remembered)
