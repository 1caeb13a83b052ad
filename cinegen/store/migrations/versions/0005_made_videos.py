"""The sha256 of every video this server made, so that an extension input sent as bytes is
accepted only if this server made it (service/inputs.py); provenance tags can be forged.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "made_videos",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("made_videos")
