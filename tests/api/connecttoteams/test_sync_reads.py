"""Sync Teams Users (the durable job behind Fusion's POST msteams/sync and ConnecttoTeams' syncTeamsRegistrations for
large enterprises) reads the tenant's Teams voice state once for the run, in pages of 999, rather than user after
user: a user that already matches teamsvoice's record costs no Microsoft request. A user that differs is read again
on its own before it is changed; a user the tenant's read lacks (deleted in Microsoft) is read on its own, as before.

Driven through ConnecttoTeams (syncTeamsRegistrations?async=true, its job read with getSyncJobStatus): the same job as
Fusion's, and an enterprise registered through its consent costs about a quarter of a Fusion onboarding (whose wizard
runs twice, around its consent)."""

import asyncio
import uuid

from teamsvoice.core.metrics import REGISTRY
from teamsvoice.domain.calling import workflows as calling_workflows
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.support.calling import wait_for_job
from tests.support.ctt import bearer
from tests.support.database import in_session
from tests.support.emulated import emulated_tenant
from tests.support.onboarding import Onboarding

# The tenant's users besides its Global Administrator: with it, one more than a batch (20), the fewest a sync reads
# the tenant for (`calling/workflows.TENANT_READ_ABOVE`).
USERS = 20


def _teams_requests(tenant_id: str) -> float:
    """Teams service requests teamsvoice sent to the tenant (the budget scheduler's count, whatever their outcome)."""
    return sum(REGISTRY.get_sample_value("teamsvoice_microsoft_budget_requests_total", {
        "service_class": "teams", "tenant": tenant_id.lower(), "outcome": outcome}) or 0.0
        for outcome in ("answered", "throttled", "unanswered"))


async def registered(client, live, organisation, receiver, microsoft: dict):  # type: ignore[no-untyped-def]
    """An enterprise registered to the emulated tenant through its consent, and its administrator's token answer."""
    onboarding = Onboarding(client, live, organisation, receiver, microsoft)
    await onboarding.register()
    credentials = onboarding.credentials
    signed_in = await client.post("/oauth/token", auth=(credentials["clientID"], credentials["clientSecret"]), data={
        "username": credentials["entAdminUsername"], "password": credentials["entAdminSecret"], "grant_type": "password"})
    assert signed_in.status_code == 200, signed_in.text
    return onboarding, signed_in


async def test_a_sync_reads_the_tenant_once_not_user_by_user(client, live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    microsoft = await emulated_tenant(live, f"sync-{uuid.uuid4().hex[:8]}.example", USERS)
    tenant_id = microsoft["tenantId"]
    onboarding, signed_in = await registered(client, live, organisation, receiver, microsoft)
    enterprise = bearer(signed_in.json()["access_token"])
    msal = {"authenticationResult": onboarding.msal_object}

    async def synced() -> dict:
        """A sync of every user as a durable job (syncTeamsRegistrations?async=true), once ended (getSyncJobStatus)."""
        accepted = await client.post("/provisioning/syncTeamsRegistrations?async=true", headers=enterprise, json=msal)
        assert accepted.status_code == 202, accepted.text
        return await wait_for_job(client, signed_in.json()["access_token"], accepted.json()["statusUrl"], timeout=90)

    connector = MicrosoftConnector(live.settings)
    try:
        listed = await connector.connect(tenant_id).graph.get("/users", **{"$select": "id,userPrincipalName", "$top": "999"})
    finally:
        await connector.aclose()
    people = sorted(((u["userPrincipalName"].lower(), u["id"]) for u in listed["value"]))
    assert len(people) == USERS + 1  # and its Global Administrator

    async def records(session):  # type: ignore[no-untyped-def]
        assert await voice_users.of_enterprise(session, onboarding.enterprise_id) == []  # (the registration made none)
        # As Teams holds them (no number, Enterprise Voice off, the Global policy): nothing to change.
        for upn, user_id in people:
            await voice_users.add(session, onboarding.enterprise_id, upn, user_id, calling_enabled=False)

    await in_session(live, records)

    # Nothing differs: one read of the tenant (one page), no request per user.
    before = _teams_requests(tenant_id)
    job = await synced()
    sent = _teams_requests(tenant_id) - before
    assert (job["status"], job["error"], job["total"]) == ("COMPLETED", None, len(people)), job
    assert {r["userPrincipalName"]: r["status"] for r in job["results"]} == {upn: "UNCHANGED" for upn, _ in people}
    assert all(r["changes"] == [] for r in job["results"]), job["results"]
    print(f"\nno-change sync of {len(people)} users: {sent:.0f} Teams requests")
    assert sent == 1, f"{sent} Teams requests for {len(people)} users that match: the tenant is read once"

    # One user differs (calling wanted: Enterprise Voice on), one was deleted in Microsoft: each read on its own.
    changed_upn, gone_upn = people[3][0], f"gone-{uuid.uuid4().hex[:6]}@{microsoft['domain']}"

    async def differ(session):  # type: ignore[no-untyped-def]
        changed = await voice_users.find(session, onboarding.enterprise_id, changed_upn)
        changed.calling_enabled = True
        await voice_users.add(session, onboarding.enterprise_id, gone_upn, str(uuid.uuid4()), calling_enabled=False)

    await in_session(live, differ)
    before = _teams_requests(tenant_id)
    job = await synced()
    sent = _teams_requests(tenant_id) - before
    assert (job["status"], job["error"], job["total"]) == ("COMPLETED", None, len(people) + 1), job
    statuses = {r["userPrincipalName"]: r["status"] for r in job["results"]}
    assert statuses == {upn: "UNCHANGED" for upn, _ in people} | {changed_upn: "UPDATED", gone_upn: "USER_DELETED"}
    [changed] = [r for r in job["results"] if r["userPrincipalName"] == changed_upn]
    assert changed["changes"] == ["enterprise voice enabled"], changed
    print(f"sync of {len(people) + 1} users, one to change, one deleted: {sent:.0f} Teams requests")
    # The tenant's read, the changed user's own read and its change, the deleted user's read.
    assert sent == 4, f"{sent} Teams requests"


async def test_a_sync_whose_enqueue_fails_is_accepted_and_the_sweep_starts_it(client, live, organisation, receiver,
                                                                              monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The job is recorded when its enqueue fails (the job engine's database busy): the answer is the 202 of a job
    that runs (it was a 500 for a job that then ran all the same: api/deps.start_swept), and the workers' sweep
    (`resume_unstarted`) starts it."""
    microsoft = await emulated_tenant(live, f"lost-{uuid.uuid4().hex[:8]}.example", 1)
    onboarding, signed_in = await registered(client, live, organisation, receiver, microsoft)

    async def lost(job_id: int) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(calling_workflows, "enqueue", lost)
    accepted = await client.post("/provisioning/syncTeamsRegistrations?async=true",
                                 headers=bearer(signed_in.json()["access_token"]),
                                 json={"authenticationResult": onboarding.msal_object})
    assert accepted.status_code == 202 and accepted.json()["status"] == "QUEUED", accepted.text
    monkeypatch.undo()
    await asyncio.to_thread(calling_workflows.resume_unstarted)
    job = await wait_for_job(client, signed_in.json()["access_token"], accepted.json()["statusUrl"], timeout=90)
    assert (job["status"], job["error"]) == ("COMPLETED", None), job
