"""The tables of user login (migration ``0003_login``), as SQLAlchemy 2 typed ORM models.

To be merged into ``stores/tables.py`` with the server's other tables.  Conventions as in the
rest of the schema: timestamps are POSIX seconds (float) so an injected clock is all a test
needs; lists are stored space-separated; every opaque handle (code, refresh token, session
cookie, interaction id) is stored only as its 32-byte keyed hash
(:class:`sealring.server.tokens.handles.HandleHasher`), never in clear.

Single use is a conditional update: ``UPDATE ... SET consumed_at = :now WHERE ... AND
consumed_at IS NULL`` and a row count of one, on SQLite and PostgreSQL alike.  Consumed codes
and refresh tokens are kept until they expire, so a replay is recognised as a replay (RFC 6749
§4.1.2, RFC 9700 §4.14.2) rather than as an unknown value.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sealring.db import Base

__all__ = [
    "AccountRow",
    "AuthorizationCodeRow",
    "BrowserSessionRow",
    "ConsentRow",
    "GrantRow",
    "InteractionRow",
    "LoginThrottleRow",
    "RefreshTokenRow",
]

_CLIENT = "oauth_clients.client_id"
_ACCOUNT = "oauth_accounts.subject"


class AccountRow(Base):
    """A user.  ``subject`` is the stable ``sub`` (random, never reused); ``username`` is the
    normalised login name (:func:`sealring.server.accounts.normalize_username`)."""

    __tablename__ = "oauth_accounts"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    # argon2id PHC string; NULL: the account cannot sign in with a password.
    password_hash: Mapped[str | None] = mapped_column(Text)
    # Standard claims (OIDC Core §5.1) as a JSON object: name, email, email_verified, ...
    claims: Mapped[str] = mapped_column(Text, default="{}")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    password_changed_at: Mapped[float | None] = mapped_column(Float)


class BrowserSessionRow(Base):
    """A signed-in browser.  The cookie holds a handle whose hash is ``cookie_hash``; the
    ``session_id`` is a separate random value, the ``sid`` of ID tokens (OIDC Front/Back-Channel
    Logout), so publishing it reveals nothing that opens the session."""

    __tablename__ = "oauth_browser_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cookie_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    subject: Mapped[str] = mapped_column(ForeignKey(_ACCOUNT, ondelete="CASCADE"), index=True)
    auth_time: Mapped[float] = mapped_column(Float)
    amr: Mapped[str] = mapped_column(Text, default="")
    acr: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)  # idle lifetime
    expires_at: Mapped[float] = mapped_column(Float, index=True)  # absolute lifetime
    ended_at: Mapped[float | None] = mapped_column(Float)  # logout


class InteractionRow(Base):
    """A login or consent step in progress (``/interaction/{uid}``): the checked authorization
    request waiting for the user.  ``uid_hash`` is the keyed hash of the uid in the URL."""

    __tablename__ = "oauth_interactions"

    uid_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey(_CLIENT, ondelete="CASCADE"))
    # The AuthorizationRequest as JSON, replayed to /authorize when the interaction finishes.
    request: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(String(32))  # "login" | "consent"
    reasons: Mapped[str] = mapped_column(Text, default="")
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("oauth_browser_sessions.session_id", ondelete="SET NULL")
    )
    # What the user did (login or consent result) as JSON, set when the step finishes.
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    consumed_at: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        CheckConstraint("prompt IN ('login', 'consent')", name="ck_oauth_interactions_prompt"),
    )


class GrantRow(Base):
    """What one login and consent gave one client: the family of tokens issued from one
    authorization code.  Revoking the grant revokes exactly that family and the access tokens
    that carry its id, never another device's (RFC 9700 §4.14.2, OAuth 2.1 §Refresh Token)."""

    __tablename__ = "oauth_grants"

    grant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey(_CLIENT, ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(ForeignKey(_ACCOUNT, ondelete="CASCADE"), index=True)
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("oauth_browser_sessions.session_id", ondelete="SET NULL")
    )
    scope: Mapped[str] = mapped_column(Text)
    resources: Mapped[str] = mapped_column(Text, default="")
    # The authentication the ID tokens of this grant repeat on refresh (OIDC Core §12.2).
    auth_time: Mapped[float] = mapped_column(Float)
    amr: Mapped[str] = mapped_column(Text, default="")
    acr: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)  # absolute family lifetime
    revoked_at: Mapped[float | None] = mapped_column(Float)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class AuthorizationCodeRow(Base):
    """An authorization code (RFC 6749 §4.1.2): single use, short-lived, bound to the client,
    the redirect URI, the PKCE challenge, the user, the session and the nonce."""

    __tablename__ = "oauth_authorization_codes"

    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey(_CLIENT, ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(ForeignKey(_ACCOUNT, ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("oauth_browser_sessions.session_id", ondelete="SET NULL")
    )
    redirect_uri: Mapped[str] = mapped_column(Text)
    # RFC 6749 §4.1.3: the token request must repeat redirect_uri if the request had it.
    redirect_uri_in_request: Mapped[bool] = mapped_column(Boolean)
    scope: Mapped[str] = mapped_column(Text)
    resources: Mapped[str] = mapped_column(Text, default="")
    # PKCE is required for every client: an S256 challenge is always 43 characters.
    code_challenge: Mapped[str] = mapped_column(String(43))
    nonce: Mapped[str | None] = mapped_column(Text)
    auth_time: Mapped[float] = mapped_column(Float)
    amr: Mapped[str] = mapped_column(Text, default="")
    acr: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    consumed_at: Mapped[float | None] = mapped_column(Float)
    # Set when the code is redeemed: a replay revokes this grant (RFC 6749 §4.1.2).
    grant_id: Mapped[str | None] = mapped_column(
        ForeignKey("oauth_grants.grant_id", ondelete="SET NULL")
    )

    __table_args__ = (
        # Issue 9: a code lives at most 60 s (plus a millisecond for float rounding).
        CheckConstraint(
            "expires_at <= created_at + 60.001", name="ck_oauth_authorization_codes_lifetime"
        ),
    )


class RefreshTokenRow(Base):
    """One refresh token of a grant's rotation chain.  ``parent_hash`` is unique, so a token
    has at most one successor: a race of two refreshes with one token cannot fork the family."""

    __tablename__ = "oauth_refresh_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    grant_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_grants.grant_id", ondelete="CASCADE"), index=True
    )
    parent_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    generation: Mapped[int] = mapped_column(Integer)
    # May be narrower than the grant's, never wider (RFC 6749 §6).
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)  # idle lifetime
    consumed_at: Mapped[float | None] = mapped_column(Float)
    # Only with a grace window: the successor, sealed under a key derived from the server
    # secret, so a retry of this token inside the window gets the same successor back;
    # cleared when the window closes.
    successor_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        UniqueConstraint("grant_id", "generation", name="uq_oauth_refresh_tokens_generation"),
    )


class ConsentRow(Base):
    """Remembered consent of one user for one client: the scopes granted so far."""

    __tablename__ = "oauth_consents"

    subject: Mapped[str] = mapped_column(ForeignKey(_ACCOUNT, ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey(_CLIENT, ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)


Index("ix_oauth_consents_client", ConsentRow.client_id)


class LoginThrottleRow(Base):
    """Failed sign-ins per username and per client IP (migration ``0006_login_throttle``), in
    the database so every replica sees the same count.  ``key_hash`` is a keyed hash of the
    username or address, so the table does not collect what people typed as a username."""

    __tablename__ = "oauth_login_throttle"

    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[float] = mapped_column(Float, index=True)
    blocked_until: Mapped[float] = mapped_column(Float)
