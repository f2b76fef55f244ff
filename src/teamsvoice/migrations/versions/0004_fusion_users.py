"""fusion users: customer licences, templates, bulk jobs and items, resource accounts

Revision ID: 0004_fusion_users
Revises: 0003_fusion
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_fusion_users"
down_revision = "0003_fusion"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fusion_user_licences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("voice_user_id", sa.Integer(), sa.ForeignKey("teams_voice_users.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("customer_licenses", sa.JSON(), nullable=False),
    )
    op.create_table(
        "fusion_templates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("fusion_subscriptions.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("product_key", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("location", sa.String(2), nullable=True),
        sa.Column("vrp", sa.String(200), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("licenses", sa.JSON(), nullable=False),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.Column("updated_on", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("subscription_id", "name", name="uq_fusion_template_name"),
    )
    op.create_table(
        "fusion_bulk_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_key", sa.String(36), nullable=False, unique=True),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("fusion_subscriptions.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total_count", sa.Integer(), nullable=False),
        sa.Column("success_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.Column("updated_on", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "fusion_bulk_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("fusion_bulk_jobs.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("upn", sa.String(255), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.Column("updated_on", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("job_id", "position", name="uq_fusion_bulk_item_position"),
    )
    op.create_table(
        "fusion_resource_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_key", sa.String(36), nullable=False, unique=True),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("fusion_subscriptions.id"), nullable=False, index=True),
        sa.Column("user_principal_name", sa.String(255), nullable=False),
        sa.Column("microsoft_user_id", sa.String(64), nullable=True, index=True),
        sa.Column("voice_user_id", sa.Integer(), sa.ForeignKey("teams_voice_users.id"), nullable=True),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("account_type", sa.String(20), nullable=False),
        sa.Column("location", sa.String(2), nullable=False),
        sa.Column("desired", sa.JSON(), nullable=False),
        sa.Column("customer_licenses", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.Column("updated_on", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("fusion_resource_accounts", "fusion_bulk_items", "fusion_bulk_jobs", "fusion_templates",
                  "fusion_user_licences"):
        op.drop_table(table)
