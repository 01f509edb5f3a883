"""join state: the arguments waiting at join targets, one row per (flow run, target)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:11:33.953763

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "join_state",
        sa.Column("flow", sa.String(length=200), nullable=False),
        sa.Column("target_id", sa.String(length=36), nullable=False),
        sa.Column("arrivals", sa.Text(), nullable=False),
        sa.Column("lastupdated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["socket.id"],
            name=op.f("fk_join_state_target_id_socket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_join_state")),
        sa.UniqueConstraint("flow", "target_id", name=op.f("uq_join_state_flow_target_id")),
    )
    with op.batch_alter_table("join_state", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_join_state_target_id"), ["target_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("join_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_join_state_target_id"))
    op.drop_table("join_state")
