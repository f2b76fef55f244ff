"""Issue 11 part 2 end to end against the emulator: out-of-band changes of each kind (a number moved to
another user, a policy granted by hand, a route deleted, a user deleted in Entra ID while holding a number)
show in the plan with the right action; a drift scan records them and posts signed events; apply converges
and a second plan is empty; another reseller sees none of it."""

import asyncio
import hashlib
import hmac
import json
import random
import time
import uuid

import anyio
import httpx
import pytest
from dbos import DBOS
from sqlalchemy import create_engine, text

from typer.testing import CliRunner

from teamsvoice import cli
from teamsvoice.core.db import sync_url
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.cli.support import server_env, teamsvoice, teamsvoice_process
from tests.support.ctt import bearer, token_for
from tests.support.emulated import TEAMS_PHONE_SKU, TEAMS_PHONE_USERS
from tests.support.onboarding import Onboarding

DOMAIN = "voice-state.example"
API = "/api/teamsvoice/v1"


def _emulated_tenant(live, domain: str, users: int = 6) -> dict:
    with httpx.Client(base_url=live.emulator.url, verify=str(live.emulator.ca_cert_path), timeout=30) as http:
        created = http.post("/_admin/tenants", json={"displayName": "Voice State", "domain": domain, "userCount": users,
                                                     "globalAdmin": {"username": f"admin@{domain}", "password": "Vs-admin-1!"}})
    assert created.status_code == 201, created.text
    body = created.json()
    return {"tenantId": body["tenantId"], "domain": body["domain"],
            "globalAdmin": {"username": body["globalAdmin"]["username"], "password": "Vs-admin-1!"}}


@pytest.fixture
def tenant(live) -> dict:
    return _emulated_tenant(live, DOMAIN)


def _sql(live, statement: str, **values) -> list:
    engine = create_engine(sync_url(live.settings.effective_database_url))
    with engine.begin() as connection:
        result = connection.execute(text(statement), values)
        rows = list(result) if result.returns_rows else []
    engine.dispose()
    return rows


async def _cli(live, *args: str):
    """`teamsvoice ...` on the live server's database and emulator."""
    argv = [args[0], *args[1:], "--data-dir", str(live.settings.data_dir)]
    return await anyio.to_thread.run_sync(lambda: CliRunner().invoke(cli.app, argv, env=server_env(live)))


