"""SRE group filter (POST/GET msteams/groups), the users list `group`/`refresh` parameters, POST msteams/sync
(per-user status, followed to completion; records pushed to Teams), the lists' `refresh` (records taken from Teams,
Teams left as it is) and the resource accounts list filters (spec 004)."""

import asyncio
import time
import json
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import create_engine, session_factory
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.metrics import REGISTRY
from teamsvoice.domain.calling import jobs as calling_jobs, repository as calling_repository
from teamsvoice.domain.calling.models import CallingJob
from teamsvoice.domain.calling.workflows import REFRESH_TEAMS_USERS
from teamsvoice.domain.fusion.models import FusionSubscription
from teamsvoice.domain.voice_state import refresh
from teamsvoice.microsoft import directory
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.users_support import Onboarded, onboard
from tests.support.database import in_session
from tests.support.emulated import emulated_tenant

MST = "tenants.instance.subscriptions.instance.msteams"
# The spec's example body of "Create a group filter": ids that exist in no Office 365 tenant.
SPEC_FILTER = {"groups": [{"id": "444ce848-8b9b-4d14-8e99-90ee50ea150b", "displayName": "Group Test"},
                          {"id": "461fr875-5g6r-5bp01-8h51-68fe90gs182j", "displayName": "Group Test 2"}]}


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation, count=6)


async def _groups(sub: Onboarded) -> list[dict]:
    response = await sub.world.client.get(f"{sub.path}/msteams/groups", headers=sub.headers)
    assert response.status_code == 200, response.text
    return response.json()["groups"]


async def _user_ids(sub: Onboarded, **params) -> list[str]:  # type: ignore[no-untyped-def]
    response = await sub.world.client.get(f"{sub.path}/msteams/users", headers=sub.headers,
                                          params={"page_size": 200, **params})
    assert response.status_code == 200, response.text
    assert "next" not in response.json()
    return [u["msTeams"]["id"] for u in response.json()["users"]]


async def _members(sub: Onboarded, group_id: str) -> set[str]:
    members = await sub.graph(f"/groups/{group_id}/members", **{"$top": "999"})
    return {m["id"] for m in members["value"] if m.get("@odata.type", "#microsoft.graph.user") == "#microsoft.graph.user"}


async def _voice(sub: Onboarded, work):  # type: ignore[no-untyped-def]
    connector = MicrosoftConnector(sub.world.live.settings)
    try:
        return await work(connector.connect(sub.tenant["tenantId"]))
    finally:
        await connector.aclose()


async def _jobs(sub: Onboarded) -> list[CallingJob]:
    engine = create_engine(sub.world.live.settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(select(CallingJob).order_by(CallingJob.id)))
    finally:
        await engine.dispose()


async def _results(sub: Onboarded, job_id: int) -> dict[str, dict]:
    """The job's per-user results (rows of `calling_job_results`) by user principal name, in the job's order."""
    return {r["user_principal_name"]: r for r in await in_session(
        sub.world.live, lambda session: calling_repository.results_page(session, job_id, 0, 100_000))}


async def _completed_job(sub: Onboarded, known: int) -> CallingJob:
    deadline = time.monotonic() + 60  # (a workflow of the engine: seconds on a loaded machine)
    while time.monotonic() < deadline:
        jobs = await _jobs(sub)
        if len(jobs) > known and jobs[-1].status in ("COMPLETED", "FAILED"):
            return jobs[-1]
        await asyncio.sleep(0.05)
    raise AssertionError("the sync job did not complete")


def _assert_envelope(response, status: int = 400) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "reason"} and isinstance(error["code"], int) and error["reason"]
    return error


async def test_group_filter_and_users_group_parameter(sub: Onboarded) -> None:
    await _group_filter_delete_and_recreate_orphans_and_user_list(sub)
    await _users_group_parameter(sub)


async def test_sync_and_users_refresh(sub: Onboarded, monkeypatch: pytest.MonkeyPatch) -> None:
    await _sync_per_user_status_and_teams_state(sub)
    await _users_refresh_takes_the_numbers_teams_holds(sub, monkeypatch)


