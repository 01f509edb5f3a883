"""scoped grants: a right held on one processor alone

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 13:00:00.000000

``flow add privilege -u USER -n READ_CALL --processor P`` (or ``-r ROLE``) grants a right on
processor P alone (the rights of ``shellflow.model.rights.SCOPABLE``): one row in
``user_processor_privileges`` or ``role_processor_privileges``, with who granted it and
when. Deleting the processor deletes its grants; a revocation for a user
(``user_privileges_revoked``) takes the right away everywhere, scoped grants included.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = {"user_processor_privileges": ("user", "users"),
          "role_processor_privileges": ("role", "role")}  # fmt: skip


def upgrade() -> None:
    """Upgrade schema."""
    for table, (holder, holders) in TABLES.items():
        keys = ((holder, holders), ("privilege", "privilege"), ("processor", "processor"))
        op.create_table(
            table,
            *(sa.Column(f"{key}_id", sa.String(length=36), nullable=False) for key, _ in keys),
            sa.Column("granted_by", sa.String(length=80), nullable=True),
            sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True),
            *(
                sa.ForeignKeyConstraint(
                    [f"{key}_id"],
                    [f"{referred}.id"],
                    name=op.f(f"fk_{table}_{key}_id_{referred}"),
                    ondelete="CASCADE",
                )
                for key, referred in keys
            ),
            sa.PrimaryKeyConstraint(
                f"{holder}_id", "privilege_id", "processor_id", name=op.f(f"pk_{table}")
            ),
        )


def downgrade() -> None:
    """Downgrade schema."""
    for table in reversed(TABLES):
        op.drop_table(table)
