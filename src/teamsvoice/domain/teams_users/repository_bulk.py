"""Queries over a subscription's bulk jobs and their items (`bulk.py` holds the rules; the running path's
statements, an item's claim and its outcome, are in `repository_bulk_run.py`)."""

from collections.abc import Sequence

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core import search as text_search
from teamsvoice.core.clock import utcnow
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob


async def job_of_subscription(session: AsyncSession, subscription_id: int, job_id: int) -> FusionBulkJob | None:
    return await session.scalar(select(FusionBulkJob).where(
        FusionBulkJob.id == job_id, FusionBulkJob.subscription_id == subscription_id))


async def jobs_page(session: AsyncSession, subscription_id: int, search: str | None, offset: int,
                    limit: int, *, kinds: Sequence[str] | None = None) -> tuple[list[FusionBulkJob], int]:
    """A page of the subscription's jobs, newest first, whose title or kind contains `search` (any case) and
    whose kind is one of `kinds` (if given), and how many match in all."""
    query = select(FusionBulkJob).where(FusionBulkJob.subscription_id == subscription_id)
    if kinds is not None:
        query = query.where(FusionBulkJob.kind.in_(list(kinds)))
    if search:
        needle = text_search.like_pattern(search)
        query = query.where(or_(text_search.matches(FusionBulkJob.title, needle), text_search.matches(FusionBulkJob.kind, needle)))
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(await session.scalars(query.order_by(FusionBulkJob.id.desc()).offset(offset).limit(limit)))
    return rows, total


async def items_after(session: AsyncSession, job_id: int, after: int, limit: int, *,
                      errors_only: bool = False) -> list[FusionBulkItem]:
    """Up to `limit` of the job's items after position `after`, in order (only those in error if asked)."""
    query = select(FusionBulkItem).where(FusionBulkItem.job_id == job_id, FusionBulkItem.position > after)
    if errors_only:
        query = query.where(FusionBulkItem.status == "error")
    return list(await session.scalars(query.order_by(FusionBulkItem.position).limit(limit)))


async def cancel_unless_ended(session: AsyncSession, job_id: int, ended: Sequence[str]) -> bool:
    """The job becomes cancelled unless its status is one of `ended`, in one conditional statement (a job that
    ended since it was read, its last item counted meanwhile, stays as it ended); True when it was cancelled.
    An ORM statement, so the audit log records the change."""
    done = await session.execute(update(FusionBulkJob).where(
        FusionBulkJob.id == job_id, FusionBulkJob.status.not_in(ended)).values(status="cancelled", updated_on=utcnow()),
        execution_options={"synchronize_session": False})
    return done.rowcount == 1  # type: ignore[attr-defined]


async def cancel_pending_items(session: AsyncSession, job_id: int) -> None:
    """Every item of the job still pending becomes cancelled."""
    await session.execute(update(FusionBulkItem).where(
        FusionBulkItem.job_id == job_id, FusionBulkItem.status == "pending").values(status="cancelled", updated_on=utcnow()))


async def reset_items(session: AsyncSession, job_id: int, statuses: Sequence[str]) -> int:
    """The job's items in one of `statuses` go back to pending, their error and details cleared (attempts
    kept); answers how many."""
    reset = await session.execute(update(FusionBulkItem).where(
        FusionBulkItem.job_id == job_id, FusionBulkItem.status.in_(statuses)).values(
        status="pending", error=None, details=None, updated_on=utcnow()))
    return int(reset.rowcount or 0)  # type: ignore[attr-defined]
