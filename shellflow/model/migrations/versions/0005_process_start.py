"""process start times: an agent's and a worker's pid are stored with their start time

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00.000000

A pid is used again by the operating system; a pid with its start time names one process
for good. The agent compares both before it refuses a second agent for its node or stops
a worker a previous run left behind (``shellflow.engine.pids.ProcessId``). Rows written
before this revision keep a NULL start: their pid still says whether a process runs, but a
worker so recorded is never signalled, since nothing proves the pid is still that worker.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pid_start", sa.String(length=20), nullable=True))
    with op.batch_alter_table("worker", schema=None) as batch_op:
        batch_op.add_column(sa.Column("process_start", sa.String(length=20), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("worker", schema=None) as batch_op:
        batch_op.drop_column("process_start")
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.drop_column("pid_start")
