"""A transient database failure that gives a request or a command up (a deadlock lost, a lock or pool timeout:
`core.db.is_transient_database_error`) is said as such: a 503 with Retry-After in the API family's envelope, one
line on stderr and exit 2 from the CLI. A probe's `jobs cancel` of a running bulk job printed psycopg's
DeadlockDetected as a traceback and exited 1 (the Fusion route answered 500)."""

import httpx
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from teamsvoice.core.db import DATABASE_BUSY
from teamsvoice.domain.teams_users import repository_bulk
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob
from tests.api.fusion.support import BASE, make_world
from tests.cli.support import teamsvoice
from tests.support.database import in_session


async def test_a_cancel_the_database_gave_up_is_a_503_and_exit_2(client: httpx.AsyncClient, live, organisation,  # type: ignore[no-untyped-def]
                                                                  monkeypatch) -> None:
    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant()
    subscription = await world.create_subscription(tenant["uuid"])

    async def create(session):  # type: ignore[no-untyped-def]
        job = FusionBulkJob(subscription_id=subscription["id"], title="busy", job_id="1", total_count=1, status="running")
        session.add(job)
        await session.flush()
        session.add(FusionBulkItem(job_id=job.id, position=0, upn="ada@x.example", data={}))
        return job.id

    job_id = await in_session(live, create)

    async def deadlocked(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("UPDATE fusion_bulk_items SET status=...", {}, Exception("deadlock detected"))

    monkeypatch.setattr(repository_bulk, "cancel_pending_items", deadlocked)
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}/msteams/users/bulk/{job_id}/cancel"
    answer = await client.post(path, headers=await world.as_("reseller"))
    assert answer.status_code == 503, answer.text
    assert answer.json() == {"error": {"code": 1504, "reason": DATABASE_BUSY}} and answer.headers["Retry-After"] == "5"

    ran = await teamsvoice(live, "jobs", "cancel", str(job_id))
    assert (ran.returncode, ran.stderr, ran.stdout) == (2, f"teamsvoice: {DATABASE_BUSY}\n", "")

    async def state(session):  # type: ignore[no-untyped-def]
        job = await session.get(FusionBulkJob, job_id)
        return job.status, list(await session.scalars(select(FusionBulkItem.status).where(FusionBulkItem.job_id == job_id)))

    assert await in_session(live, state) == ("running", ["pending"])  # nothing half-written


async def test_plan_and_apply_the_database_gave_up_exit_2(live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`teamsvoice plan` and `teamsvoice apply` say a transient database failure in one line and exit 2, as every
    other command does (cli_common.run_command): they printed the traceback and exited 1."""
    from teamsvoice import voice_state_cli

    async def deadlocked(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("SELECT enterprises...", {}, Exception("deadlock detected"))

    monkeypatch.setattr(voice_state_cli, "_enterprise", deadlocked)
    for command in ("plan", "apply"):
        ran = await teamsvoice(live, command, "busy.example")
        assert (ran.returncode, ran.stderr, ran.stdout) == (2, f"teamsvoice: {DATABASE_BUSY}\n", ""), command


async def test_register_redirect_url_the_database_gave_up_exit_2(live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`teamsvoice register-redirect-url` says a transient database failure in one line and exits 2, and a refused URL
    or an unknown reseller in one line too (cli_common.run_command): it ran outside it and printed the traceback,
    exit 1 (a refusal was a typer usage error)."""
    from teamsvoice.domain.orgs import service

    reseller_id = str(organisation.resellers[0].reseller_id)
    unknown = await teamsvoice(live, "register-redirect-url", "999999", "https://hooks.example/")
    assert (unknown.returncode, unknown.stderr, unknown.stdout) == (2, "teamsvoice: Reseller 999999 not found\n", "")

    async def deadlocked(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("SELECT resellers... FOR UPDATE", {}, Exception("deadlock detected"))

    monkeypatch.setattr(service.repository, "locked_reseller", deadlocked)
    ran = await teamsvoice(live, "register-redirect-url", reseller_id, "https://hooks.example/")
    assert (ran.returncode, ran.stderr, ran.stdout) == (2, f"teamsvoice: {DATABASE_BUSY}\n", "")
