"""The calling jobs (`calling/workflows.py`) under what a long run meets: Sync Teams Users pushes each user from its
record as it is then and writes back only the sync's outcome (a change recorded while a batch waited on Microsoft was
pushed back to its old value, in Teams and on the record); a job cancelled while its workflow runs stays cancelled and
stops (its stop, the cancel's follow-up, is lost when the process that committed the cancel dies); Microsoft failing
transiently while the Unified App is published is tried again, not the job's end.

Driven through ConnecttoTeams (updateUserDetails, syncTeamsRegistrations?async=true, syncUnifiedApp and
getSyncJobStatus) on an enterprise registered through its consent."""

import asyncio
import random
import threading
import time
from typing import Any

import httpx
from dbos import DBOS

from teamsvoice.domain.calling import repository as calling_repository
from teamsvoice.domain.calling import unified_app
from teamsvoice.domain.calling import workflows as calling_workflows
from teamsvoice.domain.jobs import catalogue
from teamsvoice.domain.provisioning import voice_users
from tests.support.calling import admin_view, b64png, graph_get, licensed_users, wait_for_job
from tests.support.ctt import bearer
from tests.support.database import in_session
from tests.support.onboarding import Onboarding


def _numbers(count: int) -> list[str]:
    """Fresh numbers: the emulated tenant outlives each test's database and serves both backends."""
    base = 14155500000 + random.randrange(0, 30000) * 10
    return [f"+{base + i}" for i in range(count)]


class _World:
    def __init__(self, registered: Onboarding) -> None:
        self.onboarding, self.client, self.live = registered, registered.client, registered.live
        self.msal = {"authenticationResult": registered.msal_object}
        self.ga_token = registered.msal_object["authenticationResult"]["accessToken"]

    async def signed_in(self) -> "_World":
        credentials = self.onboarding.credentials
        answer = await self.client.post("/oauth/token", auth=(credentials["clientID"], credentials["clientSecret"]), data={
            "username": credentials["entAdminUsername"], "password": credentials["entAdminSecret"],
            "grant_type": "password"})
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["access_token"]
        return self

    def users(self, count: int) -> list[dict]:
        """`count` users of the tenant licensed for Teams Phone (the Global Administrator left out)."""
        users = licensed_users(self.live, self.ga_token, self.onboarding.tenant["globalAdmin"]["username"])
        assert len(users) >= count
        return users[-count:]

    async def set_number(self, upn: str, number: str) -> None:
        answer = await self.client.post("/provisioning/updateUserDetails", headers=bearer(self.token),
                                        json=self.msal | {"userPrincipalName": upn, "phoneNumber": number})
        assert answer.status_code == 200, answer.text

    def teams_numbers(self, user_id: str) -> list[str]:
        config = graph_get(self.live, self.ga_token, f"/admin/teams/userConfigurations/{user_id}").json()
        return [n["telephoneNumber"] for n in config.get("telephoneNumbers") or []]

    async def record(self, upn: str) -> tuple[str | None, str | None]:
        async def read(session: Any) -> tuple[str | None, str | None]:
            found = await voice_users.find(session, self.onboarding.enterprise_id, upn)
            return found.phone_number, found.last_sync_status
        return await in_session(self.live, read)

    async def start(self, path: str) -> str:
        """A job started by `path` (syncTeamsRegistrations?async=true, syncUnifiedApp): its status URL."""
        accepted = await self.client.post(path, headers=bearer(self.token), json=self.msal)
        assert accepted.status_code == 202, accepted.text
        return accepted.json()["statusUrl"]

    async def status(self, status_url: str) -> dict:
        answer = await self.client.get(status_url, headers=bearer(self.token))
        assert answer.status_code == 200, answer.text
        return answer.json()


def _held(monkeypatch, upn: str | None = None) -> tuple[threading.Event, threading.Event, list[str]]:  # type: ignore[no-untyped-def]
    """The job's push of `upn` (of the first user it pushes when None) waits, as on Microsoft's throttling, until
    released; answers (reached, release, the users whose push began, in order)."""
    real = calling_workflows.reconcile
    reached, release, began = threading.Event(), threading.Event(), []

    async def held(connection, record, **kw):  # type: ignore[no-untyped-def]
        began.append(record.user_principal_name.lower())
        if (upn or began[0]) == record.user_principal_name.lower():
            reached.set()
            while not release.is_set():
                await asyncio.sleep(0.05)
        return await real(connection, record, **kw)

    monkeypatch.setattr(calling_workflows, "reconcile", held)
    return reached, release, began


