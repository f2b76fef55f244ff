"""An item run again after it ended (recovery after a restart finds it ended) is not reported again: a probe saw
59 items, all ended before a SIGINT, counted in `teamsvoice_bulk_items_total` and logged "bulk item ended" a
second time by the restarted process."""

from functools import partial

from sqlalchemy import select

from teamsvoice.core.db import create_engine, session_factory, transaction
from teamsvoice.domain.teams_users import bulk, repository_bulk_run
from teamsvoice.domain.teams_users.models import FusionBulkItem
from teamsvoice.jobs.runtime import until_microsoft_answers
from tests.api.fusion.users_support import onboard


async def test_an_item_ended_before_is_not_reported_again(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    sub = await onboard(client, live, organisation, count=1)
    user = next(u["msTeams"] for u in await sub.users(3) if not u["msTeams"]["userPrincipalName"].startswith("admin@"))
    async with sub.as_a_worker() as (sessions, access, connector):
        async with transaction(sessions) as session:
            job = await bulk.create_job(session, access, "once", [{"upn": user["userPrincipalName"], "number": sub.numbers[0]}])
            await repository_bulk_run.start_job(session, job.id)  # running: the job engine's sweep leaves it alone
        async with transaction(sessions) as session:
            item_id = await session.scalar(select(FusionBulkItem.id).where(FusionBulkItem.job_id == job.id))
        connection = connector.connect(access.require_ms_tenant())
        retry = partial(until_microsoft_answers, workflow="test_bulk_item_once")
        ended: list[str] = []
        first = await bulk.apply_item(sessions, access, connection, item_id, {}, retry, ended.append)
        again = await bulk.apply_item(sessions, access, connection, item_id, {}, retry, ended.append)  # recovery's run
    assert (first, again) == ("success", "success")
    assert ended == ["success"]  # reported by the run that ended it only
    assert await sub.teams_numbers(user["id"]) == [sub.numbers[0]]


async def test_a_job_committed_but_never_enqueued_is_started_by_the_sweep(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    """A process that dies between committing a job and enqueueing it (an `api` process; a `bulk import` stopped in
    its first seconds) left the job queued until a worker restarted; the workers' sweep
    (TEAMSVOICE_JOB_ORPHAN_SWEEP_SECONDS) now starts it."""
    import asyncio

    from teamsvoice.jobs import runtime

    sub = await onboard(client, live, organisation, count=1)
    user = next(u["msTeams"] for u in await sub.users(3) if not u["msTeams"]["userPrincipalName"].startswith("admin@"))
    engine = create_engine(live.settings.effective_database_url)
    try:
        async with transaction(session_factory(engine)) as session:  # committed, never enqueued: the process died
            access = await bulk.load_access(session, int(sub.path.rsplit("/", 1)[1]))
            job = await bulk.create_job(session, access, "orphan", [{"upn": user["userPrincipalName"], "number": sub.numbers[0]}])
    finally:
        await engine.dispose()
    assert await asyncio.to_thread(runtime.sweep_unstarted_work) >= 1
    for _ in range(300):
        details = (await client.get(f"{sub.path}/msteams/users/bulk/{job.id}", headers=sub.headers)).json()
        if details["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.1)
    assert details["status"] == "success", details
    assert await sub.teams_numbers(user["id"]) == [sub.numbers[0]]
