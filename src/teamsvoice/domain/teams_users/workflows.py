"""Durable Fusion MS Teams work (DBOS): bulk user updates and resource accounts.

Bulk: the job's workflow (on the jobs queue) enqueues one item workflow per pending item on the Microsoft
queue, partitioned by the Microsoft tenant, a page of items per transaction (`bulk_enqueue_page_size`): any worker
process may run any item, the per-tenant concurrency holds across all of them, and an item starts as soon as a slot
frees (no batch barrier).
Each item ends exactly once (a conditional UPDATE: `bulk._settle`), and the item that ends last sets the
job's final status in the same transaction. A transient Microsoft failure never ends an item: it waits
and retries (`runtime.until_microsoft_answers`), its attempts and last error visible on the job.
Async work runs on the job engine's shared event loop (`JobContext.run`).
"""

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import anyio
from dbos import DBOS
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.db import end_transaction, sync_transaction, transaction
from teamsvoice.core.errors import DomainError
from teamsvoice.core.logging import job_log_context
from teamsvoice.core.metrics import record_bulk_item
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.teams_users import bulk, repository, repository_bulk_run, resource_accounts
from teamsvoice.domain.teams_users.models import FusionBulkJob, FusionResourceAccount
from teamsvoice.jobs.runtime import (
    INTERACTIVE_ITEMS, ITEM_MARK, TenantWork, before_dbos_goes, durable_step,
    enqueue_for_tenant, enqueue_many_for_tenant, failure_message, in_flight, job_context, park_if_stopping, retrying_transient, start_once, until_microsoft_answers,
)
from teamsvoice.microsoft.ports import TenantConnection

PAGE_SIZE = 500  # items per page of a legacy job's workflow (`_legacy_bulk_update`)
T = TypeVar("T")
log = logging.getLogger("teamsvoice.jobs.bulk")


def _run(subscription_id: int, work: Callable[[async_sessionmaker[AsyncSession], SubscriptionAccess, TenantConnection], Awaitable[T]],
         job: "_JobMemory | None" = None) -> T:
    ctx = job_context()

    async def load() -> SubscriptionAccess:
        async with transaction(ctx.sessions) as session:
            return await bulk.load_access(session, subscription_id)

    async def run() -> T:
        access = await (job.access(load) if job is not None else load())
        tenant_id = access.require_ms_tenant()
        return await work(ctx.sessions, access, ctx.connector.connect(tenant_id))

    return ctx.run(run)


