"""Keys with an admin flag, an expiry, a revocation and limits of their own (NULL: the
server's default from settings; 0: none); and the per-minute request counters that every
process of a deployment shares (api/auth.py's rate limits).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("expire_time", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("revoke_time", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("max_concurrent", sa.Integer()))
        batch.add_column(sa.Column("video_seconds_per_day", sa.Integer()))
        batch.add_column(sa.Column("requests_per_minute", sa.Integer()))
    op.create_table(
        "rate_counts",
        sa.Column("owner", sa.String(64), primary_key=True),  # the key id
        sa.Column("kind", sa.String(16), primary_key=True),  # requests | polls
        sa.Column("minute", sa.BigInteger(), primary_key=True),  # unix time // 60
        sa.Column("count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_counts")
    with op.batch_alter_table("api_keys") as batch:
        for name in (
            "requests_per_minute",
            "video_seconds_per_day",
            "max_concurrent",
            "revoke_time",
            "expire_time",
            "admin",
        ):
            batch.drop_column(name)
