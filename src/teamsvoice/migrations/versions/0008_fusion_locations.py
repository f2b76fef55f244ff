"""fusion locations: a subscription's emergency (civic) addresses and the location of users' numbers; the
location roles granted to existing logins with their level's full default profile

Revision ID: 0008_fusion_locations
Revises: 0007_fusion_platform_api
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_fusion_locations"
down_revision = "0007_fusion_platform_api"
branch_labels = None
depends_on = None

_SUB = "tenants.instance.subscriptions.instance"
# Frozen copy of the roles this revision introduces (every level gets them).
NEW_ROLES = [f"{_SUB}.locations.list", f"{_SUB}.locations.create", f"{_SUB}.locations.update",
             f"{_SUB}.locations.delete", f"{_SUB}.msteams.users.instance.location.update"]


def upgrade() -> None:
    op.create_table(
        "fusion_locations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("fusion_subscriptions.id"), nullable=False, index=True),
        sa.Column("company_name", sa.String(200), nullable=False),
        sa.Column("street", sa.String(200), nullable=False),
        sa.Column("house_number", sa.String(40), nullable=False),
        sa.Column("postbox", sa.String(40), nullable=True),
        sa.Column("postal_code", sa.String(20), nullable=False),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("state", sa.String(100), nullable=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("description", sa.String(200), nullable=True),
        sa.Column("teams_civic_address_id", sa.String(64), nullable=True),
        sa.Column("teams_location_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "fusion_number_locations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("voice_user_id", sa.Integer(), sa.ForeignKey("teams_voice_users.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        sa.Column("location_id", sa.Integer(), sa.ForeignKey("fusion_locations.id"), nullable=False, index=True),
    )
    users = sa.table("fusion_users", sa.column("id", sa.Integer()), sa.column("level", sa.String()),
                     sa.column("permissions", sa.JSON()))
    connection = op.get_bind()
    for user_id, level, permissions in connection.execute(sa.select(users.c.id, users.c.level, users.c.permissions)).all():
        held = list(permissions or [])
        marker = f"{_SUB}.msteams.users.list" if level == "tenant" else "tenants.instance.subscriptions.create"
        if marker in held:
            connection.execute(users.update().where(users.c.id == user_id).values(
                permissions=sorted(set(held) | set(NEW_ROLES))))


def downgrade() -> None:
    op.drop_table("fusion_number_locations")
    op.drop_table("fusion_locations")
