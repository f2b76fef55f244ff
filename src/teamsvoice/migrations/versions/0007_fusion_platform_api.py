"""fusion platform API: login profiles; Required-role strings in the vendor's `<collection>.instance.<verb>`
form, and the roles of the new platform routes granted to existing logins by level

Revision ID: 0007_fusion_platform_api
Revises: 0006_login_throttles
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_fusion_platform_api"
down_revision = "0006_login_throttles"
branch_labels = None
depends_on = None

RENAMED = {
    "tenants.read": "tenants.instance.read",
    "tenants.update": "tenants.instance.update",
    "tenants.delete": "tenants.instance.delete",
    "tenants.instance.subscriptions.read": "tenants.instance.subscriptions.instance.read",
    "tenants.instance.subscriptions.delete": "tenants.instance.subscriptions.instance.delete",
}
_SUB = "tenants.instance.subscriptions.instance"
# Frozen copy of the roles this revision introduces, per login level (domain/fusion/roles.py at this revision).
_TENANT_NEW = [f"{_SUB}.licenses.read", f"{_SUB}.entitlements.list", f"{_SUB}.number_inventory.list",
               f"{_SUB}.msteams.oc.numbers.list",
               "tenants.instance.admins.list", "tenants.instance.admins.create", "tenants.instance.admins.update",
               "tenants.instance.admins.delete", "users.list", "public.country_codes.list"]
_ORG_NEW = _TENANT_NEW + [
    f"{_SUB}.licenses.update", f"{_SUB}.entitlements.create", f"{_SUB}.entitlements.update",
    f"{_SUB}.entitlements.delete", f"{_SUB}.porting.requests.list", f"{_SUB}.porting.requests.create",
    "public.entitlement_types.list", "public.rate_plans.list", "public.owners.list",
    "public.number_inventory.ranges.list", "public.number_inventory.suggestion.read",
    "resellers.list", "resellers.instance.read", "resellers.instance.admins.list",
    "resellers.instance.admins.create", "resellers.instance.admins.update", "resellers.instance.admins.delete",
]
_DISTRIBUTOR_NEW = _ORG_NEW + [
    "distributors.list", "distributors.instance.read", "distributors.instance.admins.list",
    "distributors.instance.admins.create", "distributors.instance.admins.update", "distributors.instance.admins.delete",
]
NEW_BY_LEVEL = {"system": _DISTRIBUTOR_NEW, "distributor": _DISTRIBUTOR_NEW, "reseller": _ORG_NEW,
                "tenant": _TENANT_NEW}


def upgrade() -> None:
    op.create_table(
        "fusion_user_profiles",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("fusion_users.id"), nullable=False, unique=True),
        sa.Column("first_name", sa.String(100), nullable=True),
        sa.Column("last_name", sa.String(100), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("mobile_number", sa.String(40), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    users = sa.table("fusion_users", sa.column("id", sa.Integer()), sa.column("level", sa.String()),
                     sa.column("permissions", sa.JSON()))
    connection = op.get_bind()
    for user_id, level, permissions in connection.execute(sa.select(users.c.id, users.c.level, users.c.permissions)).all():
        held = [RENAMED.get(p, p) for p in (permissions or [])]
        # A login with its level's full default profile (seen by a role only that profile gives) gets the new roles
        # of its level; a login restricted by hand gets only the renames, nothing it was not given.
        marker = f"{_SUB}.msteams.users.list" if level == "tenant" else "tenants.instance.subscriptions.create"
        if marker in held:
            held += [p for p in NEW_BY_LEVEL.get(level, []) if p not in held]
        connection.execute(users.update().where(users.c.id == user_id).values(permissions=sorted(set(held))))


def downgrade() -> None:
    op.drop_table("fusion_user_profiles")
