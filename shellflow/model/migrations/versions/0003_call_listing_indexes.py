"""call listing indexes: by socket name, and the few unfinished calls among many

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:45:00.000000

``flow ls calls --socket NAME`` filters on the call's name and ``--unfinished`` on a handful
of states; with a million calls both walked the ``started`` index through every other call.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED_WHERE = "state IN ('pending', 'received', 'running', 'retry')"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.create_index("ix_call_name_started", ["name", "started"], unique=False)
        batch_op.create_index(
            "ix_call_unfinished",
            ["started"],
            unique=False,
            postgresql_where=sa.text(UNFINISHED_WHERE),
            sqlite_where=sa.text(UNFINISHED_WHERE),
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_unfinished")
        batch_op.drop_index("ix_call_name_started")
