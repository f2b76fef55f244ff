"""Queries over the job engine's own table (`job_executors`: one row per worker process, beating while it
lives), for `jobs/runtime.py`. Synchronous: the engine's threads and DBOS's steps run them."""

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Executable, Table, delete, func, select, text, update
from sqlalchemy.orm import Session

from teamsvoice.core.db import sync_transaction
from teamsvoice.jobs.models import JobExecutor


def ended_executor_ids(session: Session, own_id: str, *, stale_before: datetime | None) -> list[str]:
    """The other executors that stopped or last beat before `stale_before` (None: every other executor)."""
    query = select(JobExecutor.executor_id).where(JobExecutor.executor_id != own_id)
    if stale_before is not None:
        query = query.where(JobExecutor.stopped.is_(True) | (JobExecutor.heartbeat_at < stale_before))
    return list(session.scalars(query))


def claim_executor(session: Session, executor_id: str) -> bool:
    """Deletes the executor's row; True for the one caller that did (it recovers that executor's work)."""
    return session.execute(delete(JobExecutor).where(JobExecutor.executor_id == executor_id)).rowcount == 1  # type: ignore[attr-defined]


def mark_stopped(session: Session, executor_id: str) -> None:
    session.execute(update(JobExecutor).where(JobExecutor.executor_id == executor_id).values(stopped=True))


def live_workers(session: Session, *, beating_since: datetime) -> list[JobExecutor]:
    """The executors that run work (not the API's) and have not stopped and beat since `beating_since`."""
    return list(session.scalars(select(JobExecutor).where(
        JobExecutor.stopped.is_(False), JobExecutor.heartbeat_at >= beating_since, JobExecutor.role != "api")))


def waiting_per_queue(session: Session, workflow_status: Table, queues: list[str]) -> dict[str, int]:
    """How many workflows wait (enqueued, not started) in each of `queues` that has any, from DBOS's
    `workflow_status` table (in the job engine's system database: `session` is on its engine)."""
    query = (select(workflow_status.c.queue_name, func.count())
             .where(workflow_status.c.queue_name.in_(queues), workflow_status.c.status == "ENQUEUED")
             .group_by(workflow_status.c.queue_name))
    return dict(session.execute(query).tuples().all())


def items_per_partition(session: Session, workflow_status: Table, queue: str) -> dict[str, int]:
    """How many workflows of `queue` each of its partitions has waiting or running (enqueued or pending), from DBOS's
    `workflow_status` table (`session` on the job engine's engine): one grouped COUNT over DBOS's index of the work in
    flight."""
    query = (select(workflow_status.c.queue_partition_key, func.count())
             .where(workflow_status.c.queue_name == queue, workflow_status.c.status.in_(("ENQUEUED", "PENDING")),
                    workflow_status.c.queue_partition_key.is_not(None))
             .group_by(workflow_status.c.queue_partition_key))
    return dict(session.execute(query).tuples().all())


def analyze(session: Session, table: str) -> None:
    """Refreshes PostgreSQL's planner statistics of `table` (its name as PostgreSQL reads it, quoted)."""
    session.execute(text(f"ANALYZE {table}"))


def insert_many(connection: Connection | Session, insert: Executable, rows: list[dict[str, Any]], *, returning: bool) -> list[Any]:
    """Runs `insert` (an INSERT of DBOS's tables built without values) with `rows` as its parameters: one statement,
    compiled once and cached, the rows sent in as few round trips (SQLAlchemy's insertmanyvalues). Answers the RETURNING
    rows when `returning`, else []."""
    result = connection.execute(insert, rows)
    return list(result) if returning else []


def first_column(engine: Engine, statement: Executable) -> list[Any]:
    """Runs `statement` (one DBOS built: its search of a queue's partitions) in a transaction of its own, as DBOS runs
    it; answers its rows' first column."""
    with sync_transaction(engine) as session:
        return [row[0] for row in session.execute(statement).fetchall()]
