"""An index on operations (owner, create_time): the fair choice of the next job looks up, for
each key with queued jobs, its operation just before the head of its queue (store/db.py,
`_fair_next_select`), one index lookup instead of a scan of the key's history.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_operations_owner_create_time", "operations", ["owner", "create_time"])


def downgrade() -> None:
    op.drop_index("ix_operations_owner_create_time", table_name="operations")
