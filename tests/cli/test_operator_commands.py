"""`teamsvoice doctor`, `users export` and `jobs retry|show --follow` against the live server's database,
job engine and emulated Microsoft tenant, on both backends. One onboarded customer serves the three (the
suite's time budget): each part is a function of its own."""

import asyncio
import csv
import json
import uuid
from pathlib import Path

import httpx

from teamsvoice.domain.teams_users.bulk import FINAL
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.users_support import Onboarded, onboard
from tests.cli.support import teamsvoice, teamsvoice_process


async def test_doctor_users_export_and_jobs_retry(client: httpx.AsyncClient, live, organisation, tmp_path: Path) -> None:
    onboarded = await onboard(client, live, organisation, count=2)
    await doctor(live, onboarded)
    await users_export(client, live, onboarded, tmp_path)
    await jobs_retry_and_follow(client, live, onboarded)


async def doctor(live, onboarded: Onboarded) -> None:  # type: ignore[no-untyped-def]
    ran = await teamsvoice(live, "doctor", "--json")
    report = json.loads(ran.stdout)
    assert ran.returncode == 0 and report["ok"], ran.stdout
    checks = {c["check"].split(" (")[0]: c for c in report["checks"]}
    assert {"data directory", "database", "migrations", "job engine tables", "job executors",
            f"tenant {onboarded.tenant['tenantId']}"} <= set(checks)
    assert all(c["status"] == "ok" for c in checks.values())
    assert "all alive" not in checks["job executors"]["detail"] and " alive" in checks["job executors"]["detail"]

    # The app's secret is wrong: Microsoft refuses every tenant's token; each says what to do.
    refused = await teamsvoice(live, "doctor", env={"TEAMSVOICE_MICROSOFT_CLIENT_SECRET": "not-the-secret"})
    assert refused.returncode == 1
    lines = refused.stdout.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith(f"[FAIL] tenant {onboarded.tenant['tenantId']}"))
    assert lines[failed + 1].strip().startswith("fix: ") and "consent" in lines[failed + 1]
    assert "not-the-secret" not in refused.stdout + refused.stderr
    assert refused.stdout.strip().endswith("check(s) failed")
    offline = await teamsvoice(live, "doctor", "--offline", env={"TEAMSVOICE_MICROSOFT_CLIENT_SECRET": "not-the-secret"})
    assert offline.returncode == 0 and "[skip] microsoft" in offline.stdout
    # Beside the embedded `serve` without its Microsoft settings: the emulator's address is unknown, not failed.
    unknown = await teamsvoice(live, "doctor", env={"TEAMSVOICE_MICROSOFT_CLIENT_ID": ""})
    assert unknown.returncode == 0 and "[skip] microsoft: 1 linked tenant(s) in the embedded emulator" in unknown.stdout


