"""Generated from the OpenAPI document: every route, called by another reseller with the identifiers of
reseller A's objects, is refused — 404 (not yours), 403 (not allowed) or 400 (rejected before any lookup):
never a success with A's data, never a 5xx. The scope comes from the credential, never from a path or body."""

import json
import random
import re

import httpx
from sqlalchemy import select

from teamsvoice.domain.fusion.models import FusionSubscription
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.teams_users.models import FusionResourceAccount
from tests.api.fusion.support import BASE, make_world
from tests.api.fusion.users_support import onboard
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


# --- numbers: a number of another reseller's inventory, on every write that takes a number -------------------

CTT_NUMBER_WRITES = {("post", "/provisioning/updateUserDetails"), ("post", "/enterprise/configureUser"),
                     ("post", "/valet/configureValetUser")}
# teamsvoice's own API (a ConnecttoTeams reseller token): a restored voice state document names numbers.
OWN_NUMBER_WRITES = {("post", "/api/teamsvoice/v1/tenants/{tenant_id}/restore")}
_SUB_PATH = "/api/v01/draas/{draas_instance}/tenants/{uuid}/subscriptions/{subscription_id}"
FUSION_NUMBER_WRITES = {(m, _SUB_PATH + p) for m, p in (
    ("put", "/msteams/users/{ms_user_id}"), ("put", "/msteams/users/{ms_user_id}/phone_number"),
    ("put", "/msteams/users/bulk"), ("post", "/msteams/resource_accounts"),
    ("put", "/msteams/resource_accounts/{resource_account_id}"), ("post", "/numbers"), ("delete", "/numbers"))}
# Writes whose documentation speaks of numbers but that take none from the caller (reviewed).
TAKE_NO_NUMBER = {("post", "/provisioning/disableCallingForUser/{upn}"), ("post", "/provisioning/enableCallingForUser/{upn}"),
                  ("post", "/sms/getEnterpriseSMSConfig/{enterpriseId}"),
                  ("post", "/api/v01/draas/{draas_instance}/tenants/{uuid}/subscriptions"),
                  ("delete", _SUB_PATH), ("delete", _SUB_PATH + "/msteams/users/{ms_user_id}"),
                  ("post", _SUB_PATH + "/msteams/sync"), ("delete", _SUB_PATH + "/msteams/resource_accounts/{resource_account_id}"),
                  # allowExternalNumbers: a flag, not a number
                  ("post", "/reseller/newEnterprise"), ("post", "/reseller/editEnterprise"),
                  # releases the deleted PBX user's number; takes none
                  ("delete", "/pbx/deletePBXUser/{userId}"),
                  # the platform around the MS Teams section (issue 10): house numbers, licence counts, mobile numbers
                  # of admins, the location of the user's own number; no phone number is taken from the caller
                  ("post", _SUB_PATH + "/locations"), ("delete", _SUB_PATH + "/locations/{location_id}"),
                  ("put", _SUB_PATH + "/msteams/users/{ms_user_id}/location"), ("put", _SUB_PATH + "/licenses"),
                  ("post", _SUB_PATH + "/entitlements"), ("put", _SUB_PATH + "/entitlements/{entitlement_id}"),
                  ("delete", _SUB_PATH + "/entitlements/{entitlement_id}"), ("post", _SUB_PATH + "/porting/requests"),
                  ("post", "/api/v01/draas/{draas_instance}/{level}/{uuid}/admins"), ("put", "/api/v01/system/users/local"),
                  # offboarding (issue 11) releases the user's own number into quarantine; it takes none
                  ("post", "/api/teamsvoice/v1/tenants/{tenant_id}/users/{upn}/offboard"),
                  # documented with examples (issue 13): a house number, an admin's mobile, a route's number pattern,
                  # a read sent as POST, unlinking a tenant; none gives a number to a user
                  ("put", _SUB_PATH + "/locations/{location_id}"), ("put", "/api/v01/draas/{draas_instance}/{level}/{uuid}/admins/{admin_id}"),
                  ("put", "/api/v01/system/users/{user_id}"), ("post", "/provisioning/provisionDirectRouting"),
                  ("post", "/pbx/getDirectRoutesForEnterprise"), ("post", _SUB_PATH + "/msteams/unlink"),
                  # a new user takes no number: a deleted namesake's record's number goes to quarantine
                  ("post", _SUB_PATH + "/msteams/users")}


def _mentions_a_number(operation: dict, components: dict) -> bool:
    text = json.dumps(operation)
    for ref in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        text += json.dumps(components.get(ref, {}))
    text = text.replace('"type": "number"', "")  # JSON Schema's type, not a phone number
    return bool(re.search(r"phone|number", text, re.IGNORECASE))