def _simple(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    ctx = job_context()
    return ctx.run(lambda: work(ctx.sessions))


# --- bulk -----------------------------------------------------------------------------------------------


@durable_step("fusion_bulk_begin")
def begin_step(job_id: int) -> tuple[int, str | None]:
    """Marks the job running; answers its subscription and Microsoft tenant (None: not linked, and then
    every pending item has failed with the reason)."""
    async def work(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, str | None]:
        async with transaction(sessions) as session:
            await repository_bulk_run.start_job(session, job_id)
            job = await session.get(FusionBulkJob, job_id)
            assert job is not None
            await end_transaction(session)
            subscription_id = job.subscription_id
            access = await bulk.load_access(session, subscription_id)
        try:
            return subscription_id, access.require_ms_tenant()
        except DomainError as exc:
            await bulk.fail_pending(sessions, job_id, exc)
            return subscription_id, None

    return _simple(work)


def _pending_page(job_id: int, after: int, size: int = PAGE_SIZE) -> list[tuple[int, int]]:
    """The next `size` pending items after position `after`, in position order: (item id, position)."""
    async def work(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[int, int]]:
        async with transaction(sessions) as session:
            return list(await repository_bulk_run.pending_page(session, job_id, after, size))

    return _simple(work)


@durable_step("fusion_bulk_enqueue_page")
def enqueue_page_step(subscription_id: int, job_id: int, job_key: str, tenant_id: str, after: int, enqueued: int) -> list[int]:
    """Enqueues the next page of pending items after position `after` on the tenant's partition, in one transaction;
    answers how many and the page's last position ([] once none is left). Run again (a crash before its end was
    recorded), it reads the pending items again and enqueues what is not enqueued yet: an item that has ended meanwhile
    is no longer pending, and none is enqueued twice (workflow ids from the job's never-reused key)."""
    with before_dbos_goes():  # a stop of the engine waits for the page (a read and an insert), or it parks here
        page_size = job_context().settings.bulk_enqueue_page_size
        rows = _pending_page(job_id, after, page_size)
        if not rows:
            return []
        # The whole job in its first page, and a few users: someone waits for it (a one-user change).
        interactive = enqueued == 0 and len(rows) < page_size and len(rows) <= INTERACTIVE_ITEMS
        enqueue_many_for_tenant(tenant_id, bulk_item, [
            TenantWork(_item_workflow_id(job_key, item_id), (subscription_id, job_id, item_id), position)
            for position, (item_id, _) in enumerate(rows, start=enqueued + 1)], interactive=interactive)
    return [len(rows), rows[-1][1]]


def apply_item(subscription_id: int, job_id: int, item_id: int) -> str:
    """The item's whole work, run as its workflow's body (no step: see `bulk_item`)."""
    job = _job_memory(_run_key(DBOS.workflow_id, subscription_id, job_id))

    def ended(status: str) -> None:  # (only when this run ended it: recovery finds an ended item and says nothing)
        log.info("bulk item ended: %s", status)
        record_bulk_item(status)

    async def work(sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection) -> str:
        with job_log_context(job_id=job_id, item_id=item_id):
            return await bulk.apply_item(sessions, access, connection, item_id, job.groups,
                                         partial(until_microsoft_answers, workflow="fusion_bulk_item"), ended)

    with in_flight():
        status = _run(subscription_id, work, job)
    park_if_stopping()  # the engine is going away: its recovery runs the item again, which finds it ended
    return status


@dataclass
class _JobMemory:
    """What the items of one job running in this process share: the groups resolved by name, and the
    subscription as the job sees it, read again when it is ACCESS_SECONDS old (not once per item: three
    queries saved on each; a subscription unlinked mid-job stops the items within seconds)."""

    groups: dict[str, str] = field(default_factory=dict)
    subscription: SubscriptionAccess | None = None
    read_at: float = 0.0
    reading: asyncio.Lock = field(default_factory=asyncio.Lock)  # (items run on the job engine's one event loop)

    def recent_access(self) -> SubscriptionAccess | None:
        return self.subscription if time.monotonic() - self.read_at < ACCESS_SECONDS else None

    async def access(self, load: Callable[[], Awaitable[SubscriptionAccess]]) -> SubscriptionAccess:
        """The subscription as the job sees it, read by one item at a time: the items that start while it is
        read wait for that read (a queue poll starts a job's items together, and each read the subscription
        itself: a worker spent a tenth of its CPU there)."""
        if (recent := self.recent_access()) is not None:
            return recent
        async with self.reading:
            if (recent := self.recent_access()) is None:
                recent = await load()
                self.subscription, self.read_at = recent, time.monotonic()
            return recent


ACCESS_SECONDS = 5.0
REMEMBERED_JOBS = 64
_jobs: "OrderedDict[str, _JobMemory]" = OrderedDict()
_jobs_lock = threading.Lock()  # (items' steps run on DBOS's threads)


def _run_key(workflow_id: str | None, subscription_id: int, job_id: int) -> str:
    """Which run of which job an item belongs to: its workflow id without the item (`fusion-bulk-{job_key}`, the
    job's never-reused key, new for each retry). Not the job's row id: on SQLite ids are used again once the
    newest rows are gone (a subscription deleted with its jobs, a wiped database), and a job under a used id must
    not see the old job's subscription and groups (its items were sent to the old job's tenant:
    tests/e2e/test_scope.py after another test's job of the same id)."""
    if workflow_id and ITEM_MARK in workflow_id:
        return workflow_id.rsplit(ITEM_MARK, 1)[0]
    return f"subscription-{subscription_id}-job-{job_id}"


def _job_memory(key: str) -> _JobMemory:
    """The job run's memory; the least recently used run's is dropped beyond REMEMBERED_JOBS (memory stays flat
    however many jobs a worker runs)."""
    with _jobs_lock:
        memory = _jobs.pop(key, None) or _JobMemory()
        _jobs[key] = memory
        while len(_jobs) > REMEMBERED_JOBS:
            _jobs.popitem(last=False)
        return memory


@DBOS.workflow(name="fusion_bulk_item", max_recovery_attempts=None)
@retrying_transient("fusion_bulk_item")
def bulk_item(subscription_id: int, job_id: int, item_id: int) -> str:
    """One item: a workflow whose body is its one idempotent unit of work, with no step recorded (a step's check
    and record were two of the six transactions the job engine spent on each item). Recovery runs the body again:
    an item ended before the crash is found ended (`bulk.apply_item` changes only a pending item) and answers its
    status; one cut off mid-way is applied again (its Microsoft changes converge). A workflow recorded by an
    earlier release with a `fusion_bulk_item_apply` step replays the same way (no step is looked up)."""
    return apply_item(subscription_id, job_id, item_id)


@DBOS.workflow(name="fusion_bulk_job", max_recovery_attempts=None)
def bulk_job(job_id: int, job_key: str) -> int:
    """Enqueues every pending item, a page at a time (one transaction per page, not two per item); returns how many
    it enqueued (the items finish the job)."""
    subscription_id, tenant_id = begin_step(job_id)
    if tenant_id is None:
        return 0
    after, enqueued = -1, 0
    while page := enqueue_page_step(subscription_id, job_id, job_key, tenant_id, after, enqueued):
        count, after = page
        enqueued += count
    return enqueued


@durable_step("fusion_bulk_next_page")
def _legacy_next_page_step(job_id: int, after: int) -> list[int]:
    rows = _pending_page(job_id, after)
    return [item_id for item_id, _ in rows] + ([rows[-1][1]] if rows else [])


@DBOS.workflow(name="fusion_bulk_update", max_recovery_attempts=None)
def _legacy_bulk_update(job_id: int, job_key: str) -> int:
    """The job's workflow as releases before `bulk_job` recorded it (one enqueue per item from the workflow's body),
    kept only so that a job such a release left unfinished replays its recorded steps after an upgrade; nothing
    starts it any more. Remove it once no release before 2026-12 is upgraded from."""
    subscription_id, tenant_id = begin_step(job_id)
    if tenant_id is None:
        return 0
    after, enqueued = -1, 0
    while True:
        page = _legacy_next_page_step(job_id, after)
        if not page:
            return enqueued
        *item_ids, after = page
        for index, item_id in enumerate(item_ids, start=enqueued + 1):
            enqueue_for_tenant(_item_workflow_id(job_key, item_id), tenant_id, bulk_item, subscription_id, job_id, item_id,
                               position=index)
        enqueued += len(item_ids)


def _job_workflow_id(job_key: str) -> str:
    return f"fusion-bulk-{job_key}"


def _item_workflow_id(job_key: str, item_id: int) -> str:
    """`<job workflow id>-item-<item id>`: the job's run is read back from it (`_run_key`, the budget's job scope)."""
    return f"{_job_workflow_id(job_key)}{ITEM_MARK}{item_id}"


def _start_bulk(job_key: str, job_id: int) -> None:
    start_once(_job_workflow_id(job_key), bulk_job, job_id, job_key)


async def enqueue_bulk(job_key: str, job_id: int) -> None:
    """Starting twice under the same workflow id is a no-op, so this is safe to repeat."""
    await anyio.to_thread.run_sync(_start_bulk, job_key, job_id)


# --- resource accounts ----------------------------------------------------------------------------------


@durable_step("fusion_resource_account_apply")
def resource_account_step(account_id: int, generation: int | None = None) -> dict[str, Any]:
    """Converges the account to its row; a failure is its outcome, unless a newer change or a delete of it was
    accepted meanwhile (`generation` moved on: that run records its own; None, a run of an older release: always)."""
    async def subscription_of(sessions: async_sessionmaker[AsyncSession]) -> int | None:
        async with transaction(sessions) as session:
            account = await session.get(FusionResourceAccount, account_id)
            return account.subscription_id if account is not None else None

    subscription_id = _simple(subscription_of)
    if subscription_id is None:
        return {"status": "gone"}

    async def work(sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection) -> dict[str, Any]:
        async def waiting(failures: int, exc: DomainError, wait: float) -> None:
            await resource_accounts.record_waiting(sessions, account_id, f"{exc.message} (try {failures}; retrying)")

        return await until_microsoft_answers(
            lambda: resource_accounts.converge(sessions, access, connection, account_id), waiting,
            workflow="fusion_resource_account")

    try:
        with in_flight():
            result = _run(subscription_id, work)
    except Exception as exc:  # noqa: BLE001 - whatever failed it is the account's outcome: it never stays in flight
        message = failure_message(exc, f"resource account {account_id}")
        _simple(lambda sessions: resource_accounts.record_failure(sessions, account_id, message, generation))
        result = {"status": "error", "error": message}
    park_if_stopping()
    return result


@DBOS.workflow(name="fusion_resource_account", max_recovery_attempts=None)
def resource_account_workflow(account_id: int, generation: int) -> dict[str, Any]:
    return resource_account_step(account_id, generation)


def _start_resource_account(job_key: str, account_id: int, generation: int) -> None:
    start_once(f"fusion-ra-{job_key}-{generation}", resource_account_workflow, account_id, generation)


async def enqueue_resource_account(job_key: str, account_id: int, generation: int) -> None:
    await anyio.to_thread.run_sync(_start_resource_account, job_key, account_id, generation)


def resume_orphaned() -> int:
    """Work recorded but never started (a crash between commit and enqueue): queued bulk jobs and resource
    accounts still in a transitional state. Idempotent: workflow ids derive from the rows' keys."""
    with sync_transaction(job_context().engine) as session:
        jobs = repository_bulk_run.queued_jobs(session)
        accounts = repository.resource_accounts_in_flight(session)
    for key, job_id in jobs:
        _start_bulk(key, job_id)
    for key, account_id, generation in accounts:
        _start_resource_account(key, account_id, generation)
    return len(jobs) + len(accounts)


resume_unstarted = resume_orphaned  # (all it starts is work committed but never enqueued: runtime.sweep_unstarted_work)
