"""audit: an append-only trail of who changed what, who was refused, who logged in

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 11:00:00.000000

Every change of the network, of a privilege, role or user, every refusal and every login
appends one row (``shellflow.model.audit``); ``flow ls audit`` reads them. Triggers refuse
an UPDATE or a DELETE of a row on both databases, so the trail can only grow through
shellflow (dropping the table, as ``flow db drop`` does, still removes it whole).
Reading the trail takes the new right READ_AUDIT; reading calls READ_CALL, listening LISTEN:
their privilege rows are added here.

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shellflow.model.base import UTCDateTime, new_id, utcnow

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "the audit trail is append-only"

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{REFUSAL}';
END;
$$ LANGUAGE plpgsql
"""


NEW_RIGHTS = ("READ_AUDIT", "READ_CALL", "LISTEN")


def _seed_read_audit() -> None:
    """The privilege rows of the rights new in this release, unless present (a database made
    at this head has them from the initial revision, which seeds every right of
    ``shellflow.model.rights``)."""
    privilege = sa.table(
        "privilege",
        *(sa.column(c) for c in ("id", "name", "right", "status", "requested_status", "enabled")),
        sa.column("created", UTCDateTime()),
        sa.column("lastupdated", UTCDateTime()),
    )
    bind = op.get_bind()
    held = set(bind.execute(sa.select(privilege.c.name)).scalars())
    now = utcnow()
    rows = [{
        "id": new_id(), "name": right, "right": right, "status": "ready",
        "requested_status": "ready", "enabled": True, "created": now, "lastupdated": now,
    } for right in NEW_RIGHTS if right not in held]  # fmt: skip
    if rows:
        op.bulk_insert(privilege, rows)


def upgrade() -> None:
    """Upgrade schema."""
    _seed_read_audit()
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("who", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_who"), ["who"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit"
            " FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_no_{event.lower()} BEFORE {event} ON audit"
                f" BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )


def downgrade() -> None:
    """Downgrade schema (the READ_AUDIT privilege row stays: grants may hold it)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_append_only ON audit")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_who"))
        batch_op.drop_index(batch_op.f("ix_audit_at"))
    op.drop_table("audit")