async def test_every_write_taking_a_number_refuses_another_resellers_number(client: httpx.AsyncClient, live, organisation) -> None:
    """Reseller B's inventory holds a number; reseller A, acting on its own onboarded customer through both API
    families, can neither assign it nor learn anything about B (not even which user holds it)."""
    doc = (await client.get("/openapi.json")).json()
    writes = {(m, p) for p, ops in doc["paths"].items() for m, op in ops.items()
              if m in ("post", "put", "patch", "delete") and _mentions_a_number(op, doc["components"]["schemas"])}
    covered = CTT_NUMBER_WRITES | FUSION_NUMBER_WRITES | OWN_NUMBER_WRITES
    assert covered <= {(m, p) for p, ops in doc["paths"].items() for m in ops}, covered - writes
    assert not writes - covered - TAKE_NO_NUMBER, f"new writes mentioning numbers: {sorted(writes - covered - TAKE_NO_NUMBER)}"

    # B (reseller 2) holds +32 2390xxxx in a Fusion subscription's inventory.
    mine = await onboard(client, live, organisation, tenant_index=1, count=2)
    world = mine.world
    victim_tenant = await world.create_tenant("other-reseller", name="Tailspin Customer")
    victim_sub = await world.create_subscription(victim_tenant["uuid"], "other-reseller", name="Tailspin Teams")
    victim_path = f"{BASE}/tenants/{victim_tenant['uuid']}/subscriptions/{victim_sub['id']}"
    victim = await world.as_("other-reseller")
    nsn = 23900000 + random.randrange(0, 90000)
    stolen = f"+32{nsn}"
    added = await client.post(f"{victim_path}/numbers", headers=victim, json={"countryCode": "+32", "numbers": [nsn]})
    assert added.status_code == 200, added.text

    # A (reseller 1): its own onboarded subscription, seen by ConnecttoTeams as its enterprise.
    users = [u["msTeams"] for u in await mine.users(10) if not u["msTeams"]["userPrincipalName"].startswith("admin@")]
    user = users[0]
    token = await token_for(client, organisation.resellers[0])
    enterprises = (await client.get(f"/reseller/getEnterprisesForReseller/{organisation.resellers[0].reseller_id}",
                                    headers=bearer(token))).json()
    enterprise = next(e for e in enterprises if e["tenantId"] == mine.tenant["tenantId"])
    consent_object = {"tenantId": mine.tenant["tenantId"], "resellerId": enterprise["resellerId"]}
    account_id = await _resource_account(world, mine)
    pbx_user = {"teamsUserId": user["userPrincipalName"], "directRouteId": 1, "password": "S1p-secret", "rePassword": "S1p-secret",
                "pbxAuthUserId": "201", "pbxUserId": "201", "pbxLocation": "HQ", "phoneNumber": stolen,
                "tenantID": mine.tenant["tenantId"], "userType": "Service"}
    sub = mine.path
    calls = {
        ("post", "/provisioning/updateUserDetails"): (bearer(token), "/provisioning/updateUserDetails",
                                                      consent_object | {"userPrincipalName": user["userPrincipalName"], "phoneNumber": stolen}),
        ("post", "/enterprise/configureUser"): (bearer(token), "/enterprise/configureUser", pbx_user),
        ("post", "/valet/configureValetUser"): (bearer(token), "/valet/configureValetUser", pbx_user | {"directRouteId": -1}),
        ("put", _SUB_PATH + "/msteams/users/{ms_user_id}"): (mine.headers, f"{sub}/msteams/users/{user['id']}", {"phoneNumber": stolen}),
        ("put", _SUB_PATH + "/msteams/users/{ms_user_id}/phone_number"): (
            mine.headers, f"{sub}/msteams/users/{user['id']}/phone_number", {"phoneNumber": stolen}),
        ("put", _SUB_PATH + "/msteams/users/bulk"): (
            mine.headers, f"{sub}/msteams/users/bulk", {"name": "squat", "data": [
                {"upn": user["userPrincipalName"], "displayName": user["displayName"], "number": stolen}]}),
        ("post", _SUB_PATH + "/msteams/resource_accounts"): (mine.headers, f"{sub}/msteams/resource_accounts", {
            "accountType": "call-queue", "userPrincipalName": f"cq-squat@{mine.tenant['domain']}", "displayName": "Squat",
            "location": "BE", "phoneNumber": stolen}),
        ("put", _SUB_PATH + "/msteams/resource_accounts/{resource_account_id}"): (
            mine.headers, f"{sub}/msteams/resource_accounts/{account_id}", {"phoneNumber": stolen}),
        ("post", _SUB_PATH + "/numbers"): (mine.headers, f"{sub}/numbers", {"countryCode": "+32", "numbers": [nsn]}),
        ("delete", _SUB_PATH + "/numbers"): (mine.headers, f"{sub}/numbers", {"numbers": [{"countryCode": "+32", "nsn": str(nsn)}]}),
        ("post", "/api/teamsvoice/v1/tenants/{tenant_id}/restore"): (
            bearer(token), f"/api/teamsvoice/v1/tenants/{mine.tenant['tenantId']}/restore",
            {"version": 1, "users": [{"userPrincipalName": user["userPrincipalName"], "phoneNumber": stolen,
                                      "voiceRoutingPolicy": None, "callingEnabled": True}]}),
    }
    assert set(calls) == covered
    secrets = ("Tailspin", victim_tenant["uuid"], "other-reseller")
    wrong = []
    for (method, route), (headers, url, body) in calls.items():
        response = await client.request(method.upper(), url, headers=headers, json=body)
        if (method, route) in CTT_NUMBER_WRITES:
            ok = response.status_code == 404 and "not found among the numbers available" in response.json()["message"]
        elif (method, route) in OWN_NUMBER_WRITES:
            ok = response.status_code == 404 and "not found among the numbers available" in response.text
        elif route.endswith("/numbers") and method == "post":
            ok = response.status_code == 400 and response.json()["error"]["code"] == 2010
        elif route.endswith("/numbers"):
            ok = response.status_code == 404 and response.json()["error"]["code"] == 2012
        elif route.endswith("/bulk"):
            ok = response.status_code == 400 and "2012" in response.text
        else:
            ok = response.status_code == 400 and response.json()["error"]["code"] == 2012
        if not ok or any(s in response.text for s in secrets):
            wrong.append(f"{method.upper()} {route} -> {response.status_code}: {response.text[:300]}")
    assert not wrong, "\n".join(wrong)

    # B's number is untouched: still free, held by nobody, in B's inventory only.
    listed = await client.get(f"{victim_path}/numbers", headers=victim, params={"search": str(nsn)})
    assert listed.status_code == 200 and listed.json()["numbers"][0]["assigned"] is False, listed.text
    assert stolen not in (await client.get(f"{sub}/numbers", headers=mine.headers, params={"search": str(nsn)})).text


