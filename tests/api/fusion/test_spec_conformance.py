"""Fusion scripts written against spec 004 work unchanged: each route answers the statuses of its table (no
409: "will result in an error" is 400), `"vrp": "Global"` means the tenant's global policy (no per-user grant)
for one user, the `vrp` sub-resource and bulk items alike, and phone numbers are E.164 with their `+`."""

import re
from pathlib import Path

import pytest

from teamsvoice.api import fusion
from teamsvoice.api.fusion import errors as fusion_errors
from teamsvoice.core.errors import (
    AuthenticationFailed,
    Conflict,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    UpstreamError,
    ValidationFailed,
)
from tests.api.fusion.users_support import Onboarded, onboard
from tests.support.ctt import bearer, token_for

SPEC_004 = Path("/work/shared/specs/004_978b855c8d0b4de1.txt")


def spec_tables() -> dict[tuple[str, str], set[int]]:
    """(method, path) -> the statuses of the endpoint's table, read from spec 004 as published."""
    lines = [line.strip() for line in SPEC_004.read_text().splitlines()]
    tables: dict[tuple[str, str], set[int]] = {}
    current: tuple[str, str] | None = None
    for index, line in enumerate(lines):
        if line == "Endpoint" and index + 2 < len(lines):
            path = lines[index + 2]
            if not path.startswith("/api/v01"):  # two endpoints of the spec omit the prefix
                path = "/api/v01/draas" + path
            current = (lines[index + 1].upper(), path)
            tables[current] = set()
        elif current is not None and (match := re.match(r"^(\d{3}) \|", line)):
            tables[current].add(int(match.group(1)))
    return tables


def app_routes() -> dict[tuple[str, str], object]:
    return {(method, route.path): route for router in fusion.ROUTERS for route in router.routes
            for method in route.methods}  # type: ignore[attr-defined]


@pytest.mark.skipif(not SPEC_004.exists(), reason="spec 004 is not on this machine")
def test_every_spec_table_is_the_family_status_set_and_every_route_exists() -> None:
    tables, routes = spec_tables(), app_routes()
    assert len(tables) >= 30
    for endpoint, statuses in tables.items():
        assert {s for s in statuses if s >= 400} == fusion_errors.SPEC_ERROR_STATUSES, endpoint
        assert endpoint in routes, f"{endpoint} of spec 004 is not served"
        success = getattr(routes[endpoint], "status_code", None) or 200
        assert success in statuses, (endpoint, success, statuses)


@pytest.mark.parametrize("error", [
    ValidationFailed("x"), NotFound("x"), Conflict("x"), Conflict("x", code="2011"), PermissionDenied("x"),
    PreconditionFailed("x"), AuthenticationFailed("x"), UpstreamError("refused", retryable=False, status=409),
    UpstreamError("refused", retryable=False, status=400), UpstreamError("down", retryable=True, status=503),
    UpstreamError("denied", retryable=False, status=403),
])
def test_every_domain_error_renders_a_status_of_the_family(error: Exception) -> None:
    response = fusion_errors.render_domain_error(error)  # type: ignore[arg-type]
    assert response.status_code in fusion_errors.ERROR_STATUSES and response.status_code != 409


async def test_the_api_document_lists_no_409_for_fusion(client) -> None:  # type: ignore[no-untyped-def]
    document = (await client.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        if path.startswith("/api/v01/"):
            for method, operation in item.items():
                assert "409" not in operation.get("responses", {}), (method, path)


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation)


