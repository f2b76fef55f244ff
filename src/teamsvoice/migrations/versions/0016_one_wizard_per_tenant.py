"""A Microsoft tenant has at most one running onboarding wizard run once the run's step 1 named the tenant: a unique
index on the running runs' tenant. Two subscriptions (two resellers') whose administrator was the same tenant's
could run together, each passing "linked elsewhere" before either linked, and each wrote its own SBC into the
tenant. Runs that already run beside a newer one of the same tenant are stopped first (their workflow stops at its
next step: a run no longer running does nothing more).

Revision ID: 0016_one_wizard_per_tenant
Revises: 0015_one_running_wizard
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_one_wizard_per_tenant"
down_revision = "0015_one_running_wizard"
branch_labels = None
depends_on = None

STOPPED = "Stopped: a newer onboarding wizard run of another subscription was running against the same tenant"


def upgrade() -> None:
    runs = sa.table("fusion_wizard_runs", sa.column("id", sa.Integer), sa.column("ms_tenant_id", sa.String),
                    sa.column("running", sa.Boolean), sa.column("error", sa.Text), sa.column("finished_at", sa.DateTime))
    newest = (sa.select(sa.func.max(runs.c.id)).where(runs.c.running.is_(True), runs.c.ms_tenant_id.is_not(None))
              .group_by(runs.c.ms_tenant_id))
    op.execute(runs.update().where(runs.c.running.is_(True), runs.c.ms_tenant_id.is_not(None), runs.c.id.not_in(newest))
               .values(running=False, error=STOPPED, finished_at=sa.func.current_timestamp()))
    op.create_index("uq_fusion_wizard_runs_tenant_running", "fusion_wizard_runs", ["ms_tenant_id"], unique=True,
                    sqlite_where=sa.text("running"), postgresql_where=sa.text("running"))


def downgrade() -> None:
    op.drop_index("uq_fusion_wizard_runs_tenant_running", table_name="fusion_wizard_runs")
