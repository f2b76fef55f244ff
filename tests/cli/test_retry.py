"""`bulk.retry_job`: an ended bulk job runs again for its failed and cancelled items only, under new workflow
ids (the console's Retry button, the CLI's `jobs retry` and the APIs call it). The retried run through the job
engine, from a partial job to success, is in tests/cli/test_operator_commands.py (`jobs retry --follow`)."""

import httpx
import pytest
from sqlalchemy import select

from teamsvoice.core.errors import Conflict
from teamsvoice.domain.teams_users import bulk
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob
from tests.api.fusion.support import make_world
from tests.support.database import in_session


async def test_retry_resets_only_failed_and_cancelled_items_under_a_new_key(client: httpx.AsyncClient, live, organisation) -> None:
    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant()
    subscription = await world.create_subscription(tenant["uuid"])

    async def create(session):  # type: ignore[no-untyped-def]
        job = FusionBulkJob(subscription_id=subscription["id"], title="t", job_id="1", total_count=4, status="partial",
                            success_count=1, error_count=1)
        session.add(job)
        await session.flush()
        for position, status in enumerate(("success", "error", "cancelled", "cancelled")):
            session.add(FusionBulkItem(job_id=job.id, position=position, upn=f"u{position}@x.example", data={},
                                       status=status, attempts=1 if status != "cancelled" else 0,
                                       error={"code": 1, "reason": "no"} if status == "error" else None))
        return job.id, job.job_key

    job_id, first_key = await in_session(live, create)

    async def retry(session):  # type: ignore[no-untyped-def]
        job = await session.get(FusionBulkJob, job_id)
        return await bulk.retry_job(session, job), bulk.job_summary(job), job.job_key

    count, summary, new_key = await in_session(live, retry)
    assert count == 3 and new_key != first_key
    assert summary.status == "queued" and summary.success_count == 1 and summary.error_count == 0

    async def items(session):  # type: ignore[no-untyped-def]
        return [(i.status, i.attempts, i.error) for i in await session.scalars(
            select(FusionBulkItem).where(FusionBulkItem.job_id == job_id).order_by(FusionBulkItem.position))]

    assert await in_session(live, items) == [("success", 1, None), ("pending", 1, None), ("pending", 0, None),
                                              ("pending", 0, None)]

    async def retry_again(session):  # type: ignore[no-untyped-def]
        await bulk.retry_job(session, await session.get(FusionBulkJob, job_id))

    with pytest.raises(Conflict, match="still queued"):  # not ended yet: nothing to retry
        await in_session(live, retry_again)

    async def succeed(session):  # type: ignore[no-untyped-def]
        job = await session.get(FusionBulkJob, job_id)
        job.status = "success"
        for item in await session.scalars(select(FusionBulkItem).where(FusionBulkItem.job_id == job_id)):
            item.status = "success"

    await in_session(live, succeed)
    with pytest.raises(Conflict, match="no failed or cancelled item"):
        await in_session(live, retry_again)
