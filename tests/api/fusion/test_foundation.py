"""Fusion section 1: auth, roles and scope, tenants, subscriptions, numbers (spec examples where given)."""

import pytest

from teamsvoice.domain.fusion.scope import org_uuid
from tests.api.fusion.support import BASE, PASSWORD, bearer, make_world


@pytest.fixture
async def world(client, live, organisation):
    return await make_world(client, live, organisation)


async def test_login_refresh_logout(world) -> None:
    client = world.client
    bad = await client.post("/api/v01/auth/login", json={"username": "reseller", "password": "nope"})
    assert bad.status_code == 401 and isinstance(bad.json()["error"], str)
    extra = await client.post("/api/v01/auth/login", json={"username": "reseller", "password": PASSWORD, "x": 1})
    assert extra.status_code == 400 and extra.json()["error"]["code"] == 1000
    tokens = (await client.post("/api/v01/auth/login", json={"username": "reseller", "password": PASSWORD})).json()
    assert set(tokens) == {"access_token", "refresh_token"}
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    assert (await client.get(f"{BASE}/tenants", headers=bearer(access))).status_code == 200
    # The refresh token is no access token, and vice versa.
    assert (await client.get(f"{BASE}/tenants", headers=bearer(refresh))).status_code == 401
    assert (await client.get("/api/v01/auth/access_token", headers=bearer(access))).status_code == 401
    renewed = await client.get("/api/v01/auth/access_token", headers=bearer(refresh))
    assert renewed.status_code == 200, renewed.text
    assert "refresh_token" not in renewed.json()
    new_access = renewed.json()["access_token"]
    assert (await client.get(f"{BASE}/tenants", headers=bearer(new_access))).status_code == 200
    assert (await client.get("/api/v01/auth/logout", headers=bearer(access))).status_code == 200
    for token in (access, new_access):
        gone = await client.get(f"{BASE}/tenants", headers=bearer(token))
        assert gone.status_code == 401 and isinstance(gone.json()["error"], str)
    assert (await client.get("/api/v01/auth/access_token", headers=bearer(refresh))).status_code == 401
    assert (await client.get(f"{BASE}/tenants")).status_code == 401


async def test_tenants_crud_paging_and_scope(world) -> None:
    client = world.client
    reseller = await world.as_("reseller")
    created = [await world.create_tenant(name=f"Tenant {i}", billingId=f"B{i}", markup=1.5) for i in range(3)]
    assert created[0]["owner"]["type"] == "reseller" and created[0]["isDirectTenant"] is True
    page = (await client.get(f"{BASE}/tenants", headers=reseller, params={"page_size": 2, "sort": "name", "dir": "desc"})).json()
    assert [t["name"] for t in page["tenants"]] == ["Tenant 2", "Tenant 1"]
    assert page["page"] == 1 and page["pages"] == 2 and page["results"] == 3
    rest = (await client.get(f"{BASE}/tenants", headers=reseller,
                             params={"page_size": 2, "sort": "name", "dir": "desc", "next": page["next"]})).json()
    assert [t["name"] for t in rest["tenants"]] == ["Tenant 0"] and "next" not in rest
    mismatch = await client.get(f"{BASE}/tenants", headers=reseller, params={"page_size": 3, "next": page["next"]})
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == 2001
    search = (await client.get(f"{BASE}/tenants", headers=reseller, params={"search": "ANT 1"})).json()
    assert [t["name"] for t in search["tenants"]] == ["Tenant 1"]
    uuid = created[0]["uuid"]
    updated = await client.put(f"{BASE}/tenants/{uuid}", headers=reseller, json={"name": "Renamed", "billingId": "X", "markup": 2})
    assert updated.status_code == 200 and updated.json()["markup"] == 2.0
    # Another reseller does not see it (404); the distributor above does; system must give a parent.
    other = await world.as_("other-reseller")
    assert (await client.get(f"{BASE}/tenants/{uuid}", headers=other)).status_code == 404
    assert (await client.get(f"{BASE}/tenants", headers=other)).json()["results"] == 0
    distributor = await world.as_("distributor")
    assert (await client.get(f"{BASE}/tenants/{uuid}", headers=distributor)).json()["isDirectTenant"] is False
    system = await world.as_("system")
    assert (await client.get(f"{BASE}/tenants", headers=system)).json()["results"] == 3  # everything under it
    master_uuid = org_uuid(world.organisation.master.reseller_id)
    assert (await client.get(f"{BASE}/tenants", headers=system, params={"parent": master_uuid})).json()["results"] == 3
    # A distributor creates a tenant for one of its resellers; not for a reseller of nobody it controls.
    owner = {"type": "reseller", "uuid": org_uuid(world.organisation.resellers[1].reseller_id)}
    made = await client.post(f"{BASE}/tenants", headers=distributor, json={"name": "Via distributor", "owner": owner})
    assert made.status_code == 200 and made.json()["owner"]["name"] == "Tailspin Voice"
    refused = await client.post(f"{BASE}/tenants", headers=reseller, json={"name": "x", "owner": owner})
    assert refused.status_code == 404
    wrong = await client.post(f"{BASE}/tenants", headers=distributor, json={"name": "x", "owner": {**owner, "type": "distributor"}})
    assert wrong.status_code == 400
    assert (await client.get("/api/v01/draas/other_instance/tenants", headers=reseller)).status_code == 404
    assert (await client.delete(f"{BASE}/tenants/{uuid}", headers=other)).status_code == 404
    assert (await client.delete(f"{BASE}/tenants/{uuid}", headers=reseller)).status_code == 200
    assert (await client.get(f"{BASE}/tenants/{uuid}", headers=reseller)).status_code == 404


