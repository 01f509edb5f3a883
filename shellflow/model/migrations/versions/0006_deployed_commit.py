"""deployed commit: the exact commit a processor runs, recorded once by its first agent

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:30:00.000000

A processor names a branch, a tag or a commit; an agent used to resolve a branch again on
every deployment, so a restart silently ran whatever the branch pointed to by then. Now the
first agent to deploy it records the commit it resolved in ``deployed_commit``; every agent
(and every later restart) deploys that commit, until ``flow proc update --pull`` or a change
of the processor's repository, branch, tag or commit clears it so that it is resolved again.
Rows written before this revision have none: their next deployment records one.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("processor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deployed_commit", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("processor", schema=None) as batch_op:
        batch_op.drop_column("deployed_commit")
