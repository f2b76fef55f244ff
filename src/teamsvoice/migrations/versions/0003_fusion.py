"""fusion: logins, sessions, tenants, subscriptions (backed by enterprises), numbers, MS Teams admins,
onboarding wizard runs, SRE group filter

Revision ID: 0003_fusion
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_fusion"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fusion_tenants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("billing_id", sa.String(200), nullable=True),
        sa.Column("markup", sa.Float(), nullable=True),
        sa.Column("owner_reseller_id", sa.Integer(), sa.ForeignKey("resellers.id"), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "fusion_users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(200), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("reseller_id", sa.Integer(), sa.ForeignKey("resellers.id"), nullable=True, index=True),
        sa.Column("fusion_tenant_id", sa.Integer(), sa.ForeignKey("fusion_tenants.id"), nullable=True, index=True),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "fusion_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(36), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("fusion_users.id"), nullable=False, index=True),
        sa.Column("refresh_jti_digest", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "fusion_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fusion_tenant_id", sa.Integer(), sa.ForeignKey("fusion_tenants.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("billing_id", sa.String(200), nullable=True),
        sa.Column("ms_teams_users", sa.Integer(), nullable=False),
        sa.Column("sip_trunk_channels", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "fusion_numbers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("fusion_subscriptions.id"), nullable=False, index=True),
        sa.Column("e164", sa.String(20), nullable=False, unique=True),
        sa.Column("iso_code", sa.String(2), nullable=False),
        sa.Column("country_code", sa.String(4), nullable=False),
        sa.Column("nsn", sa.String(17), nullable=False),
        sa.Column("number_type", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "fusion_msteams_admins",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("fusion_subscriptions.id"), nullable=False, unique=True),
        sa.Column("ms_username", sa.String(255), nullable=False),
        sa.Column("ms_password_encrypted", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "fusion_wizard_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_key", sa.String(36), nullable=False, unique=True),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("fusion_subscriptions.id"), nullable=False, index=True),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(60), nullable=False),
        sa.Column("ms_tenant_id", sa.String(64), nullable=True),
        sa.Column("consent_url", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "fusion_group_filters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("fusion_subscriptions.id"), nullable=False, index=True),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.UniqueConstraint("subscription_id", "group_id", name="uq_fusion_group_filter"),
    )


def downgrade() -> None:
    for table in ("fusion_group_filters", "fusion_wizard_runs", "fusion_msteams_admins", "fusion_numbers",
                  "fusion_subscriptions", "fusion_sessions", "fusion_users", "fusion_tenants"):
        op.drop_table(table)
