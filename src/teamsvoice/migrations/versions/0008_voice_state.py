"""voice state: apply jobs, drift events and settings, drift webhooks and deliveries, number quarantine

Revision ID: 0008_voice_state
Revises: 0006_login_throttles
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_voice_state"
down_revision = "0006_login_throttles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voice_apply_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_key", sa.String(36), nullable=False, unique=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, index=True),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("differences", sa.JSON(), nullable=False),
        sa.Column("desired", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "voice_drift_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, index=True),
        sa.Column("difference_id", sa.String(400), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("drift", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("difference", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True, index=True),
    )
    op.create_table(
        "voice_drift_settings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, unique=True),
        sa.Column("auto_apply", sa.Boolean(), nullable=False),
        sa.Column("last_scan_at", sa.DateTime(), nullable=True),
        sa.Column("last_scan_error", sa.Text(), nullable=True),
    )
    op.create_table(
        "voice_drift_webhooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("reseller_id", sa.Integer(), sa.ForeignKey("resellers.id"), nullable=False, unique=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "voice_drift_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_key", sa.String(36), nullable=False, unique=True),
        sa.Column("webhook_id", sa.Integer(), sa.ForeignKey("voice_drift_webhooks.id"), nullable=False, index=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "voice_number_quarantine",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, index=True),
        sa.Column("e164", sa.String(40), nullable=False),
        sa.Column("previous_holder", sa.String(255), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("e164", name="uq_voice_number_quarantine"),
    )


def downgrade() -> None:
    for table in ("voice_number_quarantine", "voice_drift_deliveries", "voice_drift_webhooks", "voice_drift_settings",
                  "voice_drift_events", "voice_apply_jobs"):
        op.drop_table(table)
