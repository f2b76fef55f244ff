"""Bulk items share a small database pool while Microsoft is slow (issue 12, the fleet's pool waits).

A worker runs up to TEAMSVOICE_MICROSOFT_WORKER_ITEMS items at once on TEAMSVOICE_DATABASE_POOL_SIZE pooled
connections: that holds only if an item has a connection checked out while it reads or writes, never while it
waits on Microsoft (its requests, the budget, operation polling). Here ITEMS items run at once through
`bulk.apply_item` (what a worker's item step runs) on an engine of two connections in all, against the emulator
answering every request after LATENCY_MS. The decisive check: no Microsoft request is asked for by a task that has
a pooled connection checked out (the budget is asked before every request). And every item succeeds without timing
out on the pool. That pool timeout is the application's own (30 s), not shorter: on a loaded machine the items' own
reads and writes, queued on two connections, made 2 of the 12 wait more than the 3 s this test once allowed (a
fresh-clone CI run), so a short timeout measured the machine, not the rule."""

import asyncio
from functools import partial

import httpx
from sqlalchemy import event, select

from teamsvoice.core.db import create_engine, is_transient_database_error, session_factory, transaction
from teamsvoice.domain.teams_users import bulk, repository_bulk_run
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob
from teamsvoice.jobs.runtime import until_microsoft_answers
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.users_support import onboard

ITEMS = 12
LATENCY_MS = 250


async def _faults(live, method: str, body: dict | None = None) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(verify=str(live.emulator.ca_cert_path)) as admin:
        response = await admin.request(method, f"{live.emulator.url}/_admin/faults", json=body)
        assert response.status_code == 200, response.text


async def test_items_never_hold_a_pooled_connection_while_microsoft_answers(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    sub = await onboard(client, live, organisation, count=ITEMS)
    users = [u["msTeams"] for u in await sub.users(ITEMS + 1) if not u["msTeams"]["userPrincipalName"].startswith("admin@")]
    body = {"name": "pool", "data": [{"upn": u["userPrincipalName"], "displayName": u["displayName"], "number": number,
                                      "vrp": "teamsvoice"}
                                     for u, number in zip(users[:ITEMS], sub.numbers)]}
    engine = create_engine(live.settings.effective_database_url, pool_size=1)  # 2 in all
    sessions = session_factory(engine)
    connector = MicrosoftConnector(live.settings)
    holders: dict[int, asyncio.Task] = {}  # pooled connection -> the task that checked it out
    held_across_microsoft: list[str] = []

    def checked_out(_dbapi, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        holders[id(record)] = asyncio.current_task()

    def checked_in(_dbapi, record) -> None:  # type: ignore[no-untyped-def]
        holders.pop(id(record), None)

    event.listen(engine.sync_engine.pool, "checkout", checked_out)
    event.listen(engine.sync_engine.pool, "checkin", checked_in)
    acquire = connector.budget.acquire

    async def acquire_checked(tenant, charge):  # type: ignore[no-untyped-def]  # every Microsoft request asks the budget
        if asyncio.current_task() in holders.values():
            held_across_microsoft.append(f"{charge.service} request of {tenant}")
        return await acquire(tenant, charge)

    connector.budget.acquire = acquire_checked  # type: ignore[method-assign]
    try:
        async with transaction(sessions) as session:
            access = await bulk.load_access(session, int(sub.path.rsplit("/", 1)[1]))
            job = await bulk.create_job(session, access, body["name"], body["data"])
            # Running, as the job's workflow marks it before its items: a job left queued is the live job engine's
            # to start (its sweep of work committed but never enqueued, every minute), and its items then raced
            # these (a fresh-clone CI run: an item the engine ended in error, the job partial, 11 of 12 counted).
            await repository_bulk_run.start_job(session, job.id)
        async with transaction(sessions) as session:
            item_ids = list(await session.scalars(select(FusionBulkItem.id).where(FusionBulkItem.job_id == job.id)))
        connection = connector.connect(access.require_ms_tenant())
        await _faults(live, "PUT", {"latencyMs": LATENCY_MS})
        retry = partial(until_microsoft_answers, workflow="test_database_pool")
        outcomes = await asyncio.gather(*(bulk.apply_item(sessions, access, connection, item_id, {}, retry)
                                          for item_id in item_ids), return_exceptions=True)
    finally:
        await _faults(live, "DELETE")
        await connector.aclose()
    pool_waits = [o for o in outcomes if isinstance(o, BaseException) and is_transient_database_error(o)]
    assert pool_waits == [], f"{len(pool_waits)} items timed out waiting for a pooled connection: {pool_waits[0]!r}"
    assert outcomes == ["success"] * ITEMS, [o for o in outcomes if o != "success"][:3]
    assert held_across_microsoft == [], held_across_microsoft[:5]
    async with transaction(sessions) as session:
        ended = await session.get(FusionBulkJob, job.id, populate_existing=True)
        assert ended is not None and (ended.status, ended.success_count) == ("success", ITEMS)
    await engine.dispose()
