"""call sources: every call whose result a call received, when there were several

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 20:15:00.000000

A join's target (one argument from each of several plugs) and the final step of a funnel
or parallel receive the results of several calls; ``parent`` names one of them (the last
to arrive) and ``sources`` all of them, as a JSON list, so the call graph draws each edge.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sources", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("sources")