async def test_a_holder_outside_the_owners_scope_is_never_named(client: httpx.AsyncClient, live, organisation) -> None:
    """Data squatted before ownership was enforced: B's listing and refusals never name A's user."""
    world = await make_world(client, live, organisation)
    a_tenant = await world.create_tenant("reseller", name="Northwind Customer")
    a_sub = await world.create_subscription(a_tenant["uuid"], "reseller")
    b_tenant = await world.create_tenant("other-reseller", name="Tailspin Customer")
    b_sub = await world.create_subscription(b_tenant["uuid"], "other-reseller")
    b_path = f"{BASE}/tenants/{b_tenant['uuid']}/subscriptions/{b_sub['id']}"
    b = await world.as_("other-reseller")
    nsn = 23900000 + random.randrange(0, 90000)
    assert (await client.post(f"{b_path}/numbers", headers=b, json={"countryCode": "+32", "numbers": [nsn]})).status_code == 200

    async def squat(session) -> None:  # type: ignore[no-untyped-def]
        enterprise_id = await session.scalar(select(FusionSubscription.enterprise_id).where(FusionSubscription.id == a_sub["id"]))
        session.add(TeamsVoiceUser(enterprise_id=enterprise_id, user_principal_name="lee.bowen@contoso.example",
                                   microsoft_user_id="00000000-0000-0000-0000-000000000001", phone_number=f"+32{nsn}"))

    await world._with_session(squat)
    for response in (await client.get(f"{b_path}/numbers", headers=b, params={"search": str(nsn)}),
                     await client.get(f"{b_path}/free_numbers", headers=b),
                     await client.get(f"{b_path}", headers=b)):
        assert response.status_code == 200, response.text
        assert "lee.bowen" not in response.text
    # A cannot add B's number to its own inventory, and is not told whose it is.
    a = await world.as_("reseller")
    taken = await client.post(f"{BASE}/tenants/{a_tenant['uuid']}/subscriptions/{a_sub['id']}/numbers", headers=a,
                              json={"countryCode": "+32", "numbers": [nsn]})
    assert taken.status_code == 400 and "Tailspin" not in taken.text and b_tenant["uuid"] not in taken.text


async def _resource_account(world, mine) -> int:  # type: ignore[no-untyped-def]
    """An active resource account of A's subscription (recorded directly: its Microsoft side is not needed here)."""
    holder: list[int] = []

    async def create(session) -> None:  # type: ignore[no-untyped-def]
        subscription_id = int(mine.path.rsplit("/", 1)[1])
        account = FusionResourceAccount(subscription_id=subscription_id, user_principal_name=f"cq@{mine.tenant['domain']}",
                                        display_name="CQ", account_type="call-queue", location="BE", status="active",
                                        desired={"phoneNumber": None, "vrp": None})
        session.add(account)
        await session.flush()
        holder.append(account.id)

    await world._with_session(create)
    return holder[0]
