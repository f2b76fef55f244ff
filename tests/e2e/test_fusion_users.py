"""Fusion bulk at scale, end to end over real HTTP: a bulk job of 200 users survives a SIGKILL of the whole
server mid-job; after the restart it finishes with every item applied exactly once, and the numbers are
visible through the Fusion API, the ConnecttoTeams model (the shared Teams user rows) and the emulator."""

import asyncio
import signal
import time

import httpx

from tests.e2e.test_serve import Served, database_env, served  # noqa: F401  (fixtures)
from tests.support.fusion_bulk import fusion_login, prepare_bulk

N = 120  # enough that the kill lands mid-job (checked below), small enough for the suite budget


async def test_bulk_job_survives_a_crash_and_applies_each_item_once(served: Served) -> None:  # noqa: F811
    served.start()
    creds = served.credentials()
    ca, admin_url = creds["microsoft"]["caCertificate"], creds["microsoft"]["loginUrl"]
    reseller = next(login for login in creds["fusion"]["logins"] if login["level"] == "reseller")
    async with httpx.AsyncClient(base_url=served.url, timeout=120) as http:
        setup = await prepare_bulk(http, creds, N)
        path, headers, users, data = setup.path, setup.headers, setup.users, setup.body("crash")["data"]
        created = {"tenantId": setup.tenant_id}
        accepted = await http.put(f"{path}/msteams/users/bulk", headers={**headers, "Prefer": "respond-async"},
                                  json={"name": "crash", "data": data})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        deadline = time.monotonic() + 120
        while True:
            details = (await http.get(f"{path}/msteams/users/bulk/{job_id}", headers=headers)).json()
            if details["success_count"] + details["error_count"] >= 20 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    assert details["status"] == "running", details["status"]  # the kill lands mid-job
    served.stop(signal.SIGKILL)

    served.start()
    async with httpx.AsyncClient(base_url=served.url, timeout=120) as http:
        headers = await fusion_login(http, reseller)
        deadline = time.monotonic() + 240
        while True:
            details = (await http.get(f"{path}/msteams/users/bulk/{job_id}", headers=headers)).json()
            if details["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        errors = [i for i in details["job_items"] if i["status"] != "success"]
        assert details["status"] == "success", errors[:3]
        assert details["success_count"] == N and details["error_count"] == 0  # each item counted exactly once
        assert len(details["job_items"]) == N and all(i["status"] == "success" for i in details["job_items"])
        sample = users[:: N // 10]
        for user in sample:
            got = (await http.get(f"{path}/msteams/user/{user['id']}", headers=headers)).json()
            index = users.index(user)
            assert got["draas"]["phoneNumber"] == f"+32{23300000 + index}" and got["msTeams"]["vrp"] == "teamsvoice"
        free = (await http.get(f"{path}/free_numbers", headers=headers)).json()
        assert "+3223300000" not in str(free)
    # ConnecttoTeams side: the same Teams user rows; Microsoft side: the emulator's Teams configuration.
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from teamsvoice.domain.provisioning.models import TeamsVoiceUser
    from teamsvoice.settings import Settings

    settings = Settings(data_dir=served.data_dir, **({"database_url": served.env["TEAMSVOICE_DATABASE_URL"]}
                                                    if "TEAMSVOICE_DATABASE_URL" in served.env else {}))
    from teamsvoice.core.db import sync_url
    engine = create_engine(sync_url(settings.effective_database_url))
    with Session(engine) as session:
        rows = {r.user_principal_name: r.phone_number for r in session.scalars(select(TeamsVoiceUser).where(
            TeamsVoiceUser.user_principal_name.in_([u["userPrincipalName"].lower() for u in users])))}
    engine.dispose()
    assert len(rows) == N and sorted(rows.values()) == sorted(d["number"] for d in data)
    async with httpx.AsyncClient(verify=ca, timeout=60) as admin:
        voice = (await admin.get(f"{admin_url}/_admin/tenants/{created['tenantId']}/voice")).json()
    assigned = str(voice)
    for item in data[:: N // 10]:
        assert item["number"] in assigned
