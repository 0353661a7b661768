"""The introspect permission of a client (RFC 7662 §4; issue 10)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_client_introspect"
down_revision: str | None = "0003_login"


def upgrade() -> None:
    # Existing clients get no permission: introspecting another client's token was a leak.
    op.add_column(
        "oauth_clients",
        sa.Column("introspect", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients") as batch:
        batch.drop_column("introspect")
