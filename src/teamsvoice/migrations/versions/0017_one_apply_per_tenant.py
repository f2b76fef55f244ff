"""A tenant has at most one unfinished (queued or running) voice-state apply job: a unique index on the unfinished
jobs' enterprise. Applies started at the same moment each found none running, and each acted on Microsoft (the same
number assigned again and again, the same routes created twice). Jobs that are unfinished beside a newer one of the
same enterprise are ended first, as failed, saying why (their workflow acts no more at its next chunk: a job no
longer running does nothing; the catalogue can retry it once the newer one has ended).

On the voice-state branch, after the revision that created the table.

Revision ID: 0017_one_apply_per_tenant
Revises: 0008_voice_state
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_one_apply_per_tenant"
down_revision = "0008_voice_state"
branch_labels = None
depends_on = None

STOPPED = "Stopped: a newer apply of this tenant was queued or running at the same time"
UNFINISHED = ("queued", "running")  # as the models have it when this revision was written


def upgrade() -> None:
    jobs = sa.table("voice_apply_jobs", sa.column("id", sa.Integer), sa.column("enterprise_id", sa.Integer),
                    sa.column("status", sa.String), sa.column("error", sa.Text), sa.column("finished_at", sa.DateTime))
    newest = (sa.select(sa.func.max(jobs.c.id)).where(jobs.c.status.in_(UNFINISHED))
              .group_by(jobs.c.enterprise_id))
    op.execute(jobs.update().where(jobs.c.status.in_(UNFINISHED), jobs.c.id.not_in(newest))
               .values(status="failed", error=STOPPED, finished_at=sa.func.current_timestamp()))
    op.create_index("uq_voice_apply_jobs_unfinished", "voice_apply_jobs", ["enterprise_id"], unique=True,
                    sqlite_where=sa.text("status IN ('queued', 'running')"),
                    postgresql_where=sa.text("status IN ('queued', 'running')"))


def downgrade() -> None:
    op.drop_index("uq_voice_apply_jobs_unfinished", table_name="voice_apply_jobs")