async def test_a_refused_list_starts_no_refresh(sub: Onboarded) -> None:
    """`refresh=true` on a list answered 400 (bad filters, page_size, next or group) recorded a sync of the users
    (or resource accounts) before the list was refused: committed with the request's first transaction and run by
    the job sweep, it changed things for a request that had failed. The refresh starts once the list is answered."""
    client, path, headers = sub.world.client, sub.path, sub.headers
    known = len(await _jobs(sub))
    for url, params in ((f"{path}/msteams/resource_accounts", {"filters": "not json"}),
                        (f"{path}/msteams/users", {"page_size": 0}), (f"{path}/msteams/users", {"next": "garbage"}),
                        (f"{path}/msteams/users", {"group": "not-a-group-id"})):
        _assert_envelope(await client.get(url, headers=headers, params={"refresh": "true", **params}))
    assert len(await _jobs(sub)) == known
    listed = await client.get(f"{path}/msteams/resource_accounts", headers=headers, params={"refresh": "true"})
    assert listed.status_code == 200, listed.text
    assert [job.kind for job in (await _jobs(sub))[known:]] == ["REFRESH_TEAMS_USERS"]


def _directory_reads(tenant_id: str) -> float:
    """Graph directory reads teamsvoice sent to the tenant (the budget scheduler's count, whatever their outcome; a
    `$batch` counts the requests inside it, as Microsoft does)."""
    return sum(REGISTRY.get_sample_value("teamsvoice_microsoft_budget_requests_total", {
        "service_class": "directory", "tenant": tenant_id.lower(), "outcome": outcome}) or 0.0
        for outcome in ("answered", "throttled", "unanswered"))


async def test_a_lists_next_page_reads_only_its_users(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    """The portal's infinite scroll (and the console's users grid and its CSV export: the same list) asks page after
    page, and every page read the tenant's SKUs, its role holders (a request, then one per activated role, one after
    another) and, with an SRE group filter, every member of its groups at Graph's default page of 100 (a 5,000-member
    group: 50 requests a page). What the pages share is now read once for the tenant for a while
    (`service.LIST_MEMO_SECONDS`; the SKUs as `subscribed_skus` remembers them), a group's members 999 a request: a
    next page reads its users, nothing else. On a tenant of the test's own: nothing else reads it meanwhile."""
    microsoft = await emulated_tenant(live, f"scroll-{secrets.token_hex(4)}.example", 150, groups=["Scroll"])
    tenant_id = microsoft["tenantId"]
    sub = await onboard(client, live, organisation, microsoft=microsoft, count=1)
    path, headers = sub.path, sub.headers
    scroll = next(g for g in await _groups(sub) if g["displayName"] == "Scroll")
    members = await _members(sub, scroll["id"])
    assert len(members) > 100, len(members)  # more than Graph's default page: 2 requests at that page, 1 at 999
    posted = await client.post(f"{path}/msteams/groups", headers=headers,
                               json={"groups": [{"id": scroll["id"], "displayName": "Scroll"}]})
    assert posted.status_code == 204, posted.text
    directory._SKUS.forget(tenant_id)  # (the onboarding read them): the first page reads them

    async def page(**params: str) -> tuple[dict, float]:
        before = _directory_reads(tenant_id)
        answered = await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 5, **params})
        assert answered.status_code == 200, answered.text
        return answered.json(), _directory_reads(tenant_id) - before

    first, first_reads = await page()
    second, second_reads = await page(next=first["next"])
    print(f"\nfiltered list, page 1: {first_reads:.0f} directory reads, page 2: {second_reads:.0f}")
    listed = [u["msTeams"]["id"] for u in first["users"] + second["users"]]
    assert len(listed) == len(set(listed)) == 10 and set(listed) <= members
    # The first page: the SKUs, the filter group's members (one request), its users (one Graph page), the role
    # holders (the roles, then the one role's members). It was 6: the members took two requests at Graph's default.
    assert first_reads == 5, first_reads
    # The next page: its users only (it was 6 too).
    assert second_reads == 1, second_reads
    # A user teamsvoice takes out of the filter's group leaves the list at once (the members it remembered are
    # forgotten with the change), though Graph was read a moment ago.
    leaving = first["users"][0]["msTeams"]
    taken = await client.put(f"{path}/msteams/users/{leaving['id']}/groups", headers=headers, json={"groups": []})
    assert taken.status_code == 204, taken.text
    found, _ = await page(search=leaving["displayName"])
    assert leaving["id"] not in [u["msTeams"]["id"] for u in found["users"]], found


