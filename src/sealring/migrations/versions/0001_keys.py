"""Signing keys, their audit trail and the generation counter replicas poll."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001_keys"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("backend", sa.String(8), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("private_enc", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(32), nullable=True),
        sa.Column("hsm_ref", sa.String(128), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("activates_at", sa.Float(), nullable=True),
        sa.Column("activated_at", sa.Float(), nullable=True),
        sa.Column("retires_at", sa.Float(), nullable=True),
        sa.Column("retired_at", sa.Float(), nullable=True),
        sa.Column("removes_at", sa.Float(), nullable=True),
        sa.Column("removed_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'active', 'retired', 'removed', 'revoked')",
            name="ck_signing_keys_state",
        ),
        sa.CheckConstraint("backend IN ('db', 'hsm')", name="ck_signing_keys_backend"),
    )
    # The lifecycle's invariants, enforced by the database whatever a replica does: one
    # active and at most one pending key per algorithm.
    for state in ("active", "pending"):
        op.create_index(
            f"uq_signing_keys_one_{state}",
            "signing_keys",
            ["alg"],
            unique=True,
            sqlite_where=sa.text(f"state = '{state}'"),
            postgresql_where=sa.text(f"state = '{state}'"),
        )
    op.create_index("ix_signing_keys_state", "signing_keys", ["state"])
    op.create_table(
        "signing_key_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kid", sa.String(64), nullable=False, index=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
    )
    op.create_table(
        "signing_key_generation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO signing_key_generation (id, generation) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("signing_key_generation")
    op.drop_table("signing_key_events")
    op.drop_index("ix_signing_keys_state", table_name="signing_keys")
    for state in ("active", "pending"):
        op.drop_index(f"uq_signing_keys_one_{state}", table_name="signing_keys")
    op.drop_table("signing_keys")
