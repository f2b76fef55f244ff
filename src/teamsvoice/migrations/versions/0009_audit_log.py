"""audit log: who changed what, when, through which API family or console page, with before/after values

Revision ID: 0009_audit_log
Revises: 0008_voice_state
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_audit_log"
down_revision = "0008_voice_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("family", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("actor_login_id", sa.Integer(), nullable=True),
        sa.Column("actor_reseller_id", sa.Integer(), nullable=True),
        sa.Column("on_behalf_of", sa.String(255), nullable=True),
        sa.Column("source", sa.String(400), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("source_ip", sa.String(64), nullable=True),
        sa.Column("action", sa.String(80), nullable=False),
        sa.Column("aggregate", sa.String(60), nullable=False),
        sa.Column("object_id", sa.String(255), nullable=True),
        sa.Column("object_label", sa.String(400), nullable=True),
        sa.Column("owner_reseller_id", sa.Integer(), nullable=True),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("customer", sa.String(255), nullable=True),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_owner_at", "audit_log", ["owner_reseller_id", "at"])


def downgrade() -> None:
    op.drop_table("audit_log")
