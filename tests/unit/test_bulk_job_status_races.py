"""A bulk job's status when a cancel races its start or its end, on both backends. The job's workflow read the job
and then wrote "running": a cancel committed in between was overwritten (the job showed running with every item
cancelled, and a second cancel was accepted: tests/e2e/test_job_outage.py failed so in CI). A cancel read the job
and then wrote "cancelled": a job whose last item ended in between became cancelled. Each is now one conditional
statement.

A cancel while an item ends took the job's row, then the items'; the item's end takes its item's row, then the job's
to count it: on PostgreSQL the two deadlocked (a probe's `jobs cancel` of a running job printed a traceback and the
job ran on to success)."""

import asyncio
import uuid

import pytest
from sqlalchemy import delete, select, text

from teamsvoice.core.db import create_engine, session_factory, transaction
from teamsvoice.core.errors import Conflict
from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant
from teamsvoice.domain.orgs.models import Enterprise, Reseller
from teamsvoice.domain.teams_users import bulk, repository_bulk_run
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob


@pytest.fixture
async def job(database_url: str):  # type: ignore[no-untyped-def]
    """A queued job with two pending items, in a subscription of its own; answers (sessions, job id)."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    name = f"race-{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        reseller = Reseller(name=name, level="RESELLER")
        session.add(reseller)
        await session.flush()
        tenant = FusionTenant(name=name, owner_reseller_id=reseller.id)
        enterprise = Enterprise(reseller_id=reseller.id, enterprise_name=name)
        session.add_all([tenant, enterprise])
        await session.flush()
        subscription = FusionSubscription(fusion_tenant_id=tenant.id, name="voice", enterprise_id=enterprise.id)
        session.add(subscription)
        await session.flush()
        row = FusionBulkJob(job_id="1", subscription_id=subscription.id, title=name, total_count=2)
        session.add(row)
        await session.flush()
        session.add_all([FusionBulkItem(job_id=row.id, position=position, upn=f"{who}@{name}.example", data={})
                         for position, who in enumerate(("ada", "bob"), start=1)])
        await session.commit()
        ids = (row.id, subscription.id, tenant.id, reseller.id, enterprise.id)
    try:
        yield sessions, ids[0]
    finally:
        async with sessions() as session:
            await session.execute(delete(FusionBulkItem).where(FusionBulkItem.job_id == ids[0]))
            await session.execute(delete(FusionBulkJob).where(FusionBulkJob.id == ids[0]))
            await session.execute(delete(FusionSubscription).where(FusionSubscription.id == ids[1]))
            await session.execute(delete(FusionTenant).where(FusionTenant.id == ids[2]))
            await session.execute(delete(Enterprise).where(Enterprise.id == ids[4]))
            await session.execute(delete(Reseller).where(Reseller.id == ids[3]))
            await session.commit()
        await engine.dispose()


async def _status(sessions, job_id: int) -> str:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return await session.scalar(select(FusionBulkJob.status).where(FusionBulkJob.id == job_id))


async def test_a_cancel_committed_before_the_start_is_kept(job) -> None:  # type: ignore[no-untyped-def]
    sessions, job_id = job
    async with sessions() as session:
        await bulk.cancel_job(session, await session.get(FusionBulkJob, job_id))
        await session.commit()
    async with sessions() as session:  # the job's workflow starts after the cancel
        await repository_bulk_run.start_job(session, job_id)
        await session.commit()
    assert await _status(sessions, job_id) == "cancelled"
    async with sessions() as session:
        with pytest.raises(Conflict, match="has already ended \\(cancelled\\)"):
            await bulk.cancel_job(session, await session.get(FusionBulkJob, job_id))


async def test_a_job_that_ended_after_the_cancel_read_it_stays_ended(job) -> None:  # type: ignore[no-untyped-def]
    sessions, job_id = job
    async with sessions() as session:
        await repository_bulk_run.start_job(session, job_id)
        await session.commit()
    async with sessions() as cancelling:
        seen = await cancelling.get(FusionBulkJob, job_id)
        assert seen is not None and seen.status == "running"
        await cancelling.commit()  # the cancel's request read the job running ...
        async with sessions() as session:  # ... then its last item ended
            ended = await session.get(FusionBulkJob, job_id)
            ended.status = "success"
            await session.commit()
        with pytest.raises(Conflict, match="has already ended \\(success\\)"):
            await bulk.cancel_job(cancelling, seen)
        await cancelling.commit()
    assert await _status(sessions, job_id) == "success"
    async with sessions() as session:
        items = list(await session.scalars(select(FusionBulkItem.status).where(FusionBulkItem.job_id == job_id)))
    assert items == ["pending", "pending"]


async def _until_it_waits_for_a_lock(sessions, pid: int | None) -> None:  # type: ignore[no-untyped-def]
    """Until the PostgreSQL backend `pid` waits for a row lock. SQLite's writers wait inside the driver, unseen:
    there, a moment."""
    if pid is None:
        await asyncio.sleep(0.5)
        return
    for _ in range(200):
        async with sessions() as session:
            waiting = await session.scalar(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
        if waiting == "Lock":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the cancel never waited for the item's row")


async def test_a_cancel_while_an_item_ends_cancels_the_job(job, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The first item's end holds its row (its outcome written, not yet counted on the job) while the job is
    cancelled: the cancel waits for the item, the item is counted, the cancel completes. The second item, never
    started, is the one cancelled."""
    sessions, job_id = job
    async with sessions() as session:
        await repository_bulk_run.start_job(session, job_id)
        await session.commit()
        first, _second = await session.scalars(select(FusionBulkItem.id).where(
            FusionBulkItem.job_id == job_id).order_by(FusionBulkItem.position))
    real_count_item, item_written, counting = repository_bulk_run.count_item, asyncio.Event(), asyncio.Event()

    async def count_item(*args, **kwargs):  # type: ignore[no-untyped-def]
        item_written.set()  # the item's row is written (and locked) in the settle's transaction ...
        await counting.wait()  # ... which counts it on the job once the cancel waits
        return await real_count_item(*args, **kwargs)

    monkeypatch.setattr(repository_bulk_run, "count_item", count_item)

    async def settle() -> None:
        async with transaction(sessions) as session:
            await bulk._settle(session, job_id, first, {"status": "success", "details": {}, "error": None}, attempted=True)

    cancelling_pid: list[int | None] = []

    async def cancel() -> bulk.JobSummary:
        async with transaction(sessions) as session:
            postgres = session.bind.dialect.name == "postgresql"
            cancelling_pid.append(await session.scalar(text("SELECT pg_backend_pid()")) if postgres else None)
            row = await session.get(FusionBulkJob, job_id)
            await bulk.cancel_job(session, row)
            return bulk.job_summary(row)

    settling = asyncio.create_task(settle())
    await asyncio.wait_for(item_written.wait(), 10)
    cancelling = asyncio.create_task(cancel())
    while not cancelling_pid:
        await asyncio.sleep(0.01)
    await _until_it_waits_for_a_lock(sessions, cancelling_pid[0])
    counting.set()
    await asyncio.wait_for(settling, 30)
    summary = await asyncio.wait_for(cancelling, 30)
    assert (summary.status, summary.success_count, summary.error_count, summary.cancelled_count) == ("cancelled", 1, 0, 1)
    assert await _status(sessions, job_id) == "cancelled"
    async with sessions() as session:
        items = list(await session.scalars(select(FusionBulkItem.status).where(
            FusionBulkItem.job_id == job_id).order_by(FusionBulkItem.position)))
    assert items == ["success", "cancelled"]
