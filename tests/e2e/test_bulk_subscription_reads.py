"""What each item of a bulk job costs besides its own work. The items read their subscription once between them
(domain/teams_users/workflows._JobMemory), not each: a queue poll starts a job's items together, and each read it
while the first read was under way (a worker spent a tenth of its CPU in those reads, py-spy 2026-12-02). And an
item's workflow records no step in the job engine's database (`workflows.bulk_item`): a step's check and record were
two of the six transactions DBOS spent on each item."""

import asyncio

import pytest
import sqlalchemy as sa
from dbos._dbos import _get_dbos_instance

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


def _item_workflows() -> tuple[int, int]:
    """How many bulk item workflows the job engine has ended, and how many steps they recorded in all."""
    system = _get_dbos_instance()._sys_db
    status, outputs = system.tables.workflow_status, system.tables.operation_outputs
    items = sa.select(status.c.workflow_uuid).where(status.c.name == "fusion_bulk_item", status.c.status == "SUCCESS")
    with system.engine.connect() as connection:
        ended = connection.execute(sa.select(sa.func.count()).select_from(items.subquery())).scalar_one()
        steps = connection.execute(sa.select(sa.func.count()).select_from(outputs)
                                   .where(outputs.c.workflow_uuid.in_(items))).scalar_one()
    return ended, steps


async def test_a_jobs_items_record_no_step(sub: Onboarded) -> None:
    ended_before, _ = _item_workflows()
    users = [u for u in await sub.users(20) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:USERS]
    job_id = await _submit(sub, users, sub.numbers[:USERS], "no steps")
    while (details := await _details(sub, job_id))["status"] in ("queued", "running"):
        await asyncio.sleep(0.2)
    assert details["status"] == "success" and details["success_count"] == USERS, details
    ended, steps = _item_workflows()
    assert ended - ended_before == USERS and steps == 0, (ended_before, ended, steps)
