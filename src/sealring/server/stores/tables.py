"""Every table of the authorization server (migration ``0002_clients``), as SQLAlchemy 2 ORM models.

Timestamps are POSIX seconds (float), like the keys tables, so that an injected clock is all a
test needs.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sealring.db import Base

__all__ = ["AssertionJti", "ClientRow", "RevokedToken", "ServerSecret"]


class ClientRow(Base):
    """A registered OAuth client.  Lists are stored space-separated (no value contains a space)."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # HMAC-SHA-256(server secret, client secret); NULL for public and private_key_jwt clients.
    secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    auth_method: Mapped[str] = mapped_column(String(32))
    grant_types: Mapped[str] = mapped_column(Text, default="")
    scope: Mapped[str] = mapped_column(Text, default="")
    audiences: Mapped[str] = mapped_column(Text, default="")
    redirect_uris: Mapped[str] = mapped_column(Text, default="")
    jwks: Mapped[str | None] = mapped_column(Text)
    jwks_uri: Mapped[str | None] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    introspect: Mapped[bool] = mapped_column(Boolean, default=False)  # migration 0004
    # migration 0008: user login (issue 9)
    skip_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    post_logout_redirect_uris: Mapped[str] = mapped_column(Text, default="")
    id_token_alg: Mapped[str] = mapped_column(String(16), default="ES256")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class AssertionJti(Base):
    """RFC 7523 §3 item 7: a client assertion's ``jti`` is accepted once, across all replicas.

    The primary key is the single-use guarantee: a second insert of the same pair fails in the
    database, whichever replica tries it.
    """

    __tablename__ = "oauth_assertion_jtis"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class RevokedToken(Base):
    """RFC 7009: a revoked access token's ``jti``, kept until the token would have expired."""

    __tablename__ = "oauth_revoked_tokens"

    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    revoked_at: Mapped[float] = mapped_column(Float)


class ServerSecret(Base):
    """The HMAC key for client secrets, when not given by SEALRING_SERVER_SECRET (one row).

    Sealed under the KEK (``secret_enc``, ``kek_id``; migration 0007); ``secret`` holds it in
    clear only in a database made before that and not yet opened by a server with a KEK.
    """

    __tablename__ = "oauth_server_secret"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    secret: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    kek_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float)


Index("ix_oauth_clients_created", ClientRow.created_at)
