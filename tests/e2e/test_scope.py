"""Generated from the OpenAPI document: every route, called by another reseller with the identifiers of
reseller A's objects, is refused — 404 (not yours), 403 (not allowed) or 400 (rejected before any lookup):
never a success with A's data, never a 5xx. The scope comes from the credential, never from a path or body."""

import re

import httpx

from tests.api.fusion.support import BASE, make_world
from tests.support.ctt import bearer, token_for
from tests.support.onboarding import Onboarding

REFUSED = {400, 403, 404}
# Routes about the caller itself, or that create the caller's own objects: they answer, with the caller's data.
OWN = {("put", "/reseller/getAuthenticatedUser"), ("get", "/api/v01/draas/{draas_instance}/tenants"),
       ("post", "/api/v01/draas/{draas_instance}/tenants")}


def fill(path: str, values: dict[str, object]) -> str:
    return re.sub(r"{(\w+)}", lambda m: str(values.get(m.group(1), 1)), path)


async def test_connecttoteams_routes_refuse_another_reseller(client: httpx.AsyncClient, live, organisation, receiver) -> None:
    receiver.reset()
    onboarding = Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])
    await onboarding.register()
    owner, tenant = organisation.resellers[0], live.emulator.tenants[0]
    values = {"resellerId": owner.reseller_id, "masterResellerId": organisation.master.reseller_id,
              "enterpriseId": onboarding.enterprise_id, "tenantId": tenant["tenantId"], "tenantID": tenant["tenantId"],
              "upn": f"user1@{tenant['domain']}", "enterpriseName": onboarding.name}
    body = values | {"actionType": "GET_USER_SYNC_CONSENT", "redirectUrl": "http://127.0.0.1:9/x", "sbcGatewayId": 1,
                     "teamsUserId": values["upn"], "userPrincipalName": values["upn"], "services": ["PBX"]}
    intruder = bearer(await token_for(client, organisation.resellers[1]))
    paths = (await client.get("/openapi.json")).json()["paths"]
    checked, leaks, statuses = 0, [], {}
    for path, operations in paths.items():
        if path.startswith(("/api/", "/oauth/", "/restricted/", "/health", "/metrics")):
            continue
        for method, operation in operations.items():
            if (method, path) in OWN:
                continue
            query = {p["name"]: values.get(p["name"], 1) for p in operation.get("parameters", []) if p["in"] == "query"}
            response = await client.request(method.upper(), fill(path, values), params=query, json=body, headers=intruder)
            checked += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code not in REFUSED:
                leaks.append(f"{method.upper()} {path} -> {response.status_code}: {response.text[:200]}")
    assert checked >= 25
    assert not leaks, "\n".join(leaks)
    # Mostly refused because of scope, not merely because the body did not validate.
    assert statuses.get(403, 0) + statuses.get(404, 0) >= 0.75 * checked, statuses


async def test_fusion_routes_refuse_another_reseller(client: httpx.AsyncClient, live, organisation) -> None:
    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant("reseller", name="Owned By Reseller One")
    subscription = await world.create_subscription(tenant["uuid"], "reseller")
    values = {"draas_instance": "draas_v1", "uuid": tenant["uuid"], "subscription_id": subscription["id"]}
    intruder = await world.as_("other-reseller")
    paths = (await client.get("/openapi.json")).json()["paths"]
    checked, leaks, statuses = 0, [], {}
    for path, operations in paths.items():
        if not path.startswith("/api/v01/draas/{draas_instance}/tenants"):
            continue
        for method, operation in operations.items():
            if (method, path) in OWN:
                continue
            response = await client.request(method.upper(), fill(path, values), json={}, headers=intruder)
            checked += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code not in REFUSED:
                leaks.append(f"{method.upper()} {path} -> {response.status_code}: {response.text[:200]}")
    listed = await client.get(f"{BASE}/tenants", headers=intruder)
    assert listed.status_code == 200 and tenant["uuid"] not in listed.text
    assert checked >= 30
    assert not leaks, "\n".join(leaks)
    # Mostly refused because of scope, not merely because the body did not validate.
    assert statuses.get(403, 0) + statuses.get(404, 0) >= 0.75 * checked, statuses