async def _wait_job(client, token: str, tenant_id: str, job_id: int) -> dict:
    deadline = time.monotonic() + 60
    while True:
        body = (await client.get(f"{API}/tenants/{tenant_id}/apply/{job_id}", headers=bearer(token))).json()
        if body["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


async def _apply(client, token: str, tenant_id: str, **body) -> dict:
    started = await client.post(f"{API}/tenants/{tenant_id}/apply", headers=bearer(token), json=body or None)
    assert started.status_code == 202, started.text
    job = await _wait_job(client, token, tenant_id, started.json()["jobId"])
    assert job["status"] == "completed" and job["failed"] == 0, job
    return job


async def _grant_by_hand(live, tenant_id: str, upn: str, policy: str | None) -> None:
    """An administrator grants a voice routing policy in PowerShell (None: back to Global), outside teamsvoice."""
    connection = MicrosoftConnector(live.settings)
    try:
        await connection.connect(tenant_id).cmdlets.run("Grant-CsOnlineVoiceRoutingPolicy", {"Identity": upn, "PolicyName": policy})
    finally:
        await connection.aclose()


async def _plan(client, token: str, tenant_id: str) -> dict:
    response = await client.get(f"{API}/tenants/{tenant_id}/plan", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


async def test_out_of_band_changes_plan_drift_apply(client, live, organisation, receiver, tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    receiver.reset()
    onboarding = Onboarding(client, live, organisation, receiver, tenant)
    await onboarding.register()
    token, tenant_id = onboarding.token, tenant["tenantId"]
    tag = uuid.uuid4().hex[:6]
    connection = MicrosoftConnector(live.settings)
    try:
        microsoft = connection.connect(tenant_id)
        users = [u async for u in microsoft.graph.pages("/users", **{"$select": "id,userPrincipalName"})
                 if not u["userPrincipalName"].startswith("admin@")]
        created = await microsoft.graph.post("/users", {
            "accountEnabled": True, "displayName": f"Leaver {tag}", "mailNickname": f"leaver{tag}",
            "userPrincipalName": f"leaver-{tag}@{DOMAIN}", "usageLocation": "BE",
            "passwordProfile": {"password": "Leaver-pw-1!", "forceChangePasswordNextSignIn": False}})
        assert created.status_code == 201, created.text
        leaver = created.json()
        created = await microsoft.graph.post("/users", {
            "accountEnabled": True, "displayName": f"Disabled {tag}", "mailNickname": f"disabled{tag}",
            "userPrincipalName": f"disabled-{tag}@{DOMAIN}", "usageLocation": "BE",
            "passwordProfile": {"password": "Disabled-pw-1!", "forceChangePasswordNextSignIn": False}})
        assert created.status_code == 201, created.text
        dis = created.json()  # (a fresh user: the emulated tenant outlives a backend's run)
        for fresh in (leaver, dis):  # Teams Phone, which their numbers need
            licensed = await microsoft.graph.post(f"/users/{fresh['id']}/assignLicense", {
                "addLicenses": [{"skuId": TEAMS_PHONE_SKU, "disabledPlans": []}], "removeLicenses": []})
            assert licensed.status_code == 200, licensed.text
        ada, bob, eve = users[0], users[1], users[2]
        base = 3225000000 + random.randrange(0, 90000) * 10
        n_ada, n_bob, n_leaver, n_dis = f"+{base}", f"+{base + 1}", f"+{base + 2}", f"+{base + 4}"
        usage = f"teamsvoice-vs-{tag}"

        # teamsvoice's records: a direct route and three voice users.
        sbc, sbc_fqdn = _sql(live, "SELECT id, fqdn FROM sbc_gateways WHERE reseller_id = :r ORDER BY id",
                             r=onboarding.login.reseller_id)[0]
        label = sbc_fqdn.split(".")[0].lower()
        _sql(live, "INSERT INTO direct_routes (enterprise_id, sbc_gateway_id, tenant_id, gateway_fqdn, sip_port, pstn_usage, "
             "voice_route, number_pattern, voice_routing_policy, last_changes, provisioned_at, created_at) VALUES (:e, :s, :t, "
             ":f, 5061, :u, :u, '^\\+?\\d+$', :u, '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
             e=onboarding.enterprise_id, s=sbc, t=tenant_id, f=f"{label}.{DOMAIN}", u=usage)
        for user, number in ((ada, n_ada), (bob, n_bob), (leaver, n_leaver), (dis, n_dis)):
            _sql(live, "INSERT INTO teams_voice_users (enterprise_id, user_principal_name, microsoft_user_id, phone_number, "
                 "voice_routing_policy, calling_enabled, updated_at) VALUES (:e, :upn, :id, :n, :p, :c, CURRENT_TIMESTAMP)",
                 e=onboarding.enterprise_id, upn=user["userPrincipalName"].lower(), id=user["id"], n=number, p=usage, c=True)

        # The first plan creates everything; apply converges; the second plan is empty.
        first = await _plan(client, token, tenant_id)
        assert {d["id"] for d in first["differences"]} >= {f"route:{usage}", f"policy:{usage}",
                                                            f"user:{ada['userPrincipalName'].lower()}:phoneNumber"}
        await _apply(client, token, tenant_id)
        assert (await _plan(client, token, tenant_id))["empty"] is True
        assert (await _plan(client, token, tenant_id.upper()))["empty"] is True  # a GUID, named in any case (a 404)

        # Out-of-band changes, as an admin would make them in PowerShell and Entra ID.
        run = microsoft.cmdlets.run
        await run("Remove-CsPhoneNumberAssignment", {"Identity": ada["userPrincipalName"], "RemoveAll": True})
        await run("Set-CsPhoneNumberAssignment", {"Identity": eve["userPrincipalName"], "PhoneNumber": n_ada,
                                                  "PhoneNumberType": "DirectRouting"})
        await run("New-CsOnlineVoiceRoutingPolicy", {"Identity": f"vip-{tag}", "OnlinePstnUsages": [usage]})
        await run("Grant-CsOnlineVoiceRoutingPolicy", {"Identity": bob["userPrincipalName"], "PolicyName": f"vip-{tag}"})
        await run("Remove-CsOnlineVoiceRoute", {"Identity": usage})
        assert (await microsoft.graph.delete(f"/users/{leaver['id']}")).status_code == 204
        # Disabled (not deleted) in Entra ID while holding a number: it still holds it in Teams.
        assert (await microsoft.graph.patch(f"/users/{dis['id']}", {"accountEnabled": False})).status_code == 204
    finally:
        await connection.aclose()

    plan = await _plan(client, token, tenant_id)
    found = {d["id"]: (d["action"], d["drift"]) for d in plan["differences"]}
    ada_upn, bob_upn, leaver_upn = ada["userPrincipalName"].lower(), bob["userPrincipalName"].lower(), leaver["userPrincipalName"].lower()
    dis_upn = dis["userPrincipalName"].lower()
    assert found == {
        f"user:{dis_upn}:account": ("remove", "user_disabled"),
        f"user:{dis_upn}:phoneNumber": ("remove", "user_disabled"),
        f"user:{dis_upn}:enterpriseVoice": ("change", "user_disabled"),
        f"route:{usage}": ("create", "route_deleted"),
        f"number:{n_ada}": ("remove", "number_moved"),
        f"user:{ada_upn}:phoneNumber": ("create", "number_moved"),
        f"user:{bob_upn}:voiceRoutingPolicy": ("change", "policy_granted_by_hand"),
        f"user:{leaver_upn}:account": ("remove", "user_deleted"),
    }, plan

    # The CLI shows the same plan, readable and as JSON.
    cli_plan = await _cli(live, "plan", tenant_id)
    assert cli_plan.exit_code == 0, cli_plan.output
    assert f"+ create route:{usage}" in cli_plan.output and "(user_deleted)" in cli_plan.output
    assert {d["id"] for d in json.loads((await _cli(live, "plan", tenant_id, "--json")).output)["differences"]} == set(found)

    # A drift scan records the events and posts each, signed, to the reseller's webhook.
    hook = await client.put(f"{API}/webhook", headers=bearer(token), json={"url": f"{receiver.url}/drift"})
    assert hook.status_code == 200, hook.text
    secret = hook.json()["secret"]
    before = len(receiver.received)
    scan = await client.post(f"{API}/drift/scan", headers=bearer(token))
    assert scan.status_code == 202 and scan.json()["tenants"] == 1
    posted = receiver.wait_for(before + len(found))[before:]
    for delivery in posted:
        headers = delivery["headers"]
        expected = "sha256=" + hmac.new(secret.encode(), delivery["raw"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-teamsvoice-signature"], expected)
        assert headers["x-teamsvoice-timestamp"] == str(delivery["body"]["timestamp"])
        assert delivery["body"]["type"] == "drift.detected" and delivery["body"]["tenantId"] == tenant_id
    assert {d["body"]["event"]["differenceId"] for d in posted} == set(found)
    events = (await client.get(f"{API}/drift", headers=bearer(token), params={"tenant": tenant_id})).json()
    assert {e["differenceId"] for e in events} == set(found)
    assert all(e["firstSeenAt"] and e["resolvedAt"] is None for e in events)
    metrics = (await client.get("/metrics")).text
    assert f'teamsvoice_voice_drifted_objects{{tenant="{tenant_id}"}} {len(found)}.0' in metrics

    # Another reseller sees neither the tenant nor its drift.
    other = await token_for(client, organisation.resellers[1])
    assert (await client.get(f"{API}/tenants/{tenant_id}/plan", headers=bearer(other))).status_code == 404
    assert (await client.post(f"{API}/tenants/{tenant_id}/apply", headers=bearer(other))).status_code == 404
    assert (await client.get(f"{API}/drift", headers=bearer(other))).json() == []

    # Apply adopts the hand-granted policy into the records and converges the rest; the second plan is empty;
    # the leaver's number is free in the records.
    before = len(receiver.received)
    receiver.fail_next = 2
    job = await _apply(client, token, tenant_id, adopt=[f"user:{bob_upn}:voiceRoutingPolicy"])
    assert {r["id"] for r in job["results"]} == set(found) - {f"user:{bob_upn}:voiceRoutingPolicy"}
    assert (await _plan(client, token, tenant_id))["empty"] is True
    assert _sql(live, "SELECT phone_number FROM teams_voice_users WHERE user_principal_name = :u", u=leaver_upn) == [(None,)]
    # The disabled user is offboarded: its number is gone in Teams and free in the records (after quarantine).
    assert _sql(live, "SELECT phone_number, calling_enabled FROM teams_voice_users WHERE user_principal_name = :u",
                u=dis_upn) == [(None, False)]
    assert _sql(live, "SELECT previous_holder FROM voice_number_quarantine WHERE e164 = :n", n=n_dis) == [(dis_upn,)]
    assert _sql(live, "SELECT voice_routing_policy FROM teams_voice_users WHERE user_principal_name = :u", u=bob_upn) == [(f"vip-{tag}",)]
    # The apply scans the tenant again at its end: every event it fixed (the adopted one too) is resolved at
    # once, not at the next scheduled scan, and the webhook is told (a receiver failing at first gets retries).
    resolved = receiver.wait_for(before + len(found))[before:]
    assert {d["body"]["type"] for d in resolved} == {"drift.resolved"}
    assert {d["body"]["event"]["differenceId"] for d in resolved} == set(found)
    assert receiver.attempts - len(receiver.received) == 2  # the two refused posts were retried
    assert (await client.get(f"{API}/drift", headers=bearer(token))).json() == []
    assert json.loads((await _cli(live, "drift", "--json")).output) == []
    cli_apply = await asyncio.to_thread(teamsvoice_process, live, "apply", tenant_id)  # (it enqueues: a process of its own)
    assert cli_apply.returncode == 0 and "no differences" in cli_apply.stdout, (cli_apply.stdout, cli_apply.stderr)

    # Offboarding: the leaver's number is in quarantine, and cannot be given to anyone meanwhile.
    assert _sql(live, "SELECT previous_holder FROM voice_number_quarantine WHERE e164 = :n", n=n_leaver) == [(leaver_upn,)]
    exported = (await client.get(f"{API}/tenants/{tenant_id}/export", headers=bearer(token))).json()
    assert {u["userPrincipalName"]: u["phoneNumber"] for u in exported["users"]}[ada_upn] == n_ada
    eve_upn = eve["userPrincipalName"].lower()
    hostile = exported | {"users": [*exported["users"], {"userPrincipalName": eve_upn, "phoneNumber": n_leaver,
                                                         "voiceRoutingPolicy": None, "callingEnabled": True}]}
    refused = await client.post(f"{API}/tenants/{tenant_id}/restore", headers=bearer(token), json=hostile)
    assert refused.status_code == 409 and "quarantine" in refused.json()["message"], refused.text

    # Export, lose a record's number, restore: the desired state is back and the tenant matches it again.
    _sql(live, "UPDATE teams_voice_users SET phone_number = NULL WHERE user_principal_name = :u", u=ada_upn)
    assert (await _plan(client, token, tenant_id))["empty"] is False
    restored = await client.post(f"{API}/tenants/{tenant_id}/restore", headers=bearer(token), json=exported)
    assert restored.status_code == 200 and restored.json()["notRestored"] == [], restored.text
    assert (await _plan(client, token, tenant_id))["empty"] is True
    bad = await client.post(f"{API}/tenants/{tenant_id}/restore", headers=bearer(token), json={"version": 1, "users": [1]})
    assert bad.status_code == 400 and "users[0]" in bad.json()["message"]

    # Number reconciliation: a number assigned by hand, unknown to the inventory and the records, is reported.
    n_stray = f"+{base + 3}"
    connection = MicrosoftConnector(live.settings)
    try:
        await connection.connect(tenant_id).cmdlets.run("Set-CsPhoneNumberAssignment", {
            "Identity": eve["userPrincipalName"], "PhoneNumber": n_stray, "PhoneNumberType": "DirectRouting"})
    finally:
        await connection.aclose()
    report = (await client.get(f"{API}/numbers/reconciliation", headers=bearer(token))).json()
    findings = {f["number"]: f for f in report["findings"]}
    assert findings[n_stray]["finding"] == "assigned_in_teams_unknown_to_inventory"
    assert findings[n_stray]["teamsHolder"] == eve_upn and report["unreachable"] == []
    assert (await client.get(f"{API}/numbers/reconciliation", headers=bearer(other))).json()["findings"] == []

    # Auto-apply: a tenant that opted in is converged after a scan finds drift.
    opted = await client.put(f"{API}/tenants/{tenant_id}/drift-settings", headers=bearer(token), json={"autoApply": True})
    assert opted.status_code == 200 and opted.json()["autoApply"] is True
    assert (await client.put(f"{API}/tenants/{tenant_id}/drift-settings", headers=bearer(token),
                             json={"autoApply": "yes"})).status_code == 400
    await _grant_by_hand(live, tenant_id, ada["userPrincipalName"], None)
    assert (await _plan(client, token, tenant_id))["empty"] is False
    await client.post(f"{API}/drift/scan", headers=bearer(token))
    deadline = time.monotonic() + 30
    while not (await _plan(client, token, tenant_id))["empty"]:
        assert time.monotonic() < deadline, "auto-apply did not converge the tenant"
        time.sleep(0.2)
    while _sql(live, "SELECT status FROM voice_apply_jobs WHERE trigger = 'auto'") != [("completed",)]:
        assert time.monotonic() < deadline, "the auto-apply job did not complete"
        time.sleep(0.1)
    while (await client.get(f"{API}/drift", headers=bearer(token))).json():  # its own scan at its end resolves it
        assert time.monotonic() < deadline, "the auto-apply did not resolve the drift it fixed"
        time.sleep(0.1)

    # The CLI's apply resolves the drift it fixes as well.
    assert (await client.put(f"{API}/tenants/{tenant_id}/drift-settings", headers=bearer(token),
                             json={"autoApply": False})).status_code == 200
    await _grant_by_hand(live, tenant_id, ada["userPrincipalName"], None)
    scanned = json.loads((await _cli(live, "drift", "--scan", "--json")).output)
    assert [e["differenceId"] for e in scanned] == [f"user:{ada_upn}:voiceRoutingPolicy"]
    cli_apply = await asyncio.to_thread(teamsvoice_process, live, "apply", tenant_id)
    assert cli_apply.returncode == 0, (cli_apply.stdout, cli_apply.stderr)
    assert json.loads((await _cli(live, "drift", "--json")).output) == []

    # Offboarding: bob's number goes to quarantine, Teams loses it, his account is disabled; the plan stays empty.
    offboarded = await client.post(f"{API}/tenants/{tenant_id}/users/{bob_upn}/offboard", headers=bearer(token), json={})
    assert offboarded.status_code == 200 and offboarded.json()["numberFreed"] == n_bob, offboarded.text
    assert _sql(live, "SELECT previous_holder FROM voice_number_quarantine WHERE e164 = :n", n=n_bob) == [(bob_upn,)]
    assert (await _plan(client, token, tenant_id))["empty"] is True
    connection = MicrosoftConnector(live.settings)
    try:
        account = await connection.connect(tenant_id).graph.get(f"/users/{bob['id']}", **{"$select": "accountEnabled"})
        assert account["accountEnabled"] is False
        await connection.connect(tenant_id).directory_admin.update_user(bob["id"], account_enabled=True)
    finally:
        await connection.aclose()
    assert (await client.post(f"{API}/tenants/{tenant_id}/users/nobody@{DOMAIN}/offboard", headers=bearer(token))).status_code == 404

    # Export, then restore into a replacement tenant with another domain: the old tenant gives its numbers up
    # (restore of a document without users, then apply), the new one gets the routing and the users.
    _sql(live, "UPDATE teams_voice_users SET voice_routing_policy = :p WHERE user_principal_name = :u", p=usage, u=bob_upn)
    await _apply(client, token, tenant_id)
    exported = (await client.get(f"{API}/tenants/{tenant_id}/export", headers=bearer(token))).json()
    released = await client.post(f"{API}/tenants/{tenant_id}/restore", headers=bearer(token), json={"version": 1})
    assert released.status_code == 200, released.text
    await _apply(client, token, tenant_id)
    new_domain = "voice-state-2.example"
    replacement = _emulated_tenant(live, new_domain)
    second = Onboarding(client, live, organisation, receiver, replacement)
    await second.register()
    restored = await client.post(f"{API}/tenants/{replacement['tenantId']}/restore", headers=bearer(token),
                                 json={"document": exported, "renameDomain": {"from": DOMAIN, "to": new_domain}})
    assert restored.status_code == 200 and restored.json()["notRestored"] == [], restored.text
    creates = {d["id"]: d["action"] for d in (await _plan(client, token, replacement["tenantId"]))["differences"]}
    # (the emulated tenants outlive the test: on the second backend the users already hold the first run's numbers)
    assert creates[f"route:{usage}"] == "create"
    assert creates[f"user:{ada_upn.split('@')[0]}@{new_domain}:phoneNumber"] in ("create", "change")
    # A defect in one operation fails that operation, named by its type; the job ends (it stayed running for ever).
    from teamsvoice.domain.voice_state import workflows

    async def defect(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a defect")
    monkeypatch.setattr(workflows, "run_operation", defect)
    started = await client.post(f"{API}/tenants/{replacement['tenantId']}/apply", headers=bearer(token))
    broken = await _wait_job(client, token, replacement["tenantId"], started.json()["jobId"])
    assert broken["status"] == "completed" and broken["failed"] >= 1, broken
    assert "Unexpected error: RuntimeError" in {r["detail"] for r in broken["results"] if r["status"] == "failed"}
    monkeypatch.undo()
    await _apply(client, token, replacement["tenantId"])
    assert (await _plan(client, token, replacement["tenantId"]))["empty"] is True
    copy = (await client.get(f"{API}/tenants/{replacement['tenantId']}/export", headers=bearer(token))).json()
    renamed = {u["userPrincipalName"].replace(DOMAIN, new_domain): u | {"userPrincipalName": u["userPrincipalName"].replace(
        DOMAIN, new_domain)} for u in exported["users"] if u["callingEnabled"]}
    assert {u["userPrincipalName"]: u for u in copy["users"] if u["callingEnabled"]} == renamed
    assert [r["identity"] for r in copy["voiceRoutes"]] == [r["identity"] for r in exported["voiceRoutes"]]
    # Each apply's scan at its end posted its events: all of them reach the webhook, and their jobs end (none is
    # left running when the job engine stops). (DBOS's synchronous API in a thread: see the SBC test.)
    deadline = time.monotonic() + 60
    while (_sql(live, "SELECT count(*) FROM voice_drift_deliveries WHERE status = 'pending'") != [(0,)]
           or await asyncio.to_thread(DBOS.list_workflows, name="voice_drift_delivery", status=["PENDING", "ENQUEUED"],
                                      load_input=False, load_output=False)):
        assert time.monotonic() < deadline, _sql(live, "SELECT id, attempts, last_error FROM voice_drift_deliveries "
                                                       "WHERE status = 'pending'")
        time.sleep(0.2)


async def test_fusion_logins_use_the_api_with_fusion_scoping(client, live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """teamsvoice's own API takes Fusion access tokens too: system, distributor and reseller logins see the
    tenants under their node, a tenant login its own tenant's, another reseller nothing; a login without the
    route's Fusion role gets 403; reseller-only routes refuse a tenant login."""
    from tests.api.fusion.support import BASE, make_world
    from tests.api.fusion.support import bearer as fusion_bearer

    world = await make_world(client, live, organisation)
    ours = await world.create_tenant(name="Voice State Fusion")
    subscription = await world.create_subscription(ours["uuid"])
    microsoft = live.emulator.tenants[0]
    await world.onboard(f"{BASE}/tenants/{ours['uuid']}/subscriptions/{subscription['id']}", microsoft)
    tenant_id = microsoft["tenantId"]
    theirs = await world.create_tenant(name="Another customer")
    await world.tenant_login(ours["uuid"], "vs-tenant-admin")
    await world.tenant_login(theirs["uuid"], "vs-other-tenant-admin")
    await world.tenant_login(ours["uuid"], "vs-no-role", permissions=["tenants.instance.read"])

    async def get(who: str, path: str) -> httpx.Response:
        return await client.get(f"{API}{path}", headers=await world.as_(who))

    for who in ("reseller", "distributor", "system", "vs-tenant-admin"):
        listed = await get(who, "/tenants")
        assert listed.status_code == 200 and tenant_id in [t["tenantId"] for t in listed.json()], (who, listed.text)
        plan = await get(who, f"/tenants/{tenant_id}/plan")
        assert plan.status_code == 200 and plan.json()["tenantId"] == tenant_id, (who, plan.text)
    assert (await get("vs-tenant-admin", f"/tenants/{tenant_id}/export")).json()["tenantId"] == tenant_id
    for who in ("other-reseller", "vs-other-tenant-admin"):
        assert tenant_id not in [t["tenantId"] for t in (await get(who, "/tenants")).json()], who
        assert (await get(who, f"/tenants/{tenant_id}/plan")).status_code == 404, who
        assert (await get(who, "/drift")).json() == []
    denied = await get("vs-no-role", f"/tenants/{tenant_id}/plan")
    assert denied.status_code == 403 and "msteams.status.read" in denied.json()["message"], denied.text
    scan = await client.post(f"{API}/drift/scan", headers=await world.as_("reseller"))
    assert scan.status_code == 202 and scan.json()["tenants"] == 1, scan.text
    # A defect while one tenant is scanned is that tenant's scan error, named by its type: the scan goes on (it
    # ended the scan, and every scan after it stopped at the same tenant, the tenants after it never scanned).
    from teamsvoice.domain.voice_state import workflows

    async def defect(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a defect")

    async def scanned(field: str) -> str | None:
        for _ in range(300):
            [row] = [t for t in (await get("reseller", "/tenants")).json() if t["tenantId"] == tenant_id]
            if row[field] is not None:
                return row[field]
            await anyio.sleep(0.1)
        return None

    assert await scanned("lastScanAt")  # the scan above has ended
    monkeypatch.setattr(workflows, "plan_tenant", defect)
    assert (await client.post(f"{API}/drift/scan", headers=await world.as_("reseller"))).status_code == 202
    assert await scanned("lastScanError") == "Unexpected error: RuntimeError"
    monkeypatch.undo()
    reseller_only = await client.put(f"{API}/tenants/{tenant_id}/drift-settings", headers=await world.as_("vs-tenant-admin"),
                                     json={"autoApply": True})
    assert reseller_only.status_code == 403 and "reseller-level" in reseller_only.json()["message"]
    settings = await client.put(f"{API}/tenants/{tenant_id}/drift-settings", headers=await world.as_("reseller"),
                                json={"autoApply": False})
    assert settings.status_code == 200 and settings.json() == {"tenantId": tenant_id, "autoApply": False}
    forged = await client.get(f"{API}/tenants", headers=fusion_bearer("eyJhbGciOiJIUzI1NiJ9.e30.x"))
    assert forged.status_code == 401


async def test_applies_started_at_the_same_moment_run_once(client, live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Applies of one tenant sent at the same moment (a customer's script, a colleague, the console): one runs, the
    others are told an apply is already running, as a later one is. Each found none running, and each ran, acting
    on Microsoft side by side (a probe: one number assigned eight times, routes created twice). The job is held
    before its plan until every start is answered, so that a start coming after it ended cannot rightly run again.
    Meanwhile an earlier failed apply is not retried beside it, and a job ended while its workflow still runs (as
    migration 0017 ends the older of two running ones) acts on Microsoft no more."""
    import threading

    from teamsvoice.core.errors import Conflict
    from teamsvoice.domain.jobs import catalogue
    from teamsvoice.domain.voice_state import workflows
    from tests.api.fusion.users_support import onboard
    from tests.support.database import in_session

    sub = await onboard(client, live, organisation, count=1)
    tenant_id = sub.tenant["tenantId"]
    upn = (await sub.users(1))[0]["msTeams"]["userPrincipalName"].lower()
    # An earlier apply that failed, stopped before its chunk: turning the user's Enterprise Voice on.
    voice_on = {"id": f"user:{upn}:enterpriseVoice", "kind": "user", "object": upn, "field": "enterpriseVoice",
                "action": "change", "desired": True, "observed": False, "drift": "enterprise_voice_changed",
                "detail": "held", "userId": None}
    [(earlier,)] = _sql(live, "INSERT INTO voice_apply_jobs (job_key, enterprise_id, trigger, status, differences, desired, "
                        "results, created_at) SELECT :key, id, 'api', 'failed', :differences, :desired, '[]', "
                        "CURRENT_TIMESTAMP FROM enterprises WHERE tenant_id = :t RETURNING id", key=str(uuid.uuid4()),
                        differences=json.dumps([voice_on]), desired=json.dumps({"version": 1}), t=tenant_id)
    gate = threading.Event()
    original = workflows.plan_tenant

    async def held(voice, desired):  # type: ignore[no-untyped-def]
        await asyncio.to_thread(gate.wait, 60)
        return await original(voice, desired)

    monkeypatch.setattr(workflows, "plan_tenant", held)
    # The caller is known and the client's connections open before the starts, so that they come together (a
    # start opening its connection came after the first had ended).
    reads = await asyncio.gather(*(client.get(f"{API}/tenants", headers=sub.headers) for _ in range(8)))
    assert [r.status_code for r in reads] == [200] * 8
    try:
        answers = await asyncio.gather(*(client.post(f"{API}/tenants/{tenant_id}/apply", headers=sub.headers, json={})
                                         for _ in range(8)))
        assert [a.status_code for a in answers].count(202) == 1, [a.text for a in answers]
        [job_id] = [a.json()["jobId"] for a in answers if a.status_code == 202]
        assert {(a.status_code, a.json()["message"]) for a in answers if a.status_code != 202} == {
            (400, f"An apply of this tenant is already running (job {job_id})")}, [a.text for a in answers]
        scope = [organisation.resellers[0].reseller_id]
        with pytest.raises(Conflict, match=rf"cannot be retried: An apply of this tenant is already running \(job {job_id}\)"):
            await in_session(live, lambda s: catalogue.retry(s, scope, f"voice-apply:{earlier}"))
    finally:
        gate.set()
    finished = await _wait_job(client, sub.headers["Authorization"].removeprefix("Bearer "), tenant_id, job_id)
    assert finished["status"] == "completed", finished
    await asyncio.to_thread(workflows.operations_step, earlier)  # its workflow resumed after the job had ended
    await asyncio.to_thread(workflows.chunk_step, earlier, 0, 50)  # (and the chunked workflow of earlier releases)
    [(status, results)] = _sql(live, "SELECT status, results FROM voice_apply_jobs WHERE id = :j", j=earlier)
    assert (status, json.loads(results) if isinstance(results, str) else results) == ("failed", [])  # (SQLite: text)


async def test_an_apply_of_swapped_numbers_runs_operations_side_by_side_and_keeps_users_numbered(client, live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    """Numbers swapped between users (A's to B and B's to A), a user moving to a free number and another taking its
    old one. The apply's number operations overlap in Teams (they ran one at a time: 200 swaps took 21 minutes under
    Microsoft's latencies), every user ends with its number, and a user loses its number only where a swap leaves no
    other way: one user of each swapped pair, released just before its partner takes the number (every number was
    released before any was placed: users stood without a number for minutes). The emulator's log of number
    operations gives their order (accepted, completed); nothing here is timed."""
    tenant = _emulated_tenant(live, f"swap-{uuid.uuid4().hex[:6]}.example", users=8)  # six with Teams Phone
    onboarding = Onboarding(client, live, organisation, receiver, tenant)
    await onboarding.register()
    token, tenant_id = onboarding.token, tenant["tenantId"]
    connection = MicrosoftConnector(live.settings)
    try:
        listed = connection.connect(tenant_id).graph.pages(
            "/users", **{"$select": "id,userPrincipalName", "$filter": TEAMS_PHONE_USERS})
        users = sorted([u async for u in listed if not u["userPrincipalName"].startswith("admin@")],
                       key=lambda u: u["userPrincipalName"])[:6]
    finally:
        await connection.aclose()
    assert len(users) == 6
    base = 3226000000 + random.randrange(0, 90000) * 10
    numbers = [f"+{base + i}" for i in range(7)]  # the users' numbers, and a free one (the last)
    for user, number in zip(users, numbers):
        _sql(live, "INSERT INTO teams_voice_users (enterprise_id, user_principal_name, microsoft_user_id, phone_number, "
             "calling_enabled, updated_at) VALUES (:e, :upn, :id, :n, :c, CURRENT_TIMESTAMP)",
             e=onboarding.enterprise_id, upn=user["userPrincipalName"].lower(), id=user["id"], n=number, c=True)
    await _apply(client, token, tenant_id)
    # Users 0 and 1 swap, 2 and 3 swap, 4 moves to the free number, 5 takes 4's old one (its own is given up).
    wanted = [numbers[1], numbers[0], numbers[3], numbers[2], numbers[6], numbers[4]]
    _sql(live, "UPDATE teams_voice_users SET phone_number = NULL WHERE enterprise_id = :e", e=onboarding.enterprise_id)
    for user, number in zip(users, wanted):
        _sql(live, "UPDATE teams_voice_users SET phone_number = :n WHERE microsoft_user_id = :id", n=number, id=user["id"])

    admin = httpx.Client(base_url=live.emulator.url, verify=str(live.emulator.ca_cert_path), timeout=30)
    voice = lambda: admin.get(f"/_admin/tenants/{tenant_id}/voice").raise_for_status().json()  # noqa: E731
    before = max((o["accepted"] for o in voice()["numberOperations"]), default=0)
    admin.put("/_admin/faults", json={"numberOperationMs": 300}).raise_for_status()  # (operations overlap only if they last)
    try:
        await _apply(client, token, tenant_id)
    finally:
        admin.delete("/_admin/faults").raise_for_status()
    state = voice()
    admin.close()
    ids = [u["id"] for u in users]
    assert {n["telephoneNumber"]: n["assignmentTargetId"] for n in state["numbers"] if n["telephoneNumber"] in numbers} == {
        number: user_id for number, user_id in zip(wanted, ids)}
    ops = [o for o in state["numberOperations"] if o["accepted"] > before]
    assert all(o["status"] == "succeeded" for o in ops), ops
    # Side by side: some operation was accepted before another had completed.
    assert any(a is not b and a["accepted"] < b["completed"] and b["accepted"] < a["completed"] for a in ops for b in ops), ops
    # Who stood without a number, replaying the completed operations in their order.
    held = {user_id: {number} for user_id, number in zip(ids, numbers)}
    numberless: set[str] = set()
    for op in sorted(ops, key=lambda o: o["completed"]):
        if op["action"] == "unassignNumber":
            held[op["holderBefore"]].discard(op["telephoneNumber"])
        else:
            held[op["assignmentTargetId"]] = held[op["assignmentTargetId"]] - set(op["replaced"]) | {op["telephoneNumber"]}
            for other, kept in held.items():
                if other != op["assignmentTargetId"]:
                    kept.discard(op["telephoneNumber"])
        numberless |= {user_id for user_id, kept in held.items() if not kept}
    assert len(numberless) == 2 and len(numberless & set(ids[:2])) == 1 and len(numberless & set(ids[2:4])) == 1, ops
    # Only those two were released, and each released number was placed next, after its release completed.
    releases = [o for o in ops if o["action"] == "unassignNumber"]
    assert sorted(o["holderBefore"] for o in releases) == sorted(numberless), ops
    assigns = {o["telephoneNumber"]: o for o in ops if o["action"] == "assignNumber"}
    for release in releases:
        assert assigns[release["telephoneNumber"]]["accepted"] > release["completed"], ops
    # 4 moved to the free number in one operation (its old one replaced), and 5 took that number only once it was free.
    assert assigns[numbers[6]]["replaced"] == [numbers[4]]
    assert assigns[numbers[4]]["accepted"] > assigns[numbers[6]]["completed"], ops
    assert (await _plan(client, token, tenant_id))["empty"] is True


async def test_the_cli_apply_is_an_apply_job_of_the_tenant(client, live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`teamsvoice apply` ran the operations in its own process and recorded no job: nothing kept it from acting on
    Microsoft beside an apply job of the same tenant, which the one-apply-per-tenant rule exists to prevent (found by
    a probe). It records the same job as the API's now (trigger cli), run by the job engine and followed to its end:
    refused in one line (exit 2) while another apply of the tenant is queued or running, and an API apply is
    refused while it runs."""
    import threading

    from teamsvoice.domain.voice_state import workflows
    from tests.api.fusion.users_support import onboard

    sub = await onboard(client, live, organisation, count=1)
    tenant_id = sub.tenant["tenantId"]
    [(running,)] = _sql(live, "INSERT INTO voice_apply_jobs (job_key, enterprise_id, trigger, status, differences, desired, "
                        "results, created_at) SELECT :key, id, 'api', 'running', '[]', '{}', '[]', CURRENT_TIMESTAMP "
                        "FROM enterprises WHERE tenant_id = :t RETURNING id", key=str(uuid.uuid4()), t=tenant_id)
    for adopt in ([], ["--adopt", f"route:x{uuid.uuid4().hex[:4]}"]):
        refused = await teamsvoice(live, "apply", tenant_id, *adopt)
        assert (refused.returncode, refused.stderr, refused.stdout) == (
            2, f"teamsvoice: An apply of this tenant is already running (job {running})\n", ""), adopt
    _sql(live, "UPDATE voice_apply_jobs SET status = 'failed' WHERE id = :j", j=running)

    gate = threading.Event()
    original = workflows.plan_tenant

    async def held(voice, desired):  # type: ignore[no-untyped-def]  # the CLI's job waits before its plan
        await asyncio.to_thread(gate.wait, 60)
        return await original(voice, desired)

    monkeypatch.setattr(workflows, "plan_tenant", held)
    cli_apply = asyncio.ensure_future(asyncio.to_thread(teamsvoice_process, live, "apply", tenant_id, "--json"))
    try:
        for _ in range(300):
            recorded = _sql(live, "SELECT id, status FROM voice_apply_jobs WHERE trigger = 'cli'")
            if recorded or cli_apply.done():
                break
            await asyncio.sleep(0.05)
        assert recorded, "the CLI's apply recorded no job"
        [(job_id, status)] = recorded
        assert status in ("queued", "running")
        answer = await client.post(f"{API}/tenants/{tenant_id}/apply", headers=sub.headers, json={})
        assert (answer.status_code, answer.json()["message"]) == (
            400, f"An apply of this tenant is already running (job {job_id})"), answer.text
    finally:
        gate.set()
    ran = await cli_apply
    assert ran.returncode == 0, (ran.stdout, ran.stderr)
    outcome = json.loads(ran.stdout)
    assert (outcome["jobId"], outcome["trigger"], outcome["status"], outcome["failed"]) == (job_id, "cli", "completed", 0)
    assert outcome["after"]["tenantId"] == tenant_id