async def users_export(client: httpx.AsyncClient, live, onboarded: Onboarded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    users = [u["msTeams"] for u in await onboarded.users(6) if not u["msTeams"]["userPrincipalName"].startswith("admin@")]
    user = users[0]
    assigned = await client.put(f"{onboarded.path}/msteams/users/{user['id']}", headers=onboarded.headers,
                                json={"phoneNumber": onboarded.numbers[0], "vrp": "teamsvoice"})
    assert assigned.status_code in (200, 202), assigned.text

    ran = await teamsvoice(live, "users", "export", "--tenant", onboarded.tenant["tenantId"], "--json")
    assert ran.returncode == 0, ran.stderr
    rows = {r["userPrincipalName"]: r for r in json.loads(ran.stdout)}
    graph_users = await onboarded.graph("/users", **{"$select": "userPrincipalName", "$top": "999"})
    assert set(rows) == {u["userPrincipalName"] for u in graph_users["value"]}  # every user, not only managed ones
    row = rows[user["userPrincipalName"]]
    assert row["phoneNumbers"] == [onboarded.numbers[0]] and row["voiceRoutingPolicy"] == "teamsvoice"
    assert row["teamsvoicePhoneNumber"] == onboarded.numbers[0] and row["teamsvoiceStatus"] == "active"
    assert row["licenses"] == [entry["skuPartNumber"] for entry in user["licenses"]] and row["accountEnabled"] is True
    # A user teamsvoice does not manage is shown as Teams holds it (earlier tests in the same emulated tenant may
    # have given it a policy).
    other = rows[users[1]["userPrincipalName"]]
    config = await onboarded.graph(f"/admin/teams/userConfigurations/{users[1]['id']}")
    granted = [(a.get("policyAssignment") or {}).get("displayName") for a in config.get("effectivePolicyAssignments") or []
               if "voicerouting" in str(a.get("policyType", "")).lower()]
    assert other["teamsvoiceStatus"] == "not managed" and other["voiceRoutingPolicy"] == (granted[0] if granted and granted[0] else "Global")

    exported = tmp_path / "users.csv"
    by_domain = await teamsvoice(live, "users", "export", "--tenant", onboarded.tenant["domain"], "--csv", str(exported))
    assert by_domain.returncode == 0 and f"{len(rows)} users written to {exported}" in by_domain.stdout
    with exported.open() as written:
        lines = {line["userPrincipalName"]: line for line in csv.DictReader(written)}
    assert lines[user["userPrincipalName"]]["phoneNumbers"] == onboarded.numbers[0]
    assert lines[user["userPrincipalName"]]["licenses"] == ";".join(row["licenses"])
    human = await teamsvoice(live, "users", "export", "--tenant", onboarded.tenant["tenantId"])
    assert human.returncode == 0 and onboarded.numbers[0] in human.stdout

    unknown = await teamsvoice(live, "users", "export", "--tenant", "nowhere.example")
    assert unknown.returncode == 2 and unknown.stderr.strip() == "teamsvoice: No enterprise is linked to tenant nowhere.example"


async def jobs_retry_and_follow(client: httpx.AsyncClient, live, onboarded: Onboarded) -> None:  # type: ignore[no-untyped-def]
    users = [u["msTeams"] for u in await onboarded.users(6) if not u["msTeams"]["userPrincipalName"].startswith("admin@")]
    ghost = f"ghost{uuid.uuid4().hex[:6]}@{onboarded.tenant['domain']}"  # not in Microsoft yet: its item fails
    accepted = await client.put(f"{onboarded.path}/msteams/users/bulk", headers={**onboarded.headers, "Prefer": "respond-async"},
                                json={"name": "retry me", "data": [{"upn": users[0]["userPrincipalName"], "displayName": users[0]["displayName"],
                                                                    "number": onboarded.numbers[0]},
                                                                   {"upn": ghost, "displayName": "Ghost", "country": "BE"}]})
    assert accepted.status_code == 202, accepted.text
    job_id = str(accepted.json()["id"])

    followed = await teamsvoice(live, "jobs", "show", job_id, "--follow", "--json")
    assert followed.returncode == 1, followed.stderr  # ended with a failed item
    first = json.loads(followed.stdout)
    assert first["status"] == "partial" and [i["status"] for i in first["job_items"]] == ["success", "error"]

    early = await teamsvoice(live, "jobs", "retry", "999999")
    assert early.returncode == 2 and early.stderr.strip() == "teamsvoice: Bulk job 999999 not found"
    connector = MicrosoftConnector(live.settings)
    try:
        created = await connector.connect(onboarded.tenant["tenantId"]).graph.post("/users", {
            "accountEnabled": True, "displayName": "Ghost", "mailNickname": ghost.split("@")[0],
            "userPrincipalName": ghost, "passwordProfile": {"password": "Ghost-Passw0rd!"}})
        assert created.status_code == 201, created.text
    finally:
        await connector.aclose()

    ran = await asyncio.to_thread(teamsvoice_process, live, "jobs", "retry", job_id, "--follow", "--json")
    assert ran.returncode == 0, ran.stderr + ran.stdout
    second = json.loads(ran.stdout)
    assert second["retried_count"] == 1 and second["status"] == "success" and second["error_count"] == 0
    assert [i["attempts"] for i in second["job_items"]] == [1, 2]  # the succeeded item was not run again

    again = await teamsvoice(live, "jobs", "retry", job_id)
    assert again.returncode == 2 and f"Job bulk:{job_id} cannot be retried: every item succeeded" in again.stderr
    shown = await teamsvoice(live, "jobs", "show", job_id, "-f")
    assert shown.returncode == 0 and "success" in shown.stdout and ghost in shown.stdout
    assert json.loads((await teamsvoice(live, "jobs", "show", job_id, "--json")).stdout)["status"] in FINAL
