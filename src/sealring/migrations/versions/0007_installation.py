"""Issue 10: an installation id for the HSM objects this database owns, and the server secret
sealed under the KEK.

* ``sealring_installation``: one row, a random id made here. Every PKCS#11 object this
  installation creates carries it in its label, so an installation never takes another's objects
  (a second database on one token, a CLI with the wrong ``--database``) for its own orphans.
* ``oauth_server_secret``: ``secret_enc`` and ``kek_id`` hold the secret as AES-256-GCM under the
  KEK; ``secret`` (clear) becomes nullable. Existing clear secrets are sealed by the first server
  start that has a KEK (the migration has none), with the same value: client secret hashes and
  handles made under it still verify.
"""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa
from alembic import op

revision: str = "0007_installation"
down_revision: str | None = "0006_login_throttle"


def upgrade() -> None:
    installation = op.create_table(
        "sealring_installation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("installation_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.bulk_insert(
        installation,
        [{"id": 1, "installation_id": secrets.token_hex(8), "created_at": time.time()}],
    )
    with op.batch_alter_table("oauth_server_secret") as batch:
        batch.alter_column("secret", existing_type=sa.LargeBinary(64), nullable=True)
        batch.add_column(sa.Column("secret_enc", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("kek_id", sa.String(32), nullable=True))


def downgrade() -> None:
    # A sealed secret cannot be opened here (no KEK): downgrading loses it, so refuse.
    sealed = op.get_bind().execute(
        sa.text("SELECT 1 FROM oauth_server_secret WHERE secret IS NULL")
    )
    if sealed.first() is not None:
        raise RuntimeError(
            "the server secret is sealed under the KEK; set SEALRING_SERVER_SECRET to its value "
            "before downgrading, or keep this revision"
        )
    with op.batch_alter_table("oauth_server_secret") as batch:
        batch.drop_column("kek_id")
        batch.drop_column("secret_enc")
        batch.alter_column("secret", existing_type=sa.LargeBinary(64), nullable=False)
    op.drop_table("sealring_installation")
