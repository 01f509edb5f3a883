"""identity: sessions and tokens, who granted a privilege and when, failed logins

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:40:00.000000

``login`` rows are sessions (``flow login``) or named tokens (``flow token create``); a
revoked one is kept with its revocation time so its holder is told why it is refused. The
link tables of grants and revocations record who made them and when (``flow ls user``).
``login_failure`` counts consecutive failed logins per user name, which slows guessing.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINKS = ("role_privileges", "user_privileges", "user_privileges_revoked", "user_roles")


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("login", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=10), nullable=False, server_default="session")
        )
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("revoked", sa.DateTime(timezone=True), nullable=True))
    for table in LINKS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("granted_by", sa.String(length=80), nullable=True))
            batch_op.add_column(sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "login_failure",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_login_failure")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("login_failure")
    for table in reversed(LINKS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("granted_at")
            batch_op.drop_column("granted_by")
    with op.batch_alter_table("login", schema=None) as batch_op:
        batch_op.drop_column("revoked")
        batch_op.drop_column("name")
        batch_op.drop_column("kind")
