"""Statements of a running bulk job's items (`bulk.apply_item` and the job's workflow): claiming an item's
attempt, recording why it waits, ending it once, and counting it on its job's row.

Each is one statement: an item's attempt is counted and its data read in one UPDATE ... RETURNING, and an
ended item is counted on the job in one UPDATE ... RETURNING that answers the counts, so the job's row (which
every item of the job updates) stays locked for one round trip and the caller sees whether it was the last.
The three statements every item runs (its claim, its end, its count) are built once, their values parameters
named apart from the tables' columns (an UPDATE reserves those names): built per call, with their cache keys, they
cost an item about 0.3 ms of a worker's CPU.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Integer, String, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from teamsvoice.core.clock import utcnow
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob

ITEMS = FusionBulkItem.__table__
JOBS = FusionBulkJob.__table__


@dataclass(frozen=True)
class ClaimedItem:
    job_id: int
    upn: str
    data: dict[str, Any]


@dataclass(frozen=True)
class JobCounts:
    """A job's row as one item's count left it."""

    status: str
    total: int
    success: int
    error: int

    @property
    def all_counted(self) -> bool:
        return self.success + self.error >= self.total


_ITEM_ID, _NOW = bindparam("the_item", type_=Integer), bindparam("now", type_=DateTime)
_CLAIM = update(ITEMS).where(ITEMS.c.id == _ITEM_ID, ITEMS.c.status == "pending").values(
    attempts=ITEMS.c.attempts + 1, updated_on=_NOW).returning(ITEMS.c.job_id, ITEMS.c.upn, ITEMS.c.data)


async def claim_attempt(session: AsyncSession, item_id: int) -> ClaimedItem | None:
    """Counts one more attempt of a pending item and answers what it applies; None when the item is not
    pending (ended, cancelled, or gone)."""
    row = (await session.execute(_CLAIM, {"the_item": item_id, "now": utcnow()})).first()
    return ClaimedItem(row.job_id, row.upn, dict(row.data)) if row is not None else None


async def start_job(session: AsyncSession, job_id: int) -> None:
    """A queued job becomes running, in one conditional statement: a cancel committed since the job was read is
    never overwritten (a read, then a write of the status, lost such a cancel: on SQLite the read is outside the
    write's transaction). An ORM statement, so the audit log records the change."""
    await session.execute(update(FusionBulkJob).where(FusionBulkJob.id == job_id, FusionBulkJob.status == "queued").values(
        status="running"), execution_options={"synchronize_session": False})


async def item_status(session: AsyncSession, item_id: int) -> str | None:
    return await session.scalar(select(ITEMS.c.status).where(ITEMS.c.id == item_id))


async def job_of_item(session: AsyncSession, item_id: int) -> int | None:
    return await session.scalar(select(ITEMS.c.job_id).where(ITEMS.c.id == item_id))


async def record_waiting(session: AsyncSession, item_id: int, details: dict[str, Any]) -> None:
    """Why a pending item waits before its next attempt (shown on the job while it waits)."""
    await session.execute(update(ITEMS).where(ITEMS.c.id == item_id, ITEMS.c.status == "pending").values(
        details=details, updated_on=utcnow()))


async def end_item(session: AsyncSession, item_id: int, outcome: dict[str, Any], *, attempted: bool) -> bool:
    """Moves a pending item to its outcome (status, details, error) and, when the caller's attempt of it had
    started (`attempted`), a cancelled one too: the job's cancel marked it while it was in flight. False when it
    has ended already, or was cancelled before it was attempted: an item ends once."""
    done = await session.execute(_END[attempted], {
        "the_item": item_id, "now": utcnow(), "new_status": outcome["status"], "new_details": outcome["details"],
        "new_error": outcome["error"]})
    return done.rowcount == 1  # type: ignore[attr-defined]


_END = {attempted: update(ITEMS).where(
    ITEMS.c.id == _ITEM_ID, ITEMS.c.status.in_(("pending", "cancelled") if attempted else ("pending",))).values(
    # (a None is written as the columns' JSON type writes it, JSON null, as .values(details=None) did)
    updated_on=_NOW, status=bindparam("new_status", type_=String), details=bindparam("new_details", type_=ITEMS.c.details.type),
    error=bindparam("new_error", type_=ITEMS.c.error.type)) for attempted in (True, False)}


async def count_item(session: AsyncSession, job_id: int, *, succeeded: bool) -> JobCounts:
    """Counts one ended item on its job and answers the job's counts and status after it, in one statement.
    (A statement on the table, not on the mapped class: the counters are progress, which the audit log does
    not record, so it need not read the row first.)"""
    row = (await session.execute(_COUNT[succeeded], {"the_job": job_id, "now": utcnow()})).one()
    return JobCounts(row.status, row.total_count, row.success_count, row.error_count)


_COUNT = {succeeded: update(JOBS).where(JOBS.c.id == bindparam("the_job", type_=Integer)).values(
    {counter: counter + 1, JOBS.c.updated_on: _NOW}).returning(
    JOBS.c.status, JOBS.c.total_count, JOBS.c.success_count, JOBS.c.error_count)
    for succeeded, counter in ((True, JOBS.c.success_count), (False, JOBS.c.error_count))}


async def pending_item_ids(session: AsyncSession, job_id: int) -> list[int]:
    return list(await session.scalars(select(ITEMS.c.id).where(ITEMS.c.job_id == job_id, ITEMS.c.status == "pending")))


async def pending_page(session: AsyncSession, job_id: int, after: int, limit: int) -> list[tuple[int, int]]:
    """(id, position) of the job's next pending items after position `after`, in position order."""
    rows = await session.execute(select(ITEMS.c.id, ITEMS.c.position).where(
        ITEMS.c.job_id == job_id, ITEMS.c.position > after, ITEMS.c.status == "pending",
    ).order_by(ITEMS.c.position).limit(limit))
    return [(row.id, row.position) for row in rows]


def queued_jobs(session: Session) -> list[tuple[str, int]]:
    """(job_key, id) of the bulk jobs recorded but not started (a crash between commit and enqueue)."""
    return [(row.job_key, row.id) for row in session.execute(select(JOBS.c.job_key, JOBS.c.id).where(JOBS.c.status == "queued"))]
