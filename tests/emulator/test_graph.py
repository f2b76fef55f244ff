"""Graph v1.0 directory surface over HTTPS with an app-only token."""

import httpx
from emulator_support import ADMIN_PASSWORD, Tenant, authorize_url, redirect_params, register_app

E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
MCOEV = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"


def test_missing_or_bad_token_is_401_in_graph_envelope(emulator, graph: httpx.Client) -> None:
    response = httpx.get(f"{emulator.url}/v1.0/users", verify=str(emulator.ca_cert_path))
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    forged = httpx.get(
        f"{emulator.url}/v1.0/users", headers={"Authorization": "Bearer abc.def.ghi"}, verify=str(emulator.ca_cert_path)
    )
    assert forged.status_code == 401


def test_users_paging_follows_next_links_to_the_end(emulator, graph: httpx.Client) -> None:
    first = graph.get("/users").json()
    assert len(first["value"]) == 100 and first["@odata.nextLink"].startswith(f"{emulator.url}/v1.0/users?")
    assert set(first["value"][0]) == {
        "businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone", "officeLocation",
        "preferredLanguage", "surname", "userPrincipalName",
    }
    seen, url = [], "/users?$top=7&$select=id,displayName"
    while url:
        page = graph.get(url).json()
        assert len(page["value"]) <= 7 and all(set(u) == {"id", "displayName"} for u in page["value"])
        seen += [u["id"] for u in page["value"]]
        url = page.get("@odata.nextLink")
        if url:
            assert "%24top=7" in url or "$top=7" in url
    total = int(graph.get("/users/$count", headers={"ConsistencyLevel": "eventual"}).text)
    assert len(seen) == len(set(seen)) == total >= 121


def test_top_limits_and_query_rules(graph: httpx.Client) -> None:
    too_big = graph.get("/users?$top=1000")
    assert too_big.status_code == 400
    assert too_big.json()["error"]["message"] == "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
    search = graph.get('/users?$search="displayName:adele"')
    assert search.status_code == 400 and search.json()["error"]["code"] == "Request_UnsupportedQuery"
    found = graph.get('/users?$search="displayName:adele"&$count=true', headers={"ConsistencyLevel": "eventual"}).json()
    assert found["@odata.count"] == len(found["value"]) > 0
    assert all("adele" in u["displayName"].lower() for u in found["value"])
    starts = graph.get("/users?$filter=startswith(displayName,'Al')").json()["value"]
    assert starts and all(u["displayName"].startswith("Al") for u in starts)
    us = graph.get("/users?$filter=usageLocation eq 'US'&$select=id,usageLocation").json()["value"]
    assert us and all(u["usageLocation"] == "US" for u in us)
    assert graph.get("/users/$count").status_code == 400


