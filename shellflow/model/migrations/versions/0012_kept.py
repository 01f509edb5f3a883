"""metrics kept for analysis: one row per socket and minute (``flow ls metrics``)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 14:00:00.000000

The roll-up run once a minute by the agent holding the scheduler's lease
(``shellflow.engine.fleet.rollup``) writes them from the call records, and prunes those older
than the retention (30 days). Keyed by socket name and minute: a unique index, which the
roll-up's upsert names, so a minute rolled up twice keeps one row.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shellflow.model.base

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("socket", sa.String(length=200), nullable=False),
        sa.Column("socket_id", sa.String(length=36), nullable=True),
        sa.Column("minute", shellflow.model.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("p50", sa.Float(), nullable=True),
        sa.Column("p90", sa.Float(), nullable=True),
        sa.Column("p99", sa.Float(), nullable=True),
        sa.Column("max", sa.Float(), nullable=True),
        sa.Column("queue_depth", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["socket_id"],
            ["socket.id"],
            name=op.f("fk_metrics_socket_id_socket"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
    )
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_metrics_minute"), ["minute"], unique=False)
        batch_op.create_index(batch_op.f("ix_metrics_socket_id"), ["socket_id"], unique=False)
        batch_op.create_index("ix_metrics_socket_minute", ["socket", "minute"], unique=True)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_metrics_socket_minute")
        batch_op.drop_index(batch_op.f("ix_metrics_socket_id"))
        batch_op.drop_index(batch_op.f("ix_metrics_minute"))
    op.drop_table("metrics")
