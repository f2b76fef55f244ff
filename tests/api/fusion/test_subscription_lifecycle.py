"""A subscription's end, after it was used (found by a probe of the Fusion lifecycle): unlinked while its users held
numbers and it had a resource account, a bulk job and a template behind it, then deleted."""

import asyncio
import secrets
import threading
from datetime import timedelta

import httpx
from sqlalchemy import update

from teamsvoice.core.clock import utcnow
from teamsvoice.domain.teams_users.models import FusionBulkJob
from teamsvoice.domain.voice_state.models import NumberQuarantine
from tests.api.fusion.users_support import onboard
from tests.support.database import in_session


async def _mark_job(live, job_id: int, status: str) -> None:  # type: ignore[no-untyped-def]
    async def mark(session) -> None:  # type: ignore[no-untyped-def]
        await session.execute(update(FusionBulkJob).where(FusionBulkJob.id == job_id).values(status=status))
    await in_session(live, mark)


async def test_a_used_subscription_is_unlinked_then_deleted(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    """Before: unlink answered 1009 while a resource account existed; it freed the numbers its users held although
    Microsoft still had them assigned (a probe then gave one to another customer's user: one DID in two tenants);
    it was accepted while a bulk job ran, which then re-created its users' records on the unlinked subscription; and
    a subscription that had ever run a bulk job could never be deleted (1009 "does not exist")."""
    sub = await onboard(client, live, organisation)
    path, headers = sub.path, sub.headers
    users = [u["msTeams"] for u in await sub.users(4)][1:3]
    data = [{"upn": u["userPrincipalName"], "displayName": u["displayName"], "number": sub.numbers[i]} for i, u in enumerate(users)]
    bulk = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": "Before leaving", "data": data})
    assert bulk.status_code == 200, bulk.text
    job_id = (await client.get(f"{path}/msteams/users/bulk", headers=headers)).json()["bulks"][0]["id"]
    template = await client.post(f"{path}/msteams/templates", headers=headers, json={"name": "Leaving", "productKey": "l"})
    assert template.status_code == 201, template.text
    queue = await client.post(f"{path}/msteams/resource_accounts", headers=headers, json={
        "accountType": "call-queue", "userPrincipalName": f"cq_{secrets.token_hex(3)}@{sub.tenant['domain']}",
        "displayName": "Leaving Queue", "location": "BE", "phoneNumber": sub.numbers[2]})
    assert queue.status_code == 200, queue.text
    assert (await sub.resource_account_settled(queue.json()["id"]))["draas"]["status"] == "active"

    await _mark_job(live, job_id, "running")  # a job that has not ended: unlink waits for it
    refused = await client.post(f"{path}/msteams/unlink", headers=headers)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 2033, refused.text
    assert f"({job_id})" in refused.json()["error"]["reason"]
    await _mark_job(live, job_id, "success")

    unlinked = await client.post(f"{path}/msteams/unlink", headers=headers)
    assert unlinked.status_code == 200 and unlinked.json() == {"msTenantId": sub.tenant["tenantId"]}, unlinked.text
    # Microsoft is not changed: its users keep their numbers there, so teamsvoice keeps them from anyone else.
    assert await sub.teams_numbers(users[0]["id"]) == [sub.numbers[0]]
    disconnected = (await client.get(f"{path}/number_inventory", headers=headers, params={"status": "disconnected"})).json()
    assert sorted(n["countryCode"] + n["nsn"] for n in disconnected["numbers"]) == sub.numbers[:3], disconnected
    detail = (await client.get(path, headers=headers)).json()
    assert detail["isDeletable"] is False  # its numbers are still in its inventory
    blocked = await client.delete(path, headers=headers)
    assert blocked.status_code == 400 and blocked.json()["error"]["code"] == 2021, blocked.text
    assert "inventory holds" in blocked.json()["error"]["reason"]
    numbers = [{"countryCode": "+32", "nsn": n[3:]} for n in sub.numbers]
    # The numbers in quarantine stay in the inventory until its end (nobody else may add them meanwhile).
    resting = await client.request("DELETE", f"{path}/numbers", headers=headers, json={"numbers": numbers})
    assert resting.status_code == 400 and resting.json()["error"]["code"] == 1009, resting.text
    assert f"{sub.numbers[0]} is in quarantine" in resting.json()["error"]["reason"]

    async def quarantine_over(session) -> None:  # type: ignore[no-untyped-def]
        await session.execute(update(NumberQuarantine).values(until=utcnow() - timedelta(seconds=1)))
    await in_session(live, quarantine_over)
    assert (await client.request("DELETE", f"{path}/numbers", headers=headers, json={"numbers": numbers})).status_code == 200
    assert (await client.get(path, headers=headers)).json()["isDeletable"] is True
    deleted = await client.delete(path, headers=headers)
    assert deleted.status_code in (200, 204), deleted.text
    assert (await client.get(path, headers=headers)).status_code == 404


async def test_an_unlink_and_a_bulk_job_at_the_same_moment_do_not_both_go_on(client, live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each passed its own check before the other committed (the unlink saw no unfinished job, the job a linked
    tenant), and both went on: a job on an unlinked subscription. They wait for each other now (the enterprise's row
    lock): here the unlink, first, ends, and the job is refused. The unlink is held between its check and its end
    for as long as the job takes, at most 2 s (without the lock the job is accepted meanwhile)."""
    from teamsvoice.domain.fusion import onboarding

    sub = await onboard(client, live, organisation)
    path, headers = sub.path, sub.headers
    user = [u["msTeams"] for u in await sub.users(3)][1]
    checked, submitted = threading.Event(), threading.Event()
    real = onboarding.repository.unfinished_jobs

    async def held(session, subscription_id: int, enterprise_id: int) -> list[str]:  # type: ignore[no-untyped-def]
        found = await real(session, subscription_id, enterprise_id)
        checked.set()
        await asyncio.to_thread(submitted.wait, 2)
        return found

    monkeypatch.setattr(onboarding.repository, "unfinished_jobs", held)

    async def submit() -> httpx.Response:
        await asyncio.to_thread(checked.wait, 30)
        try:
            return await client.put(f"{path}/msteams/users/bulk", headers={**headers, "Prefer": "respond-async"}, json={
                "name": "At the same moment", "data": [{"upn": user["userPrincipalName"], "displayName": user["displayName"],
                                                    "number": sub.numbers[0]}]})
        finally:
            submitted.set()

    unlinked, bulk = await asyncio.gather(client.post(f"{path}/msteams/unlink", headers=headers), submit())
    assert unlinked.status_code == 200, unlinked.text
    assert bulk.status_code >= 400 and "No MS Teams tenant is linked" in bulk.text, bulk.text
    assert (await client.get(f"{path}/msteams/users/bulk", headers=headers)).json()["bulks"] == []
