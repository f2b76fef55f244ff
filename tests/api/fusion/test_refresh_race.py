"""The users list's `refresh=true` records a whole-tenant refresh unless one already waits or runs
(`calling_jobs.start_users_refresh`). Two at the same moment each checked, each found none waiting and each recorded
one: a whole-tenant job each. Driven as the route drives it, in two sessions whose check and record interleave."""

import asyncio
import uuid

import pytest
from sqlalchemy import select

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import create_engine, session_factory, transaction
from teamsvoice.domain.calling import jobs as calling_jobs
from teamsvoice.domain.calling.models import CallingJob
from teamsvoice.domain.orgs.models import Enterprise
from tests.support.database import add_customer, in_session


async def test_two_refreshes_at_the_same_moment_record_one_job(live, organisation,  # type: ignore[no-untyped-def]
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    async def linked(session) -> int:  # type: ignore[no-untyped-def]
        enterprise_id, _ = await add_customer(session, organisation.resellers[0].reseller_id, "Refreshed twice")
        enterprise = await session.get(Enterprise, enterprise_id)
        enterprise.tenant_id, enterprise.registered = str(uuid.uuid4()), True
        return enterprise_id

    enterprise_id = await in_session(live, linked)
    # The first request has checked (none waiting) and waits just before it records its job, while the second
    # request checks (none recorded yet) and records its own.
    checked, go = asyncio.Event(), asyncio.Event()
    record = calling_jobs.add_users_refresh

    async def paused_record(session, enterprise_id, voice_user_ids=None):  # type: ignore[no-untyped-def]
        if not checked.is_set():
            checked.set()
            await go.wait()
        return await record(session, enterprise_id, voice_user_ids)

    monkeypatch.setattr(calling_jobs, "add_users_refresh", paused_record)
    engine = create_engine(live.settings.effective_database_url)
    try:
        sessions = session_factory(engine)

        async def refresh() -> int | None:  # what the list's `refresh=true` does once the list is answered
            async with transaction(sessions) as session:
                return await calling_jobs.start_users_refresh(session, enterprise_id)

        first = asyncio.create_task(refresh())
        await checked.wait()
        second = asyncio.create_task(refresh())
        await asyncio.wait({second}, timeout=1)  # (before, it recorded its job meanwhile; now it waits for the first)
        go.set()
        started = await asyncio.gather(first, second)
        async with sessions() as session:
            recorded = list(await session.scalars(select(CallingJob).where(CallingJob.enterprise_id == enterprise_id)))
    finally:
        await engine.dispose()

    async def ended(session) -> None:  # type: ignore[no-untyped-def]
        for job in recorded:  # (no workflow of the engine's picks them up after the test)
            row = await session.get(CallingJob, job.id)
            row.status, row.finished_at = "COMPLETED", utcnow()

    await in_session(live, ended)
    assert [(job.kind, job.detail) for job in recorded] == [("REFRESH_TEAMS_USERS", {})], [job.id for job in recorded]
    # The first recorded it; the second, as any refresh while one waits, recorded none.
    assert started == [recorded[0].id, None], started