def test_get_user_by_id_and_upn_and_member_of(graph: httpx.Client, tenant: Tenant) -> None:
    by_upn = graph.get(f"/users/{tenant.admin}")
    assert by_upn.status_code == 200 and by_upn.json()["id"] == tenant.admin_id
    assert graph.get(f"/users/{tenant.admin_id}").json()["userPrincipalName"] == tenant.admin
    member_of = graph.get(f"/users/{tenant.admin_id}/memberOf").json()["value"]
    role = next(o for o in member_of if o["@odata.type"] == "#microsoft.graph.directoryRole")
    assert role["displayName"] == "Global Administrator"
    assert role["roleTemplateId"] == "62e90394-69f5-4237-9190-012177145e10"
    missing = graph.get("/users/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    assert "does not exist or one of its queried reference-property objects are not present" in missing.json()["error"]["message"]


def test_organization_and_domains(graph: httpx.Client, tenant: Tenant) -> None:
    organization = graph.get("/organization").json()["value"]
    assert len(organization) == 1 and organization[0]["id"] == tenant.tenant_id
    names = {d["name"]: d for d in organization[0]["verifiedDomains"]}
    assert names["contoso.example"]["isDefault"] and names["contoso.onmicrosoft.com"]["isInitial"]
    domains = graph.get("/domains").json()["value"]
    assert {d["id"] for d in domains} == {"contoso.example", "contoso.onmicrosoft.com"}
    assert graph.get("/domains/contoso.example").json()["isDefault"] is True
    assert graph.get("/domains/fabrikam.example").status_code == 404


def test_create_update_license_and_delete_user(graph: httpx.Client, tenant: Tenant) -> None:
    body = {
        "accountEnabled": True,
        "displayName": "Nina Licence",
        "mailNickname": "nina",
        "userPrincipalName": f"nina@{tenant.domain}",
        "passwordProfile": {"password": "N1na-Passw0rd!"},
    }
    created = graph.post("/users", json=body)
    assert created.status_code == 201 and "passwordProfile" not in created.json()
    user_id = created.json()["id"]
    duplicate = graph.post("/users", json=body)
    assert duplicate.status_code == 400
    assert duplicate.json()["error"]["message"] == "Another object with the same value for property userPrincipalName already exists."
    foreign = graph.post("/users", json={**body, "userPrincipalName": "nina@elsewhere.example"})
    assert foreign.status_code == 400
    assert graph.post("/users", json={"displayName": "x"}).status_code == 400

    no_location = graph.post(f"/users/{user_id}/assignLicense", json={"addLicenses": [{"skuId": E3, "disabledPlans": []}], "removeLicenses": []})
    assert no_location.status_code == 400
    assert no_location.json()["error"]["message"] == "License assignment cannot be done for user with invalid usage location."
    assert graph.patch(f"/users/{user_id}", json={"usageLocation": "BE"}).status_code == 204

    skus = {s["skuPartNumber"]: s for s in graph.get("/subscribedSkus").json()["value"]}
    consumed_before = skus["ENTERPRISEPACK"]["consumedUnits"]
    assigned = graph.post(f"/users/{user_id}/assignLicense", json={"addLicenses": [{"skuId": E3, "disabledPlans": []}], "removeLicenses": []})
    assert assigned.status_code == 200 and assigned.json()["id"] == user_id
    details = graph.get(f"/users/{user_id}/licenseDetails").json()["value"]
    assert [d["skuPartNumber"] for d in details] == ["ENTERPRISEPACK"]
    skus = {s["skuPartNumber"]: s for s in graph.get("/subscribedSkus").json()["value"]}
    assert skus["ENTERPRISEPACK"]["consumedUnits"] == consumed_before + 1

    while skus["MCOEV"]["prepaidUnits"]["enabled"] > skus["MCOEV"]["consumedUnits"]:
        filler = graph.post("/users", json={**body, "userPrincipalName": f"filler{skus['MCOEV']['consumedUnits']}@{tenant.domain}", "usageLocation": "US"}).json()
        assert graph.post(f"/users/{filler['id']}/assignLicense", json={"addLicenses": [{"skuId": MCOEV}], "removeLicenses": []}).status_code == 200
        skus = {s["skuPartNumber"]: s for s in graph.get("/subscribedSkus").json()["value"]}
    full = graph.post(f"/users/{user_id}/assignLicense", json={"addLicenses": [{"skuId": MCOEV}], "removeLicenses": []})
    assert full.status_code == 400 and "does not have any available licenses" in full.json()["error"]["message"]

    assert graph.delete(f"/users/{user_id}").status_code == 204
    assert graph.get(f"/users/{user_id}").status_code == 404
    skus = {s["skuPartNumber"]: s for s in graph.get("/subscribedSkus").json()["value"]}
    assert skus["ENTERPRISEPACK"]["consumedUnits"] == consumed_before


def test_groups_teams_filter_and_membership(graph: httpx.Client, tenant: Tenant) -> None:
    groups = graph.get("/groups").json()["value"]
    assert {"Sales", "Support", "Teams Voice Users"} <= {g["displayName"] for g in groups}
    teams = graph.get("/groups?$filter=resourceProvisioningOptions/Any(x:x eq 'Team')").json()["value"]
    assert [g["displayName"] for g in teams] == ["Sales"] and teams[0]["resourceProvisioningOptions"] == ["Team"]
    support = next(g for g in groups if g["displayName"] == "Support")
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{tenant.admin_id}"}
    assert graph.post(f"/groups/{support['id']}/members/$ref", json=reference).status_code == 204
    again = graph.post(f"/groups/{support['id']}/members/$ref", json=reference)
    assert again.status_code == 400
    assert again.json()["error"]["message"] == "One or more added object references already exist for the following modified properties: 'members'."
    members = graph.get(f"/groups/{support['id']}/members").json()["value"]
    assert tenant.admin_id in {m["id"] for m in members}
    assert any(o["id"] == support["id"] for o in graph.get(f"/users/{tenant.admin_id}/memberOf").json()["value"])
    unknown = graph.post(
        f"/groups/{support['id']}/members/$ref",
        json={"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/00000000-0000-0000-0000-000000000001"},
    )
    assert unknown.status_code == 404
    assert graph.delete(f"/groups/{support['id']}/members/{tenant.admin_id}/$ref").status_code == 204
    assert graph.delete(f"/groups/{support['id']}/members/{tenant.admin_id}/$ref").status_code == 404


def test_delegated_token_without_permission_is_403(http: httpx.Client, browser, emulator, tenant: Tenant) -> None:
    app = register_app(http, "Reader")
    url = authorize_url(emulator.url, tenant.tenant_id, app, "openid User.Read")
    page = browser.sign_in(url, tenant.admin, ADMIN_PASSWORD)
    code = redirect_params(browser.consent(page))["code"]
    token = http.post(
        f"/{tenant.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "authorization_code", "client_id": app.client_id, "client_secret": app.secret,
              "code": code, "redirect_uri": app.redirect_uri},
    ).json()["access_token"]
    response = http.get("/v1.0/users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "Authorization_RequestDenied"
    assert http.get("/v1.0/organization", headers={"Authorization": f"Bearer {token}"}).status_code == 200
