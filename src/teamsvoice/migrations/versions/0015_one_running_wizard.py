"""A subscription has at most one running onboarding wizard run: a unique index on the running runs. Two starts at
the same moment both found none running and both ran against the tenant. Runs that already run beside a newer one
are stopped first (their workflow stops at its next step: a run no longer running does nothing more).

Revision ID: 0015_one_running_wizard
Revises: 0014_console_signouts
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_one_running_wizard"
down_revision = "0014_console_signouts"
branch_labels = None
depends_on = None

STOPPED = "Stopped: a newer run of this subscription's wizard was running at the same time"


def upgrade() -> None:
    runs = sa.table("fusion_wizard_runs", sa.column("id", sa.Integer), sa.column("subscription_id", sa.Integer),
                    sa.column("running", sa.Boolean), sa.column("error", sa.Text), sa.column("finished_at", sa.DateTime))
    newest = sa.select(sa.func.max(runs.c.id)).where(runs.c.running.is_(True)).group_by(runs.c.subscription_id)
    op.execute(runs.update().where(runs.c.running.is_(True), runs.c.id.not_in(newest))
               .values(running=False, error=STOPPED, finished_at=sa.func.current_timestamp()))
    op.create_index("uq_fusion_wizard_runs_running", "fusion_wizard_runs", ["subscription_id"], unique=True,
                    sqlite_where=sa.text("running"), postgresql_where=sa.text("running"))


def downgrade() -> None:
    op.drop_index("uq_fusion_wizard_runs_running", table_name="fusion_wizard_runs")
