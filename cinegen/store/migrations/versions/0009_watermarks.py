"""The invisible watermark (issue 28): the payload of every marked sample, and the operation
and sample index it was made for, so that verify can name the operation that made a file.

The payload is 64 bits as 16 lower-case hex digits (portable; BIGINT is signed). One payload
may map to several operations: the same request and seed give the same payload.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watermarks",
        sa.Column("payload", sa.String(16), primary_key=True),
        sa.Column("operation_id", sa.String(64), primary_key=True),
        sa.Column("sample_index", sa.Integer(), primary_key=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("watermarks")
