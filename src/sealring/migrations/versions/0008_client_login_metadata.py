"""A client's user-login metadata: first-party consent skipping, post-logout redirect URIs and the
ID token algorithm (issue 9; OpenID Connect RP-Initiated Logout §3.1, OIDC Registration §2).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_client_login_metadata"
down_revision: str | None = "0007_installation"


def upgrade() -> None:
    # Existing clients ask for consent and have no logout redirects: nothing is granted silently.
    with op.batch_alter_table("oauth_clients") as batch:
        batch.add_column(
            sa.Column("skip_consent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("post_logout_redirect_uris", sa.Text(), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column(
                "id_token_alg", sa.String(16), nullable=False, server_default=sa.text("'ES256'")
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients") as batch:
        batch.drop_column("id_token_alg")
        batch.drop_column("post_logout_redirect_uris")
        batch.drop_column("skip_consent")
