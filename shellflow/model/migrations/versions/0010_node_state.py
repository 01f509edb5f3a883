"""node state: nodes can be cordoned or drained, and a deployment names the node serving it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 13:00:00.000000

``node.state`` is ``active`` (placement may put processors there), ``cordoned`` (no new
placement; what runs there stays) or ``drained`` (no placement, and the placement moves what
was there to other live nodes): ``flow node cordon|uncordon|drain``. ``deployment.node_id``
names the one node whose agent serves a deployment: agents used to match deployments by
hostname, so several agents of one machine (``flow agent start --node ...``) all served one
deployment. Rows written before this revision have no node: the placement binds each to a
live node of its host on its next pass.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=20), nullable=False, server_default="active")
        )
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_deployment_node_id"), ["node_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_deployment_node_id_node"), "node", ["node_id"], ["id"],
            ondelete="CASCADE",
        )  # fmt: skip


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deployment_node_id_node"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_deployment_node_id"))
        batch_op.drop_column("node_id")
    with op.batch_alter_table("node", schema=None) as batch_op:
        batch_op.drop_column("state")
