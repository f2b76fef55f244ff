"""The items of a bulk job read their subscription once between them (domain/teams_users/workflows._JobMemory), not
each: a queue poll starts a job's items together, and each read it while the first read was under way (a worker
spent a tenth of its CPU in those reads, py-spy 2026-12-02)."""

import asyncio

import pytest

from teamsvoice.domain.teams_users import bulk, workflows
from tests.api.fusion.users_support import Onboarded, onboard
from tests.e2e.test_job_outage import _details, _submit

USERS = 10


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation, tenant_index=1)


async def test_a_jobs_items_read_its_subscription_once(sub: Onboarded, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    read = bulk.load_access

    async def counted(session, subscription_id):  # type: ignore[no-untyped-def]
        reads.append(subscription_id)
        return await read(session, subscription_id)

    monkeypatch.setattr(bulk, "load_access", counted)
    # The items read it again once the first read is ACCESS_SECONDS old: on a loaded machine the job may outlast that.
    monkeypatch.setattr(workflows, "ACCESS_SECONDS", 3600.0)
    users = [u for u in await sub.users(20) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:USERS]
    job_id = await _submit(sub, users, sub.numbers[:USERS], "subscription reads")
    while (details := await _details(sub, job_id))["status"] in ("queued", "running"):
        await asyncio.sleep(0.2)
    assert details["status"] == "success" and details["success_count"] == USERS, details
    # The job's start reads it (to know its Microsoft tenant), then the first item; the others share that read.
    assert len(reads) == 2, reads
