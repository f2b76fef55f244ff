"""Fusion bulk at scale, end to end over real HTTP: a bulk job of 300 users survives a SIGKILL of the whole
server mid-job; after the restart it finishes with every item applied exactly once, and the numbers are
visible through the Fusion API, the ConnecttoTeams model (the shared Teams user rows) and the emulator."""

import asyncio
import signal
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest

from tests.api.fusion.support import BASE, FusionWorld
from tests.e2e.test_serve import Served, database_env, served  # noqa: F401  (fixtures)

N = 300


async def _login(http: httpx.AsyncClient, login: dict) -> dict:
    token = (await http.post("/api/v01/auth/login", json={"username": login["username"], "password": login["password"]})).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


async def test_bulk_job_survives_a_crash_and_applies_each_item_once(served: Served) -> None:  # noqa: F811
    served.start()
    creds = served.credentials()
    microsoft, fusion = creds["microsoft"], creds["fusion"]
    ca, admin_url = microsoft["caCertificate"], microsoft["loginUrl"]
    domain = f"bulk{uuid.uuid4().hex[:6]}.example"
    async with httpx.AsyncClient(verify=ca, timeout=120) as admin:
        created = (await admin.post(f"{admin_url}/_admin/tenants", json={
            "displayName": "Bulk Co", "domain": domain, "userCount": N + 2,
            "globalAdmin": {"username": f"admin@{domain}", "password": "Bulk-Passw0rd!"}})).json()
    reseller = next(l for l in fusion["logins"] if l["level"] == "reseller")
    async with httpx.AsyncClient(base_url=served.url, timeout=120) as http:
        headers = await _login(http, reseller)
        tenant = (await http.post(f"{BASE}/tenants", headers=headers, json={"name": "Bulk Co"})).json()
        subscription = (await http.post(f"{BASE}/tenants/{tenant['uuid']}/subscriptions", headers=headers,
                                        json={"name": "Teams", "billingId": "B"})).json()
        path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"
        world = FusionWorld(http, SimpleNamespace(emulator=SimpleNamespace(ca_cert_path=ca)), None, {"reseller": headers["Authorization"][7:]})  # type: ignore[arg-type]
        await world.onboard(path, {"globalAdmin": {"username": f"admin@{domain}", "password": "Bulk-Passw0rd!"}})
        assert (await http.post(f"{path}/numbers", headers=headers,
                                json={"countryCode": "+32", "ranges": [[23300000, 23300000 + N - 1]]})).status_code == 200
        users, token = [], None
        while True:
            params = {"page_size": 200, **({"next": token} if token else {})}
            page = (await http.get(f"{path}/msteams/users", headers=headers, params=params)).json()
            users += [u["msTeams"] for u in page["users"] if not u["msTeams"]["userPrincipalName"].startswith("admin@")]
            token = page.get("next")
            if not token:
                break
        users = users[:N]
        data = [{"upn": u["userPrincipalName"], "displayName": u["displayName"], "number": f"+32{23300000 + i}",
                 "vrp": "teamsvoice"} for i, u in enumerate(users)]
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
        headers = await _login(http, reseller)
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
