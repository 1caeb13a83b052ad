"""Usage metering: one row per succeeded operation, written in the transaction that ends it
(store/db.py `finish_operation`), kept after the operation and its files are deleted.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("operation_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64)),  # the key id; NULL for the anonymous owner
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(16), nullable=False),
        sa.Column("audio", sa.Boolean(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("engine_seconds", sa.Float(), nullable=False),
        sa.Column("veo_price_per_second", sa.Float()),  # NULL: Veo has no price for it
        sa.Column("veo_price_usd", sa.Float()),
        sa.Column("finish_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),  # finish_time's UTC date
    )
    op.create_index("ix_usage_finish_time", "usage", ["finish_time"])
    op.create_index("ix_usage_owner_finish_time", "usage", ["owner", "finish_time"])


def downgrade() -> None:
    op.drop_index("ix_usage_owner_finish_time", table_name="usage")
    op.drop_index("ix_usage_finish_time", table_name="usage")
    op.drop_table("usage")