async def test_a_refresh_while_one_waits_or_runs_starts_none(sub: Onboarded) -> None:
    """`refresh=true` recorded a whole-tenant refresh at every call: the portal's scroll sent it with every page. While
    a refresh of the enterprise's every record is queued or running, a list's `refresh` starts none (answered as
    ever); one of only some records (a resource accounts list's) or one recorded too long ago
    (`calling_jobs.REFRESH_WAITING_SECONDS`: a job a defect left running) stands for none."""
    client, path, headers = sub.world.client, sub.path, sub.headers
    subscription_id = int(path.rsplit("/", 1)[1])

    async def running(session, detail: dict | None = None) -> int:  # type: ignore[no-untyped-def]
        """A refresh job as the engine leaves it while it runs (no workflow of its own: it stays so)."""
        enterprise_id = (await session.get(FusionSubscription, subscription_id)).enterprise_id
        job = await calling_repository.add_job(session, enterprise_id, REFRESH_TEAMS_USERS, detail=detail)
        job.status = "RUNNING"
        return job.id

    whole = await in_session(sub.world.live, running)
    known = [job.id for job in await _jobs(sub)]
    listed = await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 200, "refresh": "true"})
    assert listed.status_code == 200 and listed.json()["users"], listed.text
    assert [job.id for job in await _jobs(sub)] == known  # none recorded

    async def aged(session) -> None:  # type: ignore[no-untyped-def]
        job = await session.get(CallingJob, whole)
        job.created_at = utcnow() - timedelta(seconds=calling_jobs.REFRESH_WAITING_SECONDS + 60)

    await in_session(sub.world.live, aged)
    await in_session(sub.world.live, lambda session: running(session, {"voiceUserIds": [1]}))
    count = len(await _jobs(sub))
    again = await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 200, "refresh": "true"})
    assert again.status_code == 200 and again.json() == listed.json(), again.text
    job = await _completed_job(sub, count)  # (waited for: it reads the tenant, which the next test shares)
    assert (job.kind, job.detail, job.status, job.error) == (REFRESH_TEAMS_USERS, {}, "COMPLETED", None)
    assert len(await _jobs(sub)) == count + 1


