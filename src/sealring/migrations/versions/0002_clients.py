"""OAuth clients, single-use assertion jtis, revoked token jtis and the client-secret HMAC key."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_clients"
down_revision: str | None = "0001_keys"


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("auth_method", sa.String(32), nullable=False),
        sa.Column("grant_types", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("audiences", sa.Text(), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("jwks_uri", sa.Text(), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "auth_method IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none')",
            name="ck_oauth_clients_auth_method",
        ),
    )
    op.create_index("ix_oauth_clients_created", "oauth_clients", ["created_at"])
    op.create_table(
        "oauth_assertion_jtis",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_oauth_assertion_jtis_expires_at", "oauth_assertion_jtis", ["expires_at"])
    op.create_table(
        "oauth_revoked_tokens",
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_oauth_revoked_tokens_expires_at", "oauth_revoked_tokens", ["expires_at"])
    op.create_table(
        "oauth_server_secret",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("secret", sa.LargeBinary(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("oauth_server_secret")
    op.drop_index("ix_oauth_revoked_tokens_expires_at", table_name="oauth_revoked_tokens")
    op.drop_table("oauth_revoked_tokens")
    op.drop_index("ix_oauth_assertion_jtis_expires_at", table_name="oauth_assertion_jtis")
    op.drop_table("oauth_assertion_jtis")
    op.drop_index("ix_oauth_clients_created", table_name="oauth_clients")
    op.drop_table("oauth_clients")
