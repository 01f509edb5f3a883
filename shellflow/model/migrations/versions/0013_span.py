"""span: a processor spread over several nodes reports its workers per share

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 16:00:00.000000

A processor that no single node can hold is placed as several deployments (shares) on
several nodes (``shellflow.engine.fleet.spread``). Each share's worker autoscales on its own
and reports what it runs in its deployment row (``workers_current``, ``workers_desired``,
``scale_reason``); the processor row holds their sums (``flow ls processor --json``).

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("workers_current", "workers_desired")


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("scale_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.drop_column("scale_reason")
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