async def _group_filter_delete_and_recreate_orphans_and_user_list(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    groups = await _groups(sub)
    assert groups and all(g["filter"] is False and "orphan" not in g for g in groups)
    assert all(set(g) == {"description", "displayName", "filter", "id", "teamsEnabled"} for g in groups)
    everyone = await _user_ids(sub)

    # Put two users in a real group, then filter on it: the users list narrows to its members.
    group = groups[0]
    alice, bob = everyone[1], everyone[2]
    for user in (alice, bob):
        put = await client.put(f"{path}/msteams/users/{user}/groups", headers=headers, json={"groups": [group["id"]]})
        assert put.status_code == 204, put.text
    members = await _members(sub, group["id"])
    assert {alice, bob} <= members

    # The spec's example body: both ids match no Office 365 group, so both come back as orphans.
    created = await client.post(f"{path}/msteams/groups", headers=headers, json=SPEC_FILTER)
    assert created.status_code == 204 and created.content == b""
    listed = await _groups(sub)
    orphans = [g for g in listed if g.get("orphan")]
    assert sorted(orphans, key=lambda g: g["displayName"]) == [
        {"displayName": "Group Test", "id": "444ce848-8b9b-4d14-8e99-90ee50ea150b", "orphan": True},
        {"displayName": "Group Test 2", "id": "461fr875-5g6r-5bp01-8h51-68fe90gs182j", "orphan": True}]
    assert all(g["filter"] is False for g in listed if not g.get("orphan"))
    assert await _user_ids(sub) == []  # a filter of orphans only matches nobody

    # Delete and recreate: the posted list replaces the whole filter. A script posts entries of the groups list back
    # as they are (description, filter, teamsEnabled, orphan: answered 400 "must be an object {id, displayName}").
    kept = [group, next(g for g in listed if g["id"] == SPEC_FILTER["groups"][0]["id"])]
    assert set(kept[0]) == {"description", "displayName", "filter", "id", "teamsEnabled"} and kept[1]["orphan"] is True
    body = {"groups": kept}
    posted = await client.post(f"{path}/msteams/groups", headers=headers, json=body)
    assert posted.status_code == 204, posted.text
    listed = await _groups(sub)
    assert [g["id"] for g in listed if g.get("filter")] == [group["id"]]
    assert [g["id"] for g in listed if g.get("orphan")] == [SPEC_FILTER["groups"][0]["id"]]
    assert len([g for g in listed if not g.get("orphan")]) == len(groups)
    filtered = await _user_ids(sub)
    assert set(filtered) == members and alice in filtered and len(filtered) < len(everyone)

    # Bad bodies: 400 with Fusion's envelope, and the saved filter is left as it was.
    for bad in ({}, {"groups": "x"}, {"groups": None}, {"groups": [{"id": "a"}]}, {"groups": [{"displayName": "A"}]},
                {"groups": [{"id": "", "displayName": "A"}]}, {"groups": [{"id": "a", "displayName": 3}]},
                {"groups": ["a"]}, {"groups": [{"id": "a", "displayName": "A", "extra": 1}]},
                {"groups": [{"id": "a", "displayName": "A"}, {"id": "a", "displayName": "B"}]},
                {"groups": [], "other": 1}, [body]):
        _assert_envelope(await client.post(f"{path}/msteams/groups", headers=headers, json=bad))
    # An id or displayName the filter cannot hold: a 400 naming it (PostgreSQL answered "A value in the request cannot
    # be stored", SQLite kept it; a control character was kept on both).
    for field, value in (("description", 3), ("filter", "yes"), ("teamsEnabled", None), ("orphan", 1), ("extra", 1),
                         ("id", "g" * 65), ("displayName", "x" * 256), ("displayName", "Sales\u0007")):
        bad = {"groups": [SPEC_FILTER["groups"][0], {"id": "a", "displayName": "A", field: value}]}
        reason = _assert_envelope(await client.post(f"{path}/msteams/groups", headers=headers, json=bad))["reason"]
        assert reason.startswith(f"groups[1].{field}: "), reason
    _assert_envelope(await client.post(f"{path}/msteams/groups", headers={**headers, "Content-Type": "application/json"},
                                       content=b"{not json"))
    assert [g["id"] for g in await _groups(sub) if g.get("filter") or g.get("orphan")] == [
        group["id"], SPEC_FILTER["groups"][0]["id"]]

    # An empty list removes the filter: everybody again.
    assert (await client.post(f"{path}/msteams/groups", headers=headers, json={"groups": []})).status_code == 204
    assert not [g for g in await _groups(sub) if g.get("filter") or g.get("orphan")]
    assert sorted(await _user_ids(sub)) == sorted(everyone)

    # Roles: reading and writing the filter each need their own role.
    tenant_uuid = path.split("/")[6]
    await sub.world.tenant_login(tenant_uuid, "group-reader", permissions=[f"{MST}.groups.read"])
    reader = await sub.world.as_("group-reader")
    assert (await client.get(f"{path}/msteams/groups", headers=reader)).status_code == 200
    denied = await client.post(f"{path}/msteams/groups", headers=reader, json=SPEC_FILTER)
    assert _assert_envelope(denied, 403)["code"] == 1003
    await sub.world.tenant_login(tenant_uuid, "users-only", permissions=[f"{MST}.users.list"])
    other = await sub.world.as_("users-only")
    assert _assert_envelope(await client.get(f"{path}/msteams/groups", headers=other), 403)["code"] == 1003
    assert not [g for g in await _groups(sub) if g.get("filter") or g.get("orphan")]  # the 403 wrote nothing


async def _users_group_parameter(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    groups = await _groups(sub)
    group = groups[-1]
    everyone = await _user_ids(sub)
    carol = everyone[3]
    assert (await client.put(f"{path}/msteams/users/{carol}/groups", headers=headers,
                             json={"groups": [group["id"]]})).status_code == 204
    members = await _members(sub, group["id"])
    in_group = await _user_ids(sub, group=group["id"])
    assert carol in in_group and set(in_group) <= members and len(in_group) < len(everyone)
    # `search` still applies inside a group; page tokens are bound to the group they were issued for.
    name = (await client.get(f"{path}/msteams/user/{carol}", headers=headers)).json()["msTeams"]["displayName"]
    searched = await _user_ids(sub, group=group["id"], search=name[:4].lower())
    assert carol in searched and all(u in in_group for u in searched)
    if len(in_group) > 1:
        first = (await client.get(f"{path}/msteams/users", headers=headers, params={"group": group["id"], "page_size": 1})).json()
        assert first["next"]
        replay = await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 1, "next": first["next"]})
        assert _assert_envelope(replay)["code"] == 2001
    missing = await client.get(f"{path}/msteams/users", headers=headers,
                               params={"group": "00000000-0000-0000-0000-00000000abcd"})
    _assert_envelope(missing, 404)


