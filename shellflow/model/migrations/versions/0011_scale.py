"""scale: a processor's worker processes grow and shrink between two bounds

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 14:00:00.000000

``processor.min_workers`` and ``processor.max_workers`` (``flow add|update processor
--min-workers N --max-workers M``): when both are set, the processor's worker grows its pool
while its queues hold waiting calls and shrinks it once idle
(``shellflow.engine.worker.autoscale``). ``workers_current``, ``workers_desired`` and
``scale_reason`` are what its worker last reported (``flow ls processor --json``).

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("min_workers", "max_workers", "workers_current", "workers_desired")


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("processor", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("scale_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("processor", schema=None) as batch_op:
        batch_op.drop_column("scale_reason")
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
