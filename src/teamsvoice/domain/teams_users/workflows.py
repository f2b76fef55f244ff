"""Durable Fusion MS Teams work (DBOS): bulk user updates and resource accounts.

Bulk: the workflow asks for the next batch of pending items (a step, so its answer is replayed unchanged
after a crash), applies the batch (a step that skips items already finished), and repeats; then it
sets the job's final status. Items of a batch run concurrently, bounded by BULK_CONCURRENCY here and by
the connector's per-tenant limit on every Microsoft call. Steps use an async engine of their own, inside
`asyncio.run`, because they run in DBOS's threads.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from dbos import DBOS
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import create_engine, session_factory
from teamsvoice.core.errors import DomainError
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.teams_users import bulk, resource_accounts
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob, FusionResourceAccount
from teamsvoice.jobs.runtime import job_context, start_once
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.microsoft.ports import TenantConnection

BATCH_SIZE = 100
T = TypeVar("T")


def bulk_concurrency() -> int:
    return max(1, job_context().settings.microsoft_tenant_concurrency)


async def _run(subscription_id: int, work: Callable[[async_sessionmaker[AsyncSession], SubscriptionAccess, TenantConnection], Awaitable[T]]) -> T:
    ctx = job_context()
    engine = create_engine(ctx.settings.effective_database_url)
    connector = MicrosoftConnector(ctx.settings)
    try:
        sessions = session_factory(engine)
        async with sessions() as session:
            access = await bulk.load_access(session, subscription_id)
        tenant_id = access.require_ms_tenant()
        return await work(sessions, access, connector.connect(tenant_id))
    finally:
        await connector.aclose()
        await engine.dispose()


async def _simple(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    engine = create_engine(job_context().settings.effective_database_url)
    try:
        return await work(session_factory(engine))
    finally:
        await engine.dispose()


# --- bulk -----------------------------------------------------------------------------------------------


@DBOS.step(name="fusion_bulk_begin")
def begin_step(job_id: int) -> int:
    async def work(sessions: async_sessionmaker[AsyncSession]) -> int:
        async with sessions() as session:
            job = await session.get(FusionBulkJob, job_id)
            assert job is not None
            if job.status == "queued":
                job.status = "running"
            await session.commit()
            return job.subscription_id

    return asyncio.run(_simple(work))


@DBOS.step(name="fusion_bulk_next_batch")
def next_batch_step(job_id: int, after: int) -> list[int]:
    """Ids of the next pending items after position `after` (in position order)."""
    async def work(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
        async with sessions() as session:
            rows = (await session.execute(select(FusionBulkItem.id, FusionBulkItem.position).where(
                FusionBulkItem.job_id == job_id, FusionBulkItem.position > after, FusionBulkItem.status == "pending",
            ).order_by(FusionBulkItem.position).limit(BATCH_SIZE))).all()
        return [row.id for row in rows] + ([rows[-1].position] if rows else [])

    return asyncio.run(_simple(work))


@DBOS.step(name="fusion_bulk_apply_batch")
def apply_batch_step(subscription_id: int, item_ids: list[int]) -> None:
    async def work(sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection) -> None:
        limit, cache = anyio.Semaphore(bulk_concurrency()), {}

        async def one(item_id: int) -> None:
            async with limit:
                await bulk.apply_item(sessions, access, connection, item_id, cache)

        async with anyio.create_task_group() as group:
            for item_id in item_ids:
                group.start_soon(one, item_id)

    try:
        asyncio.run(_run(subscription_id, work))
    except DomainError as exc:  # the tenant is unreachable (or unlinked): every item left fails with it
        asyncio.run(_fail_pending(item_ids, exc))


async def _fail_pending(item_ids: list[int], exc: DomainError) -> None:
    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        for item_id in item_ids:
            async with sessions() as session:
                item = await session.get(FusionBulkItem, item_id)
                if item is None or item.status != "pending":
                    continue
                done = await session.execute(update(FusionBulkItem).where(
                    FusionBulkItem.id == item_id, FusionBulkItem.status == "pending").values(
                    status="error", error=bulk.service.error_body(exc), updated_on=utcnow()))
                if done.rowcount == 1:  # type: ignore[attr-defined]
                    await session.execute(update(FusionBulkJob).where(FusionBulkJob.id == item.job_id).values(
                        error_count=FusionBulkJob.error_count + 1))
                await session.commit()

    await _simple(work)


@DBOS.step(name="fusion_bulk_finish")
def finish_step(job_id: int) -> str:
    async def work(sessions: async_sessionmaker[AsyncSession]) -> str:
        async with sessions() as session:
            job = await session.get(FusionBulkJob, job_id)
            assert job is not None
            job.status, job.updated_on = bulk.final_status(job), utcnow()
            await session.commit()
            return job.status

    return asyncio.run(_simple(work))


@DBOS.workflow(name="fusion_bulk_update", max_recovery_attempts=None)
def bulk_update(job_id: int) -> str:
    subscription_id = begin_step(job_id)
    after = -1
    while True:
        batch = next_batch_step(job_id, after)
        if not batch:
            break
        *item_ids, after = batch
        apply_batch_step(subscription_id, item_ids)
    return finish_step(job_id)


def _start_bulk(job_key: str, job_id: int) -> None:
    start_once(f"fusion-bulk-{job_key}", bulk_update, job_id)


async def enqueue_bulk(job_key: str, job_id: int) -> None:
    """Starting twice under the same workflow id is a no-op, so this is safe to repeat."""
    await anyio.to_thread.run_sync(_start_bulk, job_key, job_id)


# --- resource accounts ----------------------------------------------------------------------------------


@DBOS.step(name="fusion_resource_account_apply")
def resource_account_step(account_id: int) -> dict[str, Any]:
    async def subscription_of(sessions: async_sessionmaker[AsyncSession]) -> int | None:
        async with sessions() as session:
            account = await session.get(FusionResourceAccount, account_id)
            return account.subscription_id if account is not None else None

    subscription_id = asyncio.run(_simple(subscription_of))
    if subscription_id is None:
        return {"status": "gone"}

    async def work(sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection) -> dict[str, Any]:
        return await resource_accounts.converge(sessions, access, connection, account_id)

    try:
        return asyncio.run(_run(subscription_id, work))
    except DomainError as exc:
        message = exc.message
        asyncio.run(_simple(lambda sessions: resource_accounts.record_failure(sessions, account_id, message)))
        return {"status": "error", "error": message}


@DBOS.workflow(name="fusion_resource_account", max_recovery_attempts=None)
def resource_account_workflow(account_id: int, generation: int) -> dict[str, Any]:
    return resource_account_step(account_id)


def _start_resource_account(job_key: str, account_id: int, generation: int) -> None:
    start_once(f"fusion-ra-{job_key}-{generation}", resource_account_workflow, account_id, generation)


async def enqueue_resource_account(job_key: str, account_id: int, generation: int) -> None:
    await anyio.to_thread.run_sync(_start_resource_account, job_key, account_id, generation)


def resume_orphaned() -> int:
    """Work recorded but never started (a crash between commit and enqueue): queued bulk jobs and resource
    accounts still in a transitional state. Idempotent: workflow ids derive from the rows' keys."""
    with Session(job_context().engine) as session:
        jobs = list(session.execute(select(FusionBulkJob.job_key, FusionBulkJob.id).where(FusionBulkJob.status == "queued")))
        accounts = list(session.execute(select(FusionResourceAccount.job_key, FusionResourceAccount.id, FusionResourceAccount.generation)
                                        .where(FusionResourceAccount.status.in_(("creating", "updating", "deleting")))))
    for key, job_id in jobs:
        _start_bulk(key, job_id)
    for key, account_id, generation in accounts:
        _start_resource_account(key, account_id, generation)
    return len(jobs) + len(accounts)