async def _sync_per_user_status_and_teams_state(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    alice, bob = [u["msTeams"]["id"] for u in await sub.users(2)]  # Teams Phone users: a number needs it
    for user, number in ((alice, sub.numbers[0]), (bob, sub.numbers[1])):
        put = await client.put(f"{path}/msteams/users/{user}/phone_number", headers=headers, json={"phoneNumber": number})
        assert put.status_code == 204, put.text
    alice_upn, bob_upn = [(await client.get(f"{path}/msteams/user/{u}", headers=headers)).json()["msTeams"]["userPrincipalName"]
                          for u in (alice, bob)]
    # Bob's number is removed in Teams behind Fusion's back; Alice stays in sync.
    await _voice(sub, lambda c: c.voice.remove_numbers(bob_upn))
    assert await sub.teams_numbers(bob) == []
    alice_before = await sub.graph(f"/admin/teams/userConfigurations/{alice}")
    known = len(await _jobs(sub))

    for bad in ({}, {"type": "bogus"}, {"type": None}, {"type": "normal", "extra": 1}, ["normal"]):
        _assert_envelope(await client.post(f"{path}/msteams/sync", headers=headers, json=bad))
    assert len(await _jobs(sub)) == known  # refused requests start nothing

    started = await client.post(f"{path}/msteams/sync", headers=headers, json={"type": "normal"})
    assert started.status_code == 200, started.text
    body = started.json()
    assert set(body) == {"msteams_user_ids"}
    assert sorted(body["msteams_user_ids"], key=lambda e: e["id"]) == sorted(
        [{"id": alice, "status": "syncing"}, {"id": bob, "status": "syncing"}], key=lambda e: e["id"])
    only_accounts = await client.post(f"{path}/msteams/sync", headers=headers, json={"type": "resource_account"})
    assert only_accounts.status_code == 200 and only_accounts.json() == {"msteams_user_ids": []}

    await _completed_job(sub, known + 1)
    jobs = await _jobs(sub)
    assert len(jobs) == known + 2
    for _ in range(300):  # both requests' jobs run to completion
        if all(j.status in ("COMPLETED", "FAILED") for j in jobs[known:]):
            break
        await asyncio.sleep(0.05)
        jobs = await _jobs(sub)
    assert [(j.status, j.error) for j in jobs[known:]] == [("COMPLETED", None), ("COMPLETED", None)]
    assert await _results(sub, jobs[known + 1].id) == {}  # type resource_account: the normal users are not touched
    results = {r["user_principal_name"].lower(): r for r in (await _results(sub, jobs[known].id)).values()}
    assert set(results) == {alice_upn.lower(), bob_upn.lower()}
    assert results[bob_upn.lower()]["status"] == "UPDATED"
    assert results[bob_upn.lower()]["changes"] == [f"number set to {sub.numbers[1]}"]
    assert results[alice_upn.lower()]["status"] == "UNCHANGED" and results[alice_upn.lower()]["changes"] == []

    assert await sub.teams_numbers(bob) == [sub.numbers[1]]  # put back from Fusion's record
    assert await sub.graph(f"/admin/teams/userConfigurations/{alice}") == alice_before  # left alone
    listed = (await client.get(f"{path}/msteams/users", headers=headers,
                               params={"page_size": 200, "filters": json.dumps({"have_number": "yes"})})).json()["users"]
    assert {u["msTeams"]["id"]: (u["draas"]["phoneNumber"], u["draas"]["status"]) for u in listed} == {
        alice: (sub.numbers[0], "active"), bob: (sub.numbers[1], "active")}

    await sub.world.tenant_login(path.split("/")[6], "no-sync", permissions=[f"{MST}.users.list"])
    denied = await client.post(f"{path}/msteams/sync", headers=await sub.world.as_("no-sync"), json={"type": "normal"})
    assert _assert_envelope(denied, 403)["code"] == 1003


async def _users_refresh_takes_the_numbers_teams_holds(sub: Onboarded, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spec 004's `refresh` is "Used to refresh users' phone numbers from MS Teams": it ran the sync, which pushed
    teamsvoice's records to Teams, so a number a tenant admin had given a user in the Teams admin centre was taken
    back and never showed in the list. Now the records take what Teams holds, and Teams is left as it is."""
    client, path, headers = sub.world.client, sub.path, sub.headers
    everyone = await _user_ids(sub)
    dave, eve = [u["msTeams"] for u in (await sub.users(4))[2:]]  # Teams Phone users besides Alice and Bob
    assert (await client.put(f"{path}/msteams/users/{dave['id']}/phone_number", headers=headers,
                             json={"phoneNumber": sub.numbers[2]})).status_code == 204
    # In Teams, behind Fusion's back: Dave gets another number of the subscription, Eve (no record) one too.
    for user, number in ((dave, sub.numbers[4]), (eve, sub.numbers[5])):
        await _voice(sub, lambda c: c.cmdlets.run("Set-CsPhoneNumberAssignment", {
            "Identity": user["userPrincipalName"], "PhoneNumber": number, "PhoneNumberType": "DirectRouting"}))
    known = len(await _jobs(sub))
    plain = await _user_ids(sub)
    assert sorted(plain) == sorted(everyone) and len(await _jobs(sub)) == known  # no refresh, no job
    refreshed = await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 200, "refresh": "true"})
    assert refreshed.status_code == 200, refreshed.text
    assert sorted(u["msTeams"]["id"] for u in refreshed.json()["users"]) == sorted(everyone)
    job = await _completed_job(sub, known)
    assert (job.kind, job.status, job.error) == ("REFRESH_TEAMS_USERS", "COMPLETED", None)
    results = {upn.lower(): result for upn, result in (await _results(sub, job.id)).items()}
    assert results[dave["userPrincipalName"].lower()]["status"] == "UPDATED", results
    assert results[eve["userPrincipalName"].lower()]["status"] == "UPDATED", results
    assert job.total == len(await _results(sub, job.id))

    assert await sub.teams_numbers(dave["id"]) == [sub.numbers[4]]  # nothing reverted in Teams
    assert await sub.teams_numbers(eve["id"]) == [sub.numbers[5]]
    with_number = {"page_size": 200, "filters": json.dumps({"have_number": "yes"})}
    listed = (await client.get(f"{path}/msteams/users", headers=headers, params=with_number)).json()["users"]
    numbers = {u["msTeams"]["id"]: (u["draas"]["phoneNumber"], u["draas"]["status"]) for u in listed}
    assert numbers[dave["id"]] == (sub.numbers[4], "active") and numbers[eve["id"]] == (sub.numbers[5], "active")
    held = await client.get(f"{path}/numbers", headers=headers, params={"search": sub.numbers[2][3:]})
    assert [n["assigned"] for n in held.json()["numbers"]] == [False], held.text  # Dave's number before is free again
    _assert_envelope(await client.get(f"{path}/msteams/users", headers=headers, params={"refresh": "maybe"}), 400)

    # A user whose adoption fails once it wrote (a refusal, say) is that user's FAILED result, and what it wrote is
    # undone (the users of a batch share one transaction, each in a savepoint); the others are adopted.
    for user, number in ((dave, sub.numbers[2]), (eve, sub.numbers[3])):
        await _voice(sub, lambda c: c.cmdlets.run("Set-CsPhoneNumberAssignment", {
            "Identity": user["userPrincipalName"], "PhoneNumber": number, "PhoneNumberType": "DirectRouting"}))
    adopt_user = refresh.adopt_user

    async def refused_after_writing(session, enterprise, user, quarantine_seconds):  # type: ignore[no-untyped-def]
        changes = await adopt_user(session, enterprise, user, quarantine_seconds)
        if user.user_principal_name == eve["userPrincipalName"].lower():
            await session.flush()
            raise ValidationFailed("refused for the test, once written")
        return changes

    monkeypatch.setattr(refresh, "adopt_user", refused_after_writing)
    known = len(await _jobs(sub))
    assert (await client.get(f"{path}/msteams/users", headers=headers, params={"refresh": "true"})).status_code == 200
    job = await _completed_job(sub, known)
    results = {upn.lower(): result for upn, result in (await _results(sub, job.id)).items()}
    assert results[dave["userPrincipalName"].lower()]["status"] == "UPDATED", results
    assert results[eve["userPrincipalName"].lower()]["status"] == "FAILED", results
    assert "refused for the test" in results[eve["userPrincipalName"].lower()]["error"], results
    listed = (await client.get(f"{path}/msteams/users", headers=headers, params=with_number)).json()["users"]
    numbers = {u["msTeams"]["id"]: u["draas"]["phoneNumber"] for u in listed}
    assert (numbers[dave["id"]], numbers[eve["id"]]) == (sub.numbers[2], sub.numbers[5]), numbers


async def test_resource_accounts_list_filters(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    domain, tag = sub.tenant["domain"], secrets.token_hex(3)
    queue = {"accountType": "call-queue", "userPrincipalName": f"cq_filters_{tag}@{domain}", "displayName": "Filter Queue",
             "location": "BE", "phoneNumber": sub.numbers[3]}
    attendant = {"accountType": "auto-attendant", "userPrincipalName": f"aa_filters_{tag}@{domain}", "displayName": "Filter AA",
                 "location": "NL"}
    ids = []
    for body in (queue, attendant):
        created = await client.post(f"{path}/msteams/resource_accounts", headers=headers, json=body)
        assert created.status_code == 200, created.text
        ids.append(created.json()["id"])

    async def listed(filters: object | None = None) -> dict[str, dict]:
        params = {"filters": json.dumps(filters)} if filters is not None else {}
        response = await client.get(f"{path}/msteams/resource_accounts", headers=headers, params=params)
        assert response.status_code == 200, response.text
        return {a["msTeams"]["userPrincipalName"].lower(): a for a in response.json()["resourceAccounts"]}

    for _ in range(200):
        accounts = await listed()
        mine = [accounts.get(b["userPrincipalName"].lower()) for b in (queue, attendant)]
        if all(a and a.get("draas", {}).get("status") == "active" for a in mine):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"resource accounts did not settle: {mine}")
    cq, aa = queue["userPrincipalName"].lower(), attendant["userPrincipalName"].lower()
    assert accounts[cq]["msTeams"]["phoneNumber"] == sub.numbers[3] and accounts[cq]["draas"]["phoneNumber"] == sub.numbers[3]
    assert "phoneNumber" not in accounts[aa]["msTeams"]

    def ours(found: dict[str, dict]) -> set[str]:
        return set(found) & {cq, aa}

    assert ours(await listed({"type": "call-queue"})) == {cq}
    assert all(a["msTeams"]["accountType"] == "call-queue" for a in (await listed({"type": "call-queue"})).values())
    assert ours(await listed({"type": "auto-attendant"})) == {aa}
    assert ours(await listed({"have_number": "yes"})) == {cq}
    assert all("phoneNumber" in a["msTeams"] for a in (await listed({"have_number": "yes"})).values())
    assert ours(await listed({"have_number": "no"})) == {aa}
    assert ours(await listed({"country": ["NL"]})) == {aa}
    assert ours(await listed({"country": ["be", "NL"]})) == {cq, aa}
    assert ours(await listed({"country": ["BE"], "type": "auto-attendant"})) == set()
    assert ours(await listed([{"type": "call-queue"}, {"have_number": "yes"}])) == {cq}  # the spec's array form
    for bad in ("{bad", json.dumps({"type": "queue"}), json.dumps({"have_number": "maybe"}), json.dumps({"colour": "x"}),
                json.dumps({"country": 3}), json.dumps("x")):
        _assert_envelope(await client.get(f"{path}/msteams/resource_accounts", headers=headers, params={"filters": bad}))
    _assert_envelope(await client.get(f"{path}/msteams/resource_accounts", headers=headers, params={"refresh": "maybe"}))

    # refresh: the accounts' numbers are taken from Teams in the background (only theirs), and Teams is left alone.
    cq_id = accounts[cq]["msTeams"]["id"]
    await _voice(sub, lambda c: c.voice.remove_numbers(accounts[cq]["msTeams"]["userPrincipalName"]))
    assert await sub.teams_numbers(cq_id) == []
    known = len(await _jobs(sub))
    assert (await client.get(f"{path}/msteams/resource_accounts", headers=headers)).status_code == 200
    assert len(await _jobs(sub)) == known  # no refresh, no job
    refreshed = await client.get(f"{path}/msteams/resource_accounts", headers=headers, params={"refresh": "true"})
    assert refreshed.status_code == 200 and ours({a["msTeams"]["userPrincipalName"].lower(): a
                                                  for a in refreshed.json()["resourceAccounts"]}) == {cq, aa}
    job = await _completed_job(sub, known)
    assert (job.kind, job.status) == ("REFRESH_TEAMS_USERS", "COMPLETED"), job.error
    outcomes = {r["user_principal_name"].lower(): r["status"] for r in (await _results(sub, job.id)).values()}
    assert outcomes.get(cq) == "UPDATED" and set(outcomes) <= {cq, aa}, (outcomes, job.total, job.error)
    assert await sub.teams_numbers(cq_id) == []  # not put back
    assert "phoneNumber" not in (await listed())[cq]["draas"]
    # The account's wish followed Teams: its next change does not send the number back either.
    renamed = await client.put(f"{path}/msteams/resource_accounts/{ids[0]}", headers=headers,
                               json={"displayName": "Filter Queue Renamed"})
    assert renamed.status_code == 200, renamed.text
    assert (await sub.resource_account_settled(ids[0]))["draas"]["status"] == "active"
    assert await sub.teams_numbers(cq_id) == []
    await sub.world.tenant_login(path.split("/")[6], "ra-none", permissions=[f"{MST}.users.list"])
    denied = await client.get(f"{path}/msteams/resource_accounts", headers=await sub.world.as_("ra-none"))
    assert _assert_envelope(denied, 403)["code"] == 1003


async def test_a_user_deleted_in_microsoft_is_freed_by_a_sync(sub: Onboarded) -> None:
    """A user deleted in Microsoft 365 (outside teamsvoice) kept its number in Fusion for ever: the sync said "Not
    found" and every route that could free it answered 404. The sync now frees its record; the number goes to
    quarantine, as at offboarding."""
    client, path, headers = sub.world.client, sub.path, sub.headers
    upn = f"leaver_{secrets.token_hex(3)}@{sub.tenant['domain']}"
    created = await _voice(sub, lambda c: c.directory_admin.create_user(
        user_principal_name=upn, display_name="Leaver", mail_nickname=upn.split("@")[0], password="Leaver-Passw0rd!",
        usage_location="BE"))
    teams_phone = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"  # MCOEV: a number needs it
    await _voice(sub, lambda c: c.directory_admin.assign_licences(created.id, add=[teams_phone]))
    number = sub.numbers[3]
    put = await client.put(f"{path}/msteams/users/{created.id}/phone_number", headers=headers, json={"phoneNumber": number})
    assert put.status_code == 204, put.text
    await _voice(sub, lambda c: c.directory_admin.delete_user(created.id))
    known = len(await _jobs(sub))
    assert (await client.post(f"{path}/msteams/sync", headers=headers, json={"type": "normal"})).status_code == 200
    job = await _completed_job(sub, known)
    outcome = {r["user_principal_name"].lower(): r for r in (await _results(sub, job.id)).values()}[upn.lower()]
    assert outcome["status"] == "USER_DELETED" and outcome["changes"] == [f"{number} freed (quarantine)"], outcome
    held = (await client.get(f"{path}/numbers", headers=headers, params={"search": number[3:]})).json()["numbers"]
    assert [n["assigned"] for n in held] == [False], held
    disconnected = (await client.get(f"{path}/number_inventory", headers=headers, params={"status": "disconnected"})).json()
    assert number in [n["countryCode"] + n["nsn"] for n in disconnected["numbers"]], disconnected
    someone = next(u["msTeams"]["id"] for u in await sub.users(3))
    refused = await client.put(f"{path}/msteams/users/{someone}/phone_number", headers=headers, json={"phoneNumber": number})
    assert refused.status_code == 400 and "quarantine" in refused.json()["error"]["reason"], refused.text
