"""A resource account deleted while its job creates it in Teams: the delete answered 204 and removed the row, the
job then created the account in Teams (and failed on the missing row): an account in Teams that no row, list or
delete of teamsvoice's knew of. Now the delete is refused until the creation has ended, and a job whose row went
meanwhile deletes what it created."""

import asyncio
import threading
import time

import anyio
import pytest
from dbos import DBOS
from sqlalchemy.orm import Session

from teamsvoice.domain.teams_users import resource_accounts
from teamsvoice.domain.teams_users.models import FusionResourceAccount
from teamsvoice.jobs.runtime import job_context
from tests.api.fusion.users_support import Onboarded, onboard


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation, tenant_index=1)


class HeldCreation:
    """`find_or_create_in_teams` held back until released: the account's job is creating it in Teams meanwhile."""

    def __init__(self, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        self.started, self.release, self.created = threading.Event(), threading.Event(), threading.Event()
        original = resource_accounts.find_or_create_in_teams

        async def held(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.started.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            ms_id = await original(*args, **kwargs)
            self.created.set()
            return ms_id

        monkeypatch.setattr(resource_accounts, "find_or_create_in_teams", held)

    async def wait(self, event: threading.Event) -> None:
        assert await anyio.to_thread.run_sync(lambda: event.wait(60)), "the account's job did not get there"


async def _create(sub: Onboarded, name: str) -> tuple[int, str]:
    upn = f"{name}_{sub.numbers[0][-6:]}@{sub.tenant['domain']}"
    created = await sub.world.client.post(f"{sub.path}/msteams/resource_accounts", headers=sub.headers, json={
        "accountType": "call-queue", "userPrincipalName": upn, "displayName": name, "location": "BE"})
    assert created.status_code == 200, created.text
    return created.json()["id"], upn


async def _in_teams(sub: Onboarded, upn: str) -> bool:
    """Whether the tenant's call queues and auto attendants (the list shows Microsoft's, ours or not) include it."""
    listed = await sub.world.client.get(f"{sub.path}/msteams/resource_accounts", headers=sub.headers)
    assert listed.status_code == 200, listed.text
    return any(a["msTeams"]["userPrincipalName"] == upn and "licenses" in a["msTeams"]
               for a in listed.json()["resourceAccounts"])


async def test_a_delete_while_the_account_is_created_is_refused_until_the_creation_ends(sub: Onboarded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, path, headers = sub.world.client, sub.path, sub.headers
    creation = HeldCreation(monkeypatch)
    ra_id, upn = await _create(sub, "deleted_early")
    await creation.wait(creation.started)
    refused = await client.delete(f"{path}/msteams/resource_accounts/{ra_id}", headers=headers)
    creation.release.set()
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == 1009 and "being created" in refused.json()["error"]["reason"], refused.text
    account = await sub.resource_account_settled(ra_id)
    assert account["draas"]["status"] == "active" and await _in_teams(sub, upn), account
    assert (await client.delete(f"{path}/msteams/resource_accounts/{ra_id}", headers=headers)).status_code == 204
    deadline = time.monotonic() + 60
    while await _in_teams(sub, upn):
        assert time.monotonic() < deadline, "still in Teams"
        await asyncio.sleep(0.1)


async def test_an_account_whose_row_goes_while_it_is_created_is_not_left_in_teams(sub: Onboarded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    creation = HeldCreation(monkeypatch)
    ra_id, upn = await _create(sub, "row_gone")
    await creation.wait(creation.started)
    with Session(job_context().engine) as session, session.begin():
        row = session.get(FusionResourceAccount, ra_id)
        workflow_id = f"fusion-ra-{row.job_key}-{row.generation}"
        session.delete(row)
    creation.release.set()
    await creation.wait(creation.created)
    deadline = time.monotonic() + 60
    while (status := await anyio.to_thread.run_sync(lambda: DBOS.get_workflow_status(workflow_id).status)) != "SUCCESS":
        assert time.monotonic() < deadline and status in ("ENQUEUED", "PENDING"), status
        await asyncio.sleep(0.1)
    assert not await _in_teams(sub, upn)


async def test_a_failure_of_an_older_run_is_not_recorded_over_a_newer_change(sub: Onboarded) -> None:
    """A run whose generation moved on (a change or a delete accepted meanwhile) does not record its failure: it turned
    a pending delete's `deleting` into `error`, and the delete's own run then brought the account back up."""
    from teamsvoice.core.db import create_engine, session_factory

    account_id, _ = await _create(sub, "Older")
    assert (await sub.resource_account_settled(account_id))["draas"]["status"] == "active"  # its own run ended
    engine = create_engine(sub.world.live.settings.effective_database_url)
    try:
        sessions = session_factory(engine)
        async with sessions() as session:
            account = await session.get(FusionResourceAccount, account_id)
            account.status, account.generation = "deleting", account.generation + 1
            newer = account.generation
            await session.commit()
        await resource_accounts.record_failure(sessions, account_id, "the older run failed", newer - 1)
        async with sessions() as session:
            account = await session.get(FusionResourceAccount, account_id)
            assert (account.status, account.error) == ("deleting", None)
        await resource_accounts.record_failure(sessions, account_id, "this run failed", newer)
        async with sessions() as session:
            account = await session.get(FusionResourceAccount, account_id)
            assert (account.status, account.error) == ("error", "this run failed")
    finally:
        await engine.dispose()
