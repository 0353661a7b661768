"""User login: accounts, browser sessions, interactions, grants, codes, refresh tokens, consents.

The tables of ``sealring.server.stores.login_tables``; see that module for what each column is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_login"
down_revision: str | None = "0002_clients"

_CLIENT = "oauth_clients.client_id"
_ACCOUNT = "oauth_accounts.subject"
_SESSION = "oauth_browser_sessions.session_id"


def _fk(target: str, on_delete: str = "CASCADE") -> sa.ForeignKey:
    return sa.ForeignKey(target, ondelete=on_delete)


def upgrade() -> None:
    op.create_table(
        "oauth_accounts",
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("username", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("claims", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("password_changed_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "oauth_browser_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("cookie_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("subject", sa.String(255), _fk(_ACCOUNT), nullable=False),
        sa.Column("auth_time", sa.Float(), nullable=False),
        sa.Column("amr", sa.Text(), nullable=False),
        sa.Column("acr", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_oauth_browser_sessions_subject", "oauth_browser_sessions", ["subject"])
    op.create_index(
        "ix_oauth_browser_sessions_expires_at", "oauth_browser_sessions", ["expires_at"]
    )
    op.create_table(
        "oauth_interactions",
        sa.Column("uid_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("client_id", sa.String(64), _fk(_CLIENT), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("prompt", sa.String(32), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("session_id", sa.String(64), _fk(_SESSION, "SET NULL"), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("consumed_at", sa.Float(), nullable=True),
        sa.CheckConstraint("prompt IN ('login', 'consent')", name="ck_oauth_interactions_prompt"),
    )
    op.create_index("ix_oauth_interactions_expires_at", "oauth_interactions", ["expires_at"])
    op.create_table(
        "oauth_grants",
        sa.Column("grant_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), _fk(_CLIENT), nullable=False),
        sa.Column("subject", sa.String(255), _fk(_ACCOUNT), nullable=False),
        sa.Column("session_id", sa.String(64), _fk(_SESSION, "SET NULL"), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("resources", sa.Text(), nullable=False),
        sa.Column("auth_time", sa.Float(), nullable=False),
        sa.Column("amr", sa.Text(), nullable=False),
        sa.Column("acr", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("revoked_reason", sa.String(32), nullable=True),
    )
    op.create_index("ix_oauth_grants_client_id", "oauth_grants", ["client_id"])
    op.create_index("ix_oauth_grants_subject", "oauth_grants", ["subject"])
    op.create_index("ix_oauth_grants_expires_at", "oauth_grants", ["expires_at"])
    op.create_table(
        "oauth_authorization_codes",
        sa.Column("code_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("client_id", sa.String(64), _fk(_CLIENT), nullable=False),
        sa.Column("subject", sa.String(255), _fk(_ACCOUNT), nullable=False),
        sa.Column("session_id", sa.String(64), _fk(_SESSION, "SET NULL"), nullable=True),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("redirect_uri_in_request", sa.Boolean(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("resources", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(43), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=True),
        sa.Column("auth_time", sa.Float(), nullable=False),
        sa.Column("amr", sa.Text(), nullable=False),
        sa.Column("acr", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("consumed_at", sa.Float(), nullable=True),
        sa.Column(
            "grant_id",
            sa.String(64),
            _fk("oauth_grants.grant_id", "SET NULL"),
            nullable=True,
        ),
        sa.CheckConstraint(
            "expires_at <= created_at + 60.001", name="ck_oauth_authorization_codes_lifetime"
        ),
    )
    op.create_index(
        "ix_oauth_authorization_codes_expires_at", "oauth_authorization_codes", ["expires_at"]
    )
    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("grant_id", sa.String(64), _fk("oauth_grants.grant_id"), nullable=False),
        sa.Column("parent_hash", sa.LargeBinary(32), nullable=True, unique=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("consumed_at", sa.Float(), nullable=True),
        sa.Column("successor_sealed", sa.LargeBinary(), nullable=True),
        sa.UniqueConstraint("grant_id", "generation", name="uq_oauth_refresh_tokens_generation"),
    )
    op.create_index("ix_oauth_refresh_tokens_grant_id", "oauth_refresh_tokens", ["grant_id"])
    op.create_index("ix_oauth_refresh_tokens_expires_at", "oauth_refresh_tokens", ["expires_at"])
    op.create_table(
        "oauth_consents",
        sa.Column("subject", sa.String(255), _fk(_ACCOUNT), primary_key=True),
        sa.Column("client_id", sa.String(64), _fk(_CLIENT), primary_key=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_oauth_consents_client", "oauth_consents", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_oauth_consents_client", table_name="oauth_consents")
    op.drop_table("oauth_consents")
    op.drop_index("ix_oauth_refresh_tokens_expires_at", table_name="oauth_refresh_tokens")
    op.drop_index("ix_oauth_refresh_tokens_grant_id", table_name="oauth_refresh_tokens")
    op.drop_table("oauth_refresh_tokens")
    op.drop_index("ix_oauth_authorization_codes_expires_at", table_name="oauth_authorization_codes")
    op.drop_table("oauth_authorization_codes")
    op.drop_index("ix_oauth_grants_expires_at", table_name="oauth_grants")
    op.drop_index("ix_oauth_grants_subject", table_name="oauth_grants")
    op.drop_index("ix_oauth_grants_client_id", table_name="oauth_grants")
    op.drop_table("oauth_grants")
    op.drop_index("ix_oauth_interactions_expires_at", table_name="oauth_interactions")
    op.drop_table("oauth_interactions")
    op.drop_index("ix_oauth_browser_sessions_expires_at", table_name="oauth_browser_sessions")
    op.drop_index("ix_oauth_browser_sessions_subject", table_name="oauth_browser_sessions")
    op.drop_table("oauth_browser_sessions")
    op.drop_table("oauth_accounts")