async def test_roles_are_checked_before_scope(world) -> None:
    client = world.client
    tenant = await world.create_tenant()
    sub = await world.create_subscription(tenant["uuid"])
    await world.tenant_login(tenant["uuid"], "tenant-admin")
    await world.tenant_login(tenant["uuid"], "tenant-readonly", permissions=["tenants.instance.read"])
    admin = await world.as_("tenant-admin")
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{sub['id']}"
    assert (await client.get(path, headers=admin)).status_code == 200
    assert (await client.get(f"{BASE}/tenants/{tenant['uuid']}", headers=admin)).status_code == 200
    for method, url in (("GET", f"{BASE}/tenants"), ("POST", f"{BASE}/tenants/{tenant['uuid']}/subscriptions"),
                        ("DELETE", path), ("POST", f"{path}/numbers")):
        denied = await client.request(method, url, headers=admin, json={"name": "x"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == 1003, (method, url, denied.text)
    readonly = await world.as_("tenant-readonly")
    assert (await client.get(path, headers=readonly)).status_code == 403
    assert (await client.get(f"{path}/msteams/status", headers=readonly)).status_code == 403
    # With the role but not the object: 404, whoever owns it.
    other_tenant = await world.create_tenant(name="Other")
    assert (await client.get(f"{BASE}/tenants/{other_tenant['uuid']}/subscriptions/{sub['id']}", headers=admin)).status_code == 404
    assert (await client.get(f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{sub['id'] + 999}", headers=admin)).status_code == 404
    # Without the role, the path is not looked at: another tenant, another instance or a malformed id is 403 too.
    for method, url in (("POST", f"{BASE}/tenants/{other_tenant['uuid']}/subscriptions"),
                        ("POST", f"/api/v01/draas/other_instance/tenants/{tenant['uuid']}/subscriptions"),
                        ("GET", "/api/v01/draas/other_instance/tenants"), ("DELETE", f"{BASE}/tenants/{tenant['uuid']}/subscriptions/x"),
                        ("GET", f"{BASE}/tenants/{other_tenant['uuid']}/subscriptions/{sub['id']}/msteams/status")):
        denied = await client.request(method, url, headers=admin if method != "GET" or "status" not in url else readonly,
                                      json={"name": "x"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == 1003, (method, url, denied.text)


async def test_subscriptions(world) -> None:
    client = world.client
    reseller = await world.as_("reseller")
    tenant = await world.create_tenant()
    sub = await world.create_subscription(tenant["uuid"])
    assert sub["licenses"] == {"msTeamsUsers": 0, "sipTrunkChannels": 0} and sub["isDeletable"] is True
    assert sub["phoneNumbers"] == {"total": 0, "free": 0, "linkedToUsers": 0, "linkedToTrunkgroups": 0, "linkedToOperatorConnect": 0}
    assert "msteamsTenant" not in sub
    listed = (await client.get(f"{BASE}/tenants/{tenant['uuid']}/subscriptions", headers=reseller)).json()
    assert [s["id"] for s in listed["subscriptions"]] == [sub["id"]] and listed["results"] == 1
    bad = await client.post(f"{BASE}/tenants/{tenant['uuid']}/subscriptions", headers=reseller, json={"name": 12})
    assert bad.status_code == 400 and "name" in bad.json()["error"]["reason"]
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{sub['id']}"
    await client.post(f"{path}/numbers", headers=reseller, json={"countryCode": "+32", "numbers": ["22100100"]})
    refused = await client.delete(path, headers=reseller)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 2021
    assert (await client.delete(f"{BASE}/tenants/{tenant['uuid']}", headers=reseller)).json()["error"]["code"] == 2020
    await client.request("DELETE", f"{path}/numbers", headers=reseller, json={"numbers": [{"countryCode": "+32", "nsn": "22100100"}]})
    assert (await client.delete(path, headers=reseller)).status_code == 200
    assert (await client.get(path, headers=reseller)).status_code == 404


async def _subscription_path(world) -> tuple[dict, str]:  # type: ignore[no-untyped-def]
    """A new tenant, and its new subscription's API path."""
    tenant = await world.create_tenant()
    sub = await world.create_subscription(tenant["uuid"])
    return tenant, f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{sub['id']}"


async def test_numbers(world) -> None:
    client = world.client
    reseller = await world.as_("reseller")
    tenant, path = await _subscription_path(world)
    added = await client.post(f"{path}/numbers", headers=reseller,
                              json={"countryCode": "+32", "isoCode": "BE", "ranges": [[22100100, 22100104]]})
    assert added.status_code == 200 and added.json()["added"] == 5
    first = added.json()["numbers"][0]
    assert first == {"assigned": False, "isoCode": "BE", "countryCode": "+32", "fullNumber": "+3222100100", "nsn": "22100100",
                     "numberType": "geographic", "source": "ranges", "id": first["id"]}
    cases = [
        ({"countryCode": "+32", "numbers": ["123"]}, 400, "123"),
        ({"countryCode": "+999", "numbers": ["22100100"]}, 400, "countryCode"),
        ({"countryCode": "+1", "isoCode": "BE", "numbers": ["4139301600"]}, 400, "not of BE"),
        ({"countryCode": "+32", "ranges": [[22100110, 22100105]]}, 400, "below"),
        ({"countryCode": "+32", "numbers": ["22100101"]}, 400, "already"),
        ({"countryCode": "+32", "numbers": ["22100120", "22100120"]}, 400, "twice"),
        ({"countryCode": "+32"}, 400, "ranges or numbers"),
        ({"countryCode": "+32", "numbers": [22100130], "ranges": [[1, 2]]}, 400, "ranges or numbers"),
    ]
    for body, status, named in cases:
        response = await client.post(f"{path}/numbers", headers=reseller, json=body)
        assert response.status_code == status and named in response.json()["error"]["reason"], (body, response.text)
    assert (await client.get(f"{path}/numbers", headers=reseller)).json()["results"] == 5  # nothing half-written
    plain = await client.post(f"{path}/numbers", headers=reseller, json={"countryCode": "32", "numbers": [22100130]})
    assert plain.status_code == 200 and plain.json()["numbers"][0]["source"] == "numbers"
    page = (await client.get(f"{path}/numbers", headers=reseller, params={"page_size": 4})).json()
    assert len(page["numbers"]) == 4 and page["results"] == 6
    rest = (await client.get(f"{path}/numbers", headers=reseller, params={"page_size": 4, "next": page["next"]})).json()
    assert [n["fullNumber"] for n in rest["numbers"]] == ["+3222100104", "+3222100130"]
    assert (await client.get(f"{path}/numbers", headers=reseller, params={"page_size": 4, "search": "0", "next": page["next"]})).status_code == 400
    found = (await client.get(f"{path}/numbers", headers=reseller, params={"search": "130"})).json()
    assert [n["nsn"] for n in found["numbers"]] == ["22100130"]
    free = (await client.get(f"{path}/free_numbers", headers=reseller)).json()
    assert len(free["freeNumbers"]) == 6
    # Numbers belong to one subscription only.
    other = await world.create_subscription(tenant["uuid"], name="Second")
    taken = await client.post(f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{other['id']}/numbers", headers=reseller,
                              json={"countryCode": "+32", "numbers": ["22100100"]})
    assert taken.status_code == 400 and taken.json()["error"]["code"] == 2010
    # Ranges as spec 004's example writes them, strings of digits; a leading zero is kept (Italy's numbers).
    other_path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{other['id']}/numbers"
    strings = await client.post(other_path, headers=reseller, json={"countryCode": "+32", "ranges": [["22100140", "22100142"]]})
    assert strings.status_code == 200 and strings.json()["added"] == 3, strings.text
    italian = await client.post(other_path, headers=reseller, json={"countryCode": "+39", "ranges": [["0612345670", "0612345671"]]})
    assert italian.status_code == 200, italian.text
    assert [n["fullNumber"] for n in italian.json()["numbers"]] == ["+390612345670", "+390612345671"]
    for bad in (["\u00b2", "3"], ["12", 13.0], ["-1", "3"], [True, 3]):
        refused = await client.post(other_path, headers=reseller, json={"countryCode": "+32", "ranges": [bad]})
        assert refused.status_code == 400 and "two numbers" in refused.json()["error"]["reason"], (bad, refused.text)
    deleted = await client.request("DELETE", f"{path}/numbers", headers=reseller,
                                   json={"numbers": [{"countryCode": "+32", "nsn": "22100130"}]})
    assert deleted.status_code == 200 and deleted.json() == {"deleted": ["+3222100130"]}
    missing = await client.request("DELETE", f"{path}/numbers", headers=reseller,
                                   json={"numbers": [{"countryCode": "+32", "nsn": "22100130"}]})
    assert missing.status_code == 404


async def test_number_requests_are_bounded_and_searched_by_ascii_digits(world) -> None:
    """Removing numbers has the cap adding them has (10,000 a request: one all-or-nothing transaction); a search
    of numbers takes ASCII digits only ("²" and "١" pass `str.isdigit` but are no digit of a number)."""
    client = world.client
    reseller = await world.as_("reseller")
    _tenant, path = await _subscription_path(world)
    added = await client.post(f"{path}/numbers", headers=reseller,
                              json={"countryCode": "+32", "ranges": [[22100100, 22100101]]})
    assert added.status_code == 200, added.text
    too_many = [{"countryCode": "+32", "nsn": str(22200000 + i)} for i in range(10_001)]
    for method, body in (("POST", {"countryCode": "+32", "numbers": [n["nsn"] for n in too_many]}),
                         ("DELETE", {"numbers": too_many})):
        refused = await client.request(method, f"{path}/numbers", headers=reseller, json=body)
        assert refused.status_code == 400, (method, refused.text)
        assert refused.json()["error"] == {"code": 1000, "reason": "numbers: at most 10000 numbers per request"}, method
    assert (await client.get(f"{path}/numbers", headers=reseller)).json()["results"] == 2
    for search in ("\u00b2", "\u0661", "+\u0663\u0662"):
        for url, params in ((f"{path}/numbers", {}), (f"{path}/number_inventory", {"status": "disconnected"})):
            answer = await client.get(url, headers=reseller, params=params | {"search": search})
            assert answer.status_code == 400, (url, search, answer.text)
            assert answer.json()["error"]["reason"] == "search: give some digits of the number", (url, search)
    found = await client.get(f"{path}/numbers", headers=reseller, params={"search": "+32 2210 0101"})
    assert [n["nsn"] for n in found.json()["numbers"]] == ["22100101"]
