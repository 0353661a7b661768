"""Login throttling: failed sign-ins per username and per client IP, shared by replicas.

The table of ``sealring.server.stores.login_tables.LoginThrottleRow``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_login_throttle"
down_revision: str | None = "0005_key_published_at"


def upgrade() -> None:
    op.create_table(
        "oauth_login_throttle",
        sa.Column("key_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_oauth_login_throttle_last_failure_at", "oauth_login_throttle", ["last_failure_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_oauth_login_throttle_last_failure_at", table_name="oauth_login_throttle")
    op.drop_table("oauth_login_throttle")
