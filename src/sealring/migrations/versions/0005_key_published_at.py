"""When a serving replica first published a signing key (issue 12: pre-publication counts from
there, not from when the row was written).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_key_published_at"
down_revision: str | None = "0004_client_introspect"


def upgrade() -> None:
    # NULL for existing rows: a pending key among them is published (and its activation pushed
    # back by the pre-publication time) by the first server that loads it.
    op.add_column("signing_keys", sa.Column("published_at", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("signing_keys", "published_at")
