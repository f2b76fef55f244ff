"""fusion group reads: the roles of `groups/{uuid}/licenses`, `groups/{uuid}/number_inventory_type` and a
subscription's `number_inventory_type` granted to existing logins with their level's full default profile (as
0007 and 0008 did); a login restricted by hand gets nothing it was not given

Revision ID: 0020_fusion_group_reads
Revises: 0016_one_wizard_per_tenant
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_fusion_group_reads"
down_revision = "0016_one_wizard_per_tenant"
branch_labels = None
depends_on = None

_SUB = "tenants.instance.subscriptions.instance"
# Frozen copy of the roles this revision introduces, per login level (domain/fusion/roles.py at this revision).
_TENANT_NEW = [f"{_SUB}.number_inventory_type.read"]
_ORG_NEW = _TENANT_NEW + ["groups.instance.licenses.list", "groups.instance.number_inventory_type.read"]
NEW_BY_LEVEL = {"system": _ORG_NEW, "distributor": _ORG_NEW, "reseller": _ORG_NEW, "tenant": _TENANT_NEW}


def upgrade() -> None:
    users = sa.table("fusion_users", sa.column("id", sa.Integer()), sa.column("level", sa.String()),
                     sa.column("permissions", sa.JSON()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.level, users.c.permissions)).all()
    for user_id, level, permissions in rows:
        held = list(permissions or [])
        # A login with its level's full default profile (seen by a role only that profile gives) gets the new roles.
        marker = f"{_SUB}.msteams.users.list" if level == "tenant" else "tenants.instance.subscriptions.create"
        if marker in held:
            connection.execute(users.update().where(users.c.id == user_id).values(
                permissions=sorted(set(held) | set(NEW_BY_LEVEL.get(level, [])))))


def downgrade() -> None:
    pass  # the roles stay granted: a login holding a role no route checks is harmless