async def test_a_linked_number_is_an_error_400_for_users_and_resource_accounts(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    users = [u["msTeams"] for u in await sub.users(4)][1:]
    enabled = await client.put(f"{path}/msteams/users/{users[0]['id']}", headers=headers, json={"phoneNumber": sub.numbers[0]})
    assert enabled.status_code == 200, enabled.text
    held = await client.put(f"{path}/msteams/users/{users[1]['id']}", headers=headers, json={"phoneNumber": sub.numbers[0]})
    assert held.status_code == 400 and held.json()["error"]["code"] == 2011, held.text
    account = await client.post(f"{path}/msteams/resource_accounts", headers=headers, json={
        "accountType": "call-queue", "userPrincipalName": f"cq_taken_{sub.numbers[0][-6:]}@{sub.tenant['domain']}",
        "displayName": "Taken", "location": "BE", "phoneNumber": sub.numbers[0]})
    assert account.status_code == 400 and account.json()["error"]["code"] == 2011, account.text


async def _vrp(sub: Onboarded, user_id: str) -> str:
    got = await sub.world.client.get(f"{sub.path}/msteams/user/{user_id}", headers=sub.headers)
    assert got.status_code == 200, got.text
    return got.json()["msTeams"]["vrp"]


async def test_vrp_global_removes_the_per_user_grant_everywhere(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    vrps = (await client.get(f"{path}/msteams/vrps", headers=headers)).json()["results"]
    assert "Global" in [v["identity"] for v in vrps]
    users = [u["msTeams"] for u in await sub.users(5)][1:]
    for index, user in enumerate(users[:2]):
        granted = await client.put(f"{path}/msteams/users/{user['id']}", headers=headers,
                                   json={"phoneNumber": sub.numbers[index], "vrp": "teamsvoice"})
        assert granted.status_code == 200, granted.text
        assert await _vrp(sub, user["id"]) == "teamsvoice"
    whole = await client.put(f"{path}/msteams/users/{users[0]['id']}", headers=headers,
                             json={"phoneNumber": sub.numbers[0], "vrp": "Global"})
    assert whole.status_code == 200, whole.text
    assert await _vrp(sub, users[0]["id"]) == "Global"
    sub_resource = await client.put(f"{path}/msteams/users/{users[1]['id']}/vrp", headers=headers, json={"vrp": "Global"})
    assert sub_resource.status_code == 204, sub_resource.text
    assert await _vrp(sub, users[1]["id"]) == "Global"
    bulk = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": "Global", "data": [
        {"upn": users[2]["userPrincipalName"], "displayName": users[2]["displayName"], "number": sub.numbers[2],
         "country": "BE", "vrp": "Global"}]})
    assert bulk.status_code == 200, bulk.text
    assert await _vrp(sub, users[2]["id"]) == "Global"


async def test_phone_numbers_must_be_e164_with_plus(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    user = (await sub.users(2))[1]["msTeams"]
    bare = sub.numbers[3].removeprefix("+")
    calls = [
        ("PUT", f"{path}/msteams/users/{user['id']}", {"phoneNumber": bare, "location": "GB"}, "phoneNumber"),
        ("PUT", f"{path}/msteams/users/{user['id']}", {"phoneNumber": "14139301601"}, "phoneNumber"),
        ("PUT", f"{path}/msteams/users/{user['id']}/phone_number", {"phoneNumber": bare}, "phoneNumber"),
        ("POST", f"{path}/msteams/resource_accounts", {
            "accountType": "call-queue", "userPrincipalName": f"cq_bare@{sub.tenant['domain']}", "displayName": "Bare",
            "location": "BE", "phoneNumber": bare}, "phoneNumber"),
    ]
    for method, url, body, named in calls:
        response = await client.request(method, url, headers=headers, json=body)
        assert response.status_code == 400, (url, response.text)
        reason = response.json()["error"]["reason"]
        assert reason.startswith(f"{named}:") and "E.164" in reason and "+" in reason, reason
    bulk = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": "bare", "data": [
        {"upn": user["userPrincipalName"], "displayName": user["displayName"], "number": bare}]})
    assert bulk.status_code == 400, bulk.text
    assert bulk.json()["errors"][0]["error"]["reason"].startswith("number:")
    record = (await client.get(f"{path}/msteams/user/{user['id']}", headers=headers)).json()
    assert "phoneNumber" not in record.get("draas", {})  # nothing was stored as given


async def test_connecttoteams_voice_routing_policy_global_removes_the_grant(client, organisation, sub: Onboarded) -> None:  # type: ignore[no-untyped-def]
    """The same rule through the other family: `voiceRoutingPolicy: "Global"` is no per-user grant."""
    user = [u["msTeams"] for u in await sub.users(8)][6]
    token = await token_for(client, organisation.resellers[0])
    enterprises = (await client.get(f"/reseller/getEnterprisesForReseller/{organisation.resellers[0].reseller_id}",
                                    headers=bearer(token))).json()
    enterprise = next(e for e in enterprises if e["tenantId"] == sub.tenant["tenantId"])
    consent_object = {"tenantId": sub.tenant["tenantId"], "resellerId": enterprise["resellerId"],
                      "userPrincipalName": user["userPrincipalName"]}
    granted = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                                json=consent_object | {"phoneNumber": sub.numbers[7], "voiceRoutingPolicy": "teamsvoice"})
    assert granted.status_code == 200, granted.text
    assert await _vrp(sub, user["id"]) == "teamsvoice"
    reset = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                              json=consent_object | {"voiceRoutingPolicy": "Global"})
    assert reset.status_code == 200, reset.text
    assert await _vrp(sub, user["id"]) == "Global"
