"""calling services: direct routes, PBX locations and users, CallApp account, app templates, sync jobs

Revision ID: 0002_calling
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_calling"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "direct_routes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, index=True),
        sa.Column("sbc_gateway_id", sa.Integer(), sa.ForeignKey("sbc_gateways.id"), nullable=False, index=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("gateway_fqdn", sa.String(255), nullable=False),
        sa.Column("sip_port", sa.Integer(), nullable=False),
        sa.Column("pstn_usage", sa.String(200), nullable=False),
        sa.Column("voice_route", sa.String(200), nullable=False),
        sa.Column("number_pattern", sa.String(200), nullable=False),
        sa.Column("voice_routing_policy", sa.String(200), nullable=False),
        sa.Column("last_changes", sa.JSON(), nullable=False),
        sa.Column("provisioned_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("enterprise_id", "sbc_gateway_id", name="uq_direct_route_per_gateway"),
    )
    op.create_table(
        "pbx_locations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, index=True),
        sa.Column("pbx_type_id", sa.Integer(), sa.ForeignKey("pbx_types.id"), nullable=False),
        sa.Column("pbx_location", sa.String(200), nullable=False),
        sa.Column("pbx_label", sa.String(200), nullable=False),
        sa.Column("canonical_pbx_sip_domain", sa.String(255), nullable=False),
        sa.Column("proxy_domain_port", sa.Integer(), nullable=False),
        sa.Column("presence_package_type", sa.String(40), nullable=False),
        sa.Column("reg_expires_value", sa.Integer(), nullable=False),
        sa.Column("call_policy", sa.JSON(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("enterprise_id", "pbx_location", name="uq_pbx_location_name"),
    )
    op.create_table(
        "pbx_users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("teams_user_id", sa.String(255), nullable=False),
        sa.Column("microsoft_user_id", sa.String(64), nullable=False),
        sa.Column("voice_user_id", sa.Integer(), sa.ForeignKey("teams_voice_users.id"), nullable=True, unique=True),
        sa.Column("pbx_location_id", sa.Integer(), sa.ForeignKey("pbx_locations.id"), nullable=False, index=True),
        sa.Column("direct_route_id", sa.Integer(), sa.ForeignKey("direct_routes.id"), nullable=True, index=True),
        sa.Column("phone_number", sa.String(40), nullable=False, unique=True),
        sa.Column("pbx_user_id", sa.String(100), nullable=False),
        sa.Column("pbx_auth_user_id", sa.String(100), nullable=False),
        sa.Column("sip_password_encrypted", sa.Text(), nullable=False),
        sa.Column("portal_login_name", sa.String(200), nullable=True),
        sa.Column("portal_password_encrypted", sa.Text(), nullable=True),
        sa.Column("user_type", sa.String(40), nullable=True),
        sa.Column("user_tag", sa.String(200), nullable=True),
        sa.Column("login_id", sa.String(255), nullable=True),
        sa.Column("call_policy", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("enterprise_id", "teams_user_id", name="uq_pbx_user_upn"),
    )
    op.create_table(
        "callapp_service_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, unique=True),
        sa.Column("user_principal_name", sa.String(255), nullable=False),
        sa.Column("microsoft_user_id", sa.String(64), nullable=False),
        sa.Column("password_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "teams_app_templates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, index=True),
        sa.Column("app_type", sa.String(20), nullable=False),
        sa.Column("external_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("branding_image", sa.Text(), nullable=False),
        sa.Column("outline_image", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("enterprise_id", "app_type", name="uq_app_template_per_type"),
    )
    op.create_table(
        "calling_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_key", sa.String(36), nullable=False, unique=True),
        sa.Column("enterprise_id", sa.Integer(), sa.ForeignKey("enterprises.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("graph_token_encrypted", sa.Text(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in ("calling_jobs", "teams_app_templates", "callapp_service_accounts", "pbx_users", "pbx_locations", "direct_routes"):
        op.drop_table(table)
