"""A Fusion subscription onboarded to a fresh emulated tenant of N users with N free numbers, ready for a
bulk update. Shared by the bulk crash test and bench/fusion_bulk.py."""

import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx

from tests.api.fusion.support import BASE, FusionWorld

PASSWORD = "Bulk-Passw0rd!"
FIRST_NUMBER = 23300000


@dataclass
class BulkSetup:
    path: str  # the subscription's Fusion path
    headers: dict[str, str]
    tenant_id: str  # the Microsoft tenant
    users: list[dict[str, Any]]  # Fusion msTeams user objects licensed for Teams Phone
    first_number: int = FIRST_NUMBER  # national number of the first of the subscription's numbers (+32)

    def body(self, name: str) -> dict[str, Any]:
        return {"name": name, "data": [
            {"upn": u["userPrincipalName"], "displayName": u["displayName"], "number": f"+32{self.first_number + i}",
             "vrp": "teamsvoice"} for i, u in enumerate(self.users)]}


async def fusion_login(http: httpx.AsyncClient, login: dict) -> dict[str, str]:
    token = (await http.post("/api/v01/auth/login", json={"username": login["username"], "password": login["password"]})).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


async def prepare_bulk(http: httpx.AsyncClient, credentials: dict, users: int, first_number: int = FIRST_NUMBER) -> BulkSetup:
    """`http` is a client of a running teamsvoice; `credentials` its demo-credentials.json."""
    microsoft = credentials["microsoft"]
    domain = f"bulk{uuid.uuid4().hex[:6]}.example"
    async with httpx.AsyncClient(verify=microsoft["caCertificate"], timeout=300) as admin:
        answer = await admin.post(f"{microsoft['loginUrl']}/_admin/tenants", json={
            "displayName": "Bulk Co", "domain": domain, "userCount": users * 5 // 4 + 3,
            "globalAdmin": {"username": f"admin@{domain}", "password": PASSWORD}})
        assert answer.status_code == 201, f"the emulator did not create the tenant: {answer.status_code} {answer.text}"
        created = answer.json()
    reseller = next(login for login in credentials["fusion"]["logins"] if login["level"] == "reseller")
    headers = await fusion_login(http, reseller)
    tenant = (await http.post(f"{BASE}/tenants", headers=headers, json={"name": f"Bulk Co {domain}"})).json()
    subscription = (await http.post(f"{BASE}/tenants/{tenant['uuid']}/subscriptions", headers=headers,
                                    json={"name": "Teams", "billingId": "B"})).json()
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"
    world = FusionWorld(http, SimpleNamespace(emulator=SimpleNamespace(ca_cert_path=microsoft["caCertificate"])),  # type: ignore[arg-type]
                        None, {"reseller": headers["Authorization"][7:]})
    await world.onboard(path, {"globalAdmin": {"username": f"admin@{domain}", "password": PASSWORD}})
    added = await http.post(f"{path}/numbers", headers=headers,
                            json={"countryCode": "+32", "ranges": [[first_number, first_number + users - 1]]})
    assert added.status_code == 200, added.text
    found, token = [], None
    while True:
        params = {"page_size": 200, **({"next": token} if token else {})}
        page = (await http.get(f"{path}/msteams/users", headers=headers, params=params)).json()
        # Users licensed for Teams Phone (a number needs it): four in five of a seeded tenant, hence its size.
        found += [u["msTeams"] for u in page["users"] if u["msTeams"]["voiceEnabled"] == "yes"]
        token = page.get("next")
        if not token:
            break
    return BulkSetup(path, headers, created["tenantId"], found[:users], first_number)
