"""A bulk item run again after its worker died mid-item (recovery runs the item's body again) undoes a refusal to the
user's settings before the item, not to the dead run's wish, and completes as success when the dead run's change had
reached Teams. Before, the re-run took "before" from the record, which held the dead run's committed wish: Teams
refusing the number left the refused number on the record (the job said "already assigned to another user"), the
user's own number counted free though Teams kept it, and later syncs pushed the refused number again."""

import uuid
from functools import partial

import pytest
from sqlalchemy import select

from teamsvoice.core.db import transaction
from teamsvoice.domain.teams_users import bulk, repository_bulk_run
from teamsvoice.domain.teams_users.models import FusionBulkItem
from teamsvoice.jobs.runtime import until_microsoft_answers
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.users_support import Onboarded, onboard


class Killed(BaseException):
    """The worker process dying: none of the run's own handling runs (an Exception would be the item's outcome)."""


async def _put_number(client, sub: Onboarded, user_id: str, number: str) -> None:  # type: ignore[no-untyped-def]
    put = await client.put(f"{sub.path}/msteams/users/{user_id}/phone_number", headers=sub.headers,
                           json={"phoneNumber": number})
    assert put.status_code == 204, put.text


async def _run_items(live, sub: Onboarded, items: list[dict], die) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Records a job of `items` and runs each item as its workflow would: a first run on a connection that
    `die(connection)` makes die mid-way, then recovery's run on a connection of its own. Answers each item as the
    job's details show it afterwards, by upn."""
    async with sub.as_a_worker() as (sessions, access, connector):
        async with transaction(sessions) as session:
            job = await bulk.create_job(session, access, "recovered", items)
            await repository_bulk_run.start_job(session, job.id)  # running: the job engine's sweep leaves it alone
        async with transaction(sessions) as session:
            ids = list(await session.scalars(select(FusionBulkItem.id).where(FusionBulkItem.job_id == job.id)
                                             .order_by(FusionBulkItem.position)))
        retry = partial(until_microsoft_answers, workflow="test_bulk_item_recovery")
        dying = connector.connect(access.require_ms_tenant())
        die(dying)  # (on this connection only: the live server's job engine runs on meanwhile)
        for item_id in ids:
            with pytest.raises(Killed):
                await bulk.apply_item(sessions, access, dying, item_id, {}, retry)
        recovering = connector.connect(access.require_ms_tenant())
        statuses = [await bulk.apply_item(sessions, access, recovering, item_id, {}, retry) for item_id in ids]
    details = (await sub.world.client.get(f"{sub.path}/msteams/users/bulk/{job.id}", headers=sub.headers)).json()
    assert [i["status"] for i in details["job_items"]] == statuses, details
    return {i["upn"]: i for i in details["job_items"]}  # type: ignore[misc]


async def test_a_recovered_item_refused_goes_back_to_the_settings_before_it(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    sub = await onboard(client, live, organisation, count=4)
    users = [u["msTeams"] for u in await sub.users(6) if not u["msTeams"]["userPrincipalName"].startswith("admin@")]
    alice, bob, carol = users[0], users[1], users[2]
    own, refused, carols = sub.numbers[0], sub.numbers[1], sub.numbers[2]
    await _put_number(client, sub, alice["id"], own)
    connector = MicrosoftConnector(live.settings)
    try:  # the number held in Teams by another user, behind teamsvoice's back: Teams refuses it to alice
        await connector.connect(sub.tenant["tenantId"]).voice.assign_number(bob["userPrincipalName"], refused)
    finally:
        await connector.aclose()

    def die(connection):  # type: ignore[no-untyped-def]
        # alice's run dies once her wish is committed, as Teams is asked; carol's (a display name and a group
        # besides the number) as the directory is changed, her number's wish committed before (a display name of
        # this run's: the emulated tenant serves both backends, and one already hers would change nothing there)
        async def killed(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise Killed()
        connection.voice.remove_numbers = killed
        connection.directory_admin.update_user = killed

    # (carol as she is before the job: the emulated tenant's users are shared with the tests before this one)
    carol_before = await sub.recorded_number(carol["id"]), await sub.teams_numbers(carol["id"])
    items = await _run_items(live, sub, [
        {"upn": alice["userPrincipalName"], "number": refused},
        {"upn": carol["userPrincipalName"], "number": carols, "displayName": f"Carol Recovered {uuid.uuid4().hex[:6]}",
         "groups": ["no such group of the tenant"]},
    ], die)

    alice_item, carol_item = items[alice["userPrincipalName"]], items[carol["userPrincipalName"]]
    assert alice_item["status"] == "error" and "already been assigned" in alice_item["error"]["reason"], alice_item
    assert carol_item["status"] == "error" and "no such group" in carol_item["error"]["reason"], carol_item
    # alice keeps her own number, in teamsvoice and in Teams; carol is as before the job
    assert await sub.recorded_number(alice["id"]) == own
    assert await sub.teams_numbers(alice["id"]) == [own]
    assert (await sub.recorded_number(carol["id"]), await sub.teams_numbers(carol["id"])) == carol_before
    free = await sub.free_numbers()
    assert own not in free and carols in free, free


async def test_a_recovered_item_whose_change_reached_teams_succeeds(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    sub = await onboard(client, live, organisation, count=2)
    user = next(u["msTeams"] for u in await sub.users(3) if not u["msTeams"]["userPrincipalName"].startswith("admin@"))
    old, new = sub.numbers[0], sub.numbers[1]
    await _put_number(client, sub, user["id"], old)

    def die(connection):  # type: ignore[no-untyped-def]
        assign = connection.voice.assign_number

        async def assigned_then_killed(*args, **kwargs):  # type: ignore[no-untyped-def]
            await assign(*args, **kwargs)  # Teams took the number; the worker dies before its answer is recorded
            raise Killed()
        connection.voice.assign_number = assigned_then_killed

    items = await _run_items(live, sub, [{"upn": user["userPrincipalName"], "number": new}], die)

    assert items[user["userPrincipalName"]]["status"] == "success", items
    assert await sub.recorded_number(user["id"]) == new
    assert await sub.teams_numbers(user["id"]) == [new]
    free = await sub.free_numbers()
    assert new not in free and old in free, free
