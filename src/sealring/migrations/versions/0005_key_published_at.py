"""When a serving replica first published a signing key (issue 12: pre-publication counts from
there, not from when the row was written).

Revision ID: 0005_key_published_at
Revises: 0004_client_introspect
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_key_published_at"
down_revision: str | None = "0004_client_introspect"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for existing rows: a pending key among them is published (and its activation pushed
    # back by the pre-publication time) by the first server that loads it.
    op.add_column("signing_keys", sa.Column("published_at", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("signing_keys", "published_at")
