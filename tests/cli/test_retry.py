"""`bulk.retry_job`: an ended bulk job runs again for its failed and cancelled items only, under new workflow
ids, through the job engine (the console's Retry button, the CLI's `jobs retry` and the APIs call it)."""

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select

from teamsvoice.core.db import create_engine, session_factory
from teamsvoice.core.errors import Conflict
from teamsvoice.domain.teams_users import bulk, workflows
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.support import make_world
from tests.api.fusion.users_support import onboard


async def _in_session(live, work):  # type: ignore[no-untyped-def]
    engine = create_engine(live.settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


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

    job_id, first_key = await _in_session(live, create)

    async def retry(session):  # type: ignore[no-untyped-def]
        job = await session.get(FusionBulkJob, job_id)
        return await bulk.retry_job(session, job), bulk.job_summary(job), job.job_key

    count, summary, new_key = await _in_session(live, retry)
    assert count == 3 and new_key != first_key
    assert summary["status"] == "queued" and summary["success_count"] == 1 and summary["error_count"] == 0

    async def items(session):  # type: ignore[no-untyped-def]
        return [(i.status, i.attempts, i.error) for i in await session.scalars(
            select(FusionBulkItem).where(FusionBulkItem.job_id == job_id).order_by(FusionBulkItem.position))]

    assert await _in_session(live, items) == [("success", 1, None), ("pending", 1, None), ("pending", 0, None),
                                              ("pending", 0, None)]

    async def retry_again(session):  # type: ignore[no-untyped-def]
        await bulk.retry_job(session, await session.get(FusionBulkJob, job_id))

    with pytest.raises(Conflict, match="still queued"):  # not ended yet: nothing to retry
        await _in_session(live, retry_again)

    async def succeed(session):  # type: ignore[no-untyped-def]
        job = await session.get(FusionBulkJob, job_id)
        job.status = "success"
        for item in await session.scalars(select(FusionBulkItem).where(FusionBulkItem.job_id == job_id)):
            item.status = "success"

    await _in_session(live, succeed)
    with pytest.raises(Conflict, match="no failed or cancelled item"):
        await _in_session(live, retry_again)


async def test_retried_job_runs_its_failed_items_again_through_the_job_engine(client: httpx.AsyncClient, live, organisation) -> None:
    onboarded = await onboard(client, live, organisation, count=4)
    users = [u["msTeams"] for u in await onboarded.users(8) if not u["msTeams"]["userPrincipalName"].startswith("admin@")]
    ghost = f"ghost{uuid.uuid4().hex[:6]}@{onboarded.tenant['domain']}"  # not in Microsoft yet: its item fails
    data = [{"upn": users[0]["userPrincipalName"], "number": onboarded.numbers[0]}, {"upn": ghost, "displayName": "Ghost"}]
    accepted = await client.put(f"{onboarded.path}/msteams/users/bulk", headers={**onboarded.headers, "Prefer": "respond-async"},
                                json={"name": "retry me", "data": data})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]

    async def ended() -> dict:
        for _ in range(300):
            details = (await client.get(f"{onboarded.path}/msteams/users/bulk/{job_id}", headers=onboarded.headers)).json()
            if details["status"] in bulk.FINAL:
                return details
            await asyncio.sleep(0.1)
        raise AssertionError("the job did not end")

    first = await ended()
    assert first["status"] == "partial", first
    assert [i["status"] for i in first["job_items"]] == ["success", "error"]
    assert "does not exist" in first["job_items"][1]["error"]["reason"]

    connector = MicrosoftConnector(live.settings)
    try:
        created = await connector.connect(onboarded.tenant["tenantId"]).graph.post("/users", {
            "accountEnabled": True, "displayName": "Ghost", "mailNickname": ghost.split("@")[0],
            "userPrincipalName": ghost, "passwordProfile": {"password": "Ghost-Passw0rd!"}})
    finally:
        await connector.aclose()
    assert created.status_code == 201, created.text

    async def retry(session):  # type: ignore[no-untyped-def]
        job = await session.get(FusionBulkJob, job_id)
        return await bulk.retry_job(session, job), job.job_key

    count, key = await _in_session(live, retry)  # committed before it is enqueued
    assert count == 1
    await workflows.enqueue_bulk(key, job_id)
    second = await ended()
    assert second["status"] == "success" and second["success_count"] == 2 and second["error_count"] == 0, second
    assert [i["attempts"] for i in second["job_items"]] == [1, 2]  # the succeeded item did not run again
    assert onboarded.numbers[0] in await onboarded.teams_numbers(users[0]["id"])