async def _until(event: threading.Event, what: str) -> None:
    deadline = time.monotonic() + 60
    while not event.is_set():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_change_recorded_while_a_sync_pushes_the_user_is_kept(registered, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    world = await _World(registered).signed_in()
    user = world.users(1)[0]
    upn, (first, second) = user["userPrincipalName"].lower(), _numbers(2)
    await world.set_number(upn, first)
    reached, release, _ = _held(monkeypatch, upn)
    status_url = await world.start("/provisioning/syncTeamsRegistrations?async=true")
    await _until(reached, "the sync reached the user")  # its record read, its push waiting on Microsoft
    await world.set_number(upn, second)  # answered 200: Teams and the record hold the second number
    assert world.teams_numbers(user["id"]) == [second]
    release.set()
    job = await wait_for_job(world.client, world.token, status_url)
    assert job["status"] == "COMPLETED", job
    # The sync pushed the number it had read (the first), found the record changed and pushed it again: the
    # change stays, in Teams and on the record (both went back to the first number).
    assert world.teams_numbers(user["id"]) == [second]
    assert await world.record(upn) == (second, "UPDATED")
    assert {r["userPrincipalName"].lower(): r["status"] for r in job["results"]} == {upn: "UPDATED"}, job


async def _workflow_ended(job_key: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        workflows = await asyncio.to_thread(DBOS.list_workflows, workflow_id_prefix=f"calling-{job_key}",
                                            load_input=False, load_output=False)
        if workflows and all(w.status not in ("PENDING", "ENQUEUED") for w in workflows):
            return
        assert time.monotonic() < deadline, [(w.workflow_id, w.status) for w in workflows]
        await asyncio.sleep(0.1)


async def test_a_cancel_whose_stop_is_lost_still_ends_the_job(registered, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    world = await _World(registered).signed_in()
    users = [u["userPrincipalName"].lower() for u in world.users(3)]
    for upn, number in zip(users, _numbers(3), strict=True):
        await world.set_number(upn, number)
    monkeypatch.setattr(calling_workflows, "BATCH_SIZE", 1)  # a batch (a step) per user
    reached, release, began = _held(monkeypatch)
    status_url = await world.start("/provisioning/syncTeamsRegistrations?async=true")
    await _until(reached, "the sync reached its first user")
    job_key = status_url.rstrip("/").rsplit("/", 1)[1]

    async def cancelled(session: Any) -> str:
        # As the CLI and the console commit it; its follow-up (stopping the workflow) never runs: the process died.
        job = await calling_repository.job_by_key(session, job_key)
        ended, _follow_up = await catalogue.cancel(session, None, f"sync:{job.id}")
        return ended.status

    assert (await in_session(world.live, cancelled)).lower() == "cancelled"
    release.set()  # the push under way ends (stopped half-way, it would leave Teams half-changed)
    await _workflow_ended(job_key)
    job = await world.status(status_url)
    # The job stays cancelled (it was COMPLETED over the cancel) and pushes no user after it (each was pushed).
    assert job["status"] == "CANCELLED", job
    assert began == began[:1], began
    assert [r["userPrincipalName"].lower() for r in job["results"]] == began, job


async def test_a_transient_failure_while_the_unified_app_is_published_is_tried_again(  # type: ignore[no-untyped-def]
        registered, monkeypatch) -> None:
    world = await _World(registered).signed_in()
    onboarding, tenant_id = world.onboarding, world.onboarding.tenant["tenantId"]
    saved = await world.client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(onboarding.token), json={
        "enterpriseId": onboarding.enterprise_id, "resellerId": onboarding.login.reseller_id,
        "name": f"Retried {random.randrange(10**6)}", "bIconFileName": "branding_icon.png",
        "oIconFileName": "outline_icon.png", "portalURL": "https://portal.provider.example", "type": "UNIFIED",
        "portalTabName": "PBX", "brandingImageInBytes": b64png(192, 192),
        "outlineImageInBytes": b64png(32, 32, (255, 255, 255)), "tenantID": tenant_id, "teamName": "Provider"})
    assert saved.status_code == 200, saved.text
    emulator = world.live.emulator

    async def faults(method: str, config: dict | None = None) -> None:
        async with httpx.AsyncClient(verify=str(emulator.ca_cert_path)) as admin:
            answer = await admin.request(method, f"{emulator.url}/_admin/faults", json=config)
            assert answer.status_code == 200, answer.text

    real, tries = unified_app.publish, []

    async def throttled_at_first(apps, source):  # type: ignore[no-untyped-def]
        # Microsoft answers 429 to every request of the first try, past the connector's own retries.
        tries.append(source.version)
        if len(tries) > 1:
            return await real(apps, source)
        await faults("PUT", {"storm429": {"count": 1000, "retryAfterSeconds": 0}})
        try:
            return await real(apps, source)
        finally:
            await faults("DELETE")

    monkeypatch.setattr(unified_app, "publish", throttled_at_first)
    try:
        job = await wait_for_job(world.client, world.token, await world.start("/provisioning/syncUnifiedApp"))
    finally:
        await faults("DELETE")
    assert len(tries) >= 2, tries
    assert (job["status"], job["error"]) == ("COMPLETED", None), job
    catalog = admin_view(world.live, tenant_id, "apps")["catalog"]
    assert [a["appDefinitions"][-1]["version"] for a in catalog if a["id"] == job["app"]["teamsAppId"]] == [tries[-1]]
