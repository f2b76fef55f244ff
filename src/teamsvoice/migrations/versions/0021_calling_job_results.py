"""Calling jobs' per-user results become rows: `calling_jobs.results` was one JSON document per job (user principal
name -> result), rewritten whole by each batch of 20 users and by each WAITING note (a 5,000-user sync or refresh
wrote and read the growing document 250 times and more), and read whole by the staff Jobs page to count it. Each
result is now a row of `calling_job_results` (job, key, status, result, updated), upserted on its own, counted per
job by the database and read in pages; each job's document is moved into rows in its order (the rows' ids keep it,
as getSyncJobStatus lists them) and emptied.

The column stays, empty ({}): a released table's columns are not altered (docs/CONTRIBUTING.md), it is NOT NULL with
no server default (so the model still writes {} into it), and on SQLite dropping it rebuilds `calling_jobs` (a
copy, then a DROP of the old table, which with foreign keys enforced deletes the rows just moved through their ON
DELETE CASCADE). The downgrade moves the rows back into each job's document and drops the table.

Revision ID: 0021_calling_job_results
Revises: 0012_neutral_calling_results (the calling tables' branch)
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0021_calling_job_results"
down_revision = "0012_neutral_calling_results"
branch_labels = None
depends_on = None

JOBS_PER_READ = 50  # a job may hold thousands of results: a few jobs' documents (or rows) in memory at a time
KEY_LENGTH = 255

jobs = sa.table("calling_jobs", sa.column("id", sa.Integer), sa.column("results", sa.JSON),
                sa.column("created_at", sa.DateTime), sa.column("finished_at", sa.DateTime))
results = sa.table("calling_job_results", sa.column("id", sa.Integer), sa.column("job_id", sa.Integer),
                   sa.column("key", sa.String), sa.column("status", sa.String), sa.column("result", sa.JSON),
                   sa.column("updated_at", sa.DateTime))


def rows_of(job_id: int, document: Any, updated_at: Any) -> list[dict[str, Any]]:
    """A job's stored document as rows, in its order: a result's status as the row's ("" when it has none)."""
    if not isinstance(document, dict):
        return []
    return [{"job_id": job_id, "key": str(key)[:KEY_LENGTH], "result": result, "updated_at": updated_at,
             "status": str(result.get("status") or "")[:40] if isinstance(result, dict) else ""}
            for key, result in document.items()]


def _job_pages(connection: sa.Connection) -> Any:
    after = 0
    while True:
        page = connection.execute(sa.select(jobs.c.id, jobs.c.results, jobs.c.created_at, jobs.c.finished_at).where(
            jobs.c.id > after).order_by(jobs.c.id).limit(JOBS_PER_READ)).all()
        if not page:
            return
        yield page
        after = page[-1].id


def upgrade() -> None:
    op.create_table(
        "calling_job_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("calling_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(KEY_LENGTH), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("job_id", "key", name="uq_calling_job_result_key"),
    )
    connection = op.get_bind()
    for page in _job_pages(connection):
        for job in page:
            rows = rows_of(job.id, job.results, job.finished_at or job.created_at)
            if rows:
                connection.execute(sa.insert(results), rows)
            if job.results != {}:
                connection.execute(sa.update(jobs).where(jobs.c.id == job.id).values(results={}))


def downgrade() -> None:
    connection = op.get_bind()
    for page in _job_pages(connection):
        ids = [job.id for job in page]
        documents: dict[int, dict[str, Any]] = {job_id: {} for job_id in ids}
        for row in connection.execute(sa.select(results.c.job_id, results.c.key, results.c.result).where(
                results.c.job_id.in_(ids)).order_by(results.c.id)):
            documents[row.job_id][row.key] = row.result
        for job_id, document in documents.items():
            if document:
                connection.execute(sa.update(jobs).where(jobs.c.id == job_id).values(results=document))
    op.drop_table("calling_job_results")
