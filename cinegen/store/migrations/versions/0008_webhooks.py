"""Webhooks (issue 26): the static webhooks of each tenant (WebhookService), and the
delivery outbox that the delivery loop works from.

`webhooks.signing_secrets` is a JSON list, newest first, of
`{"encrypted": <SecretBox token>, "truncated_secret": "whsec_...XXXX",
"expire_time": <RFC 3339 or null>}`; plaintext secrets are never stored.
`webhooks.state`: `enabled` | `disabled` | `disabled_due_to_failed_deliveries`.

`webhook_events` holds one row per event per target, with a `msg_id` that is stable across
retries and shared by every target of one event; `webhook_attempts` one row per try.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64)),  # the key id; NULL for the anonymous owner
        sa.Column("name", sa.String(256), nullable=False, server_default=""),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("subscribed_events", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(48), nullable=False),
        sa.Column("signing_secrets", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhooks_owner_create_time", "webhooks", ["owner", "create_time"])
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("msg_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64)),
        sa.Column("webhook_id", sa.String(64)),  # NULL for a dynamic (webhookConfig) target
        sa.Column("target_uri", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),  # static | dynamic
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),  # the JSON envelope, as text
        sa.Column("user_metadata", sa.Text()),  # JSON text
        sa.Column("operation_id", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),  # pending | delivered | failed
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("single_attempt", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_webhook_events_state_next_attempt_time",
        "webhook_events",
        ["state", "next_attempt_time"],
    )
    op.create_index(
        "ix_webhook_events_webhook_id_create_time",
        "webhook_events",
        ["webhook_id", "create_time"],
    )
    op.create_index("ix_webhook_events_operation_id", "webhook_events", ["operation_id"])
    op.create_index("ix_webhook_events_msg_id", "webhook_events", ["msg_id"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("attempt_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer()),  # the receiver's HTTP status; NULL: no answer
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_webhook_attempts_event_id", "webhook_attempts", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_attempts_event_id", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    for name in (
        "ix_webhook_events_msg_id",
        "ix_webhook_events_operation_id",
        "ix_webhook_events_webhook_id_create_time",
        "ix_webhook_events_state_next_attempt_time",
    ):
        op.drop_index(name, table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index("ix_webhooks_owner_create_time", table_name="webhooks")
    op.drop_table("webhooks")
