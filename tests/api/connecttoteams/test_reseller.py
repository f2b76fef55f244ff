"""Reseller-level endpoints and enterprise creation/editing (spec 000 Part I, spec 001)."""

import httpx

from tests.support.ctt import bearer, enterprise_body, reseller_catalogue, token_for


async def test_authenticated_user_accepts_bare_text_and_json_string(client: httpx.AsyncClient, organisation) -> None:
    login = organisation.master
    token = await token_for(client, login)
    headers = bearer(token) | {"Content-Type": "application/json"}
    bare = await client.put("/reseller/getAuthenticatedUser", content=login.username, headers=headers)
    quoted = await client.put("/reseller/getAuthenticatedUser", content=f'"{login.username}"', headers=headers)
    assert bare.status_code == quoted.status_code == 200
    body = bare.json()
    assert body["username"] == login.username and body["type"] == "MASTER_RESELLER"
    assert body["resellerId"] == login.reseller_id and body["passwordChanged"] is True
    other = await client.put("/reseller/getAuthenticatedUser", content="someone-else", headers=headers)
    assert other.status_code == 404


async def test_master_sees_its_resellers_and_a_reseller_does_not_see_its_master(client: httpx.AsyncClient, organisation) -> None:
    master_token = await token_for(client, organisation.master)
    listed = await client.get(f"/reseller/getResellers/{organisation.master.reseller_id}", headers=bearer(master_token))
    assert listed.status_code == 200
    assert sorted(r["resellerId"] for r in listed.json()) == sorted(r.reseller_id for r in organisation.resellers)
    reseller_token = await token_for(client, organisation.resellers[0])
    hidden = await client.get(f"/reseller/getResellers/{organisation.master.reseller_id}", headers=bearer(reseller_token))
    assert hidden.status_code == 404
    sibling = await client.get(f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{organisation.resellers[1].reseller_id}",
                               headers=bearer(reseller_token))
    assert sibling.status_code == 404


async def test_catalogue_shapes(client: httpx.AsyncClient, organisation) -> None:
    login = organisation.resellers[0]
    token = await token_for(client, login)
    gateways = (await client.get(f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{login.reseller_id}", headers=bearer(token))).json()
    assert gateways and set(gateways[0]) == {"sbcGatewayId", "sbcGatewayRegion"}
    types = (await client.get("/pbx/getPBXTypesByResellerId", params={"resellerId": login.reseller_id}, headers=bearer(token))).json()
    assert types and set(types[0]) == {"id", "pbxName", "pbxLabel", "isDefault", "isDisabled", "hostingType"}
    bad = await client.get("/pbx/getPBXTypesByResellerId", params={"resellerId": "abc"}, headers=bearer(token))
    assert bad.status_code == 400 and "resellerId" in bad.json()["message"]


async def test_new_enterprise_returns_a_bare_long_and_is_listed(client: httpx.AsyncClient, organisation) -> None:
    login = organisation.resellers[0]
    token = await token_for(client, login)
    pbx, sbc = await reseller_catalogue(client, token, login.reseller_id)
    created = await client.post("/reseller/newEnterprise", json=enterprise_body(login.reseller_id, "Acme", pbx=pbx[:1], sbc=sbc[:1]),
                                headers=bearer(token))
    assert created.status_code == 200
    enterprise_id = created.json()
    assert isinstance(enterprise_id, int) and created.text == str(enterprise_id)
    listed = (await client.get(f"/reseller/getEnterprisesForReseller/{login.reseller_id}", headers=bearer(token))).json()
    assert [(e["enterpriseId"], e["enterpriseName"], e["services"], e["registered"]) for e in listed] == [
        (enterprise_id, "Acme", ["PBX"], False)]
    assert listed[0]["billingReferences"] == ["PO-1"] and listed[0]["userLimit"] == 100
    other_token = await token_for(client, organisation.resellers[1])
    hidden = await client.get(f"/reseller/getEnterprisesForReseller/{login.reseller_id}", headers=bearer(other_token))
    assert hidden.status_code == 404
    master_token = await token_for(client, organisation.master)
    seen_by_master = await client.get(f"/reseller/getEnterprisesForReseller/{login.reseller_id}", headers=bearer(master_token))
    assert [e["enterpriseId"] for e in seen_by_master.json()] == [enterprise_id]


async def test_new_enterprise_rejects_bad_input_naming_the_problem(client: httpx.AsyncClient, organisation) -> None:
    login = organisation.resellers[0]
    token = await token_for(client, login)
    pbx, sbc = await reseller_catalogue(client, token, login.reseller_id)
    other_pbx, other_sbc = await reseller_catalogue(client, await token_for(client, organisation.resellers[1]),
                                                    organisation.resellers[1].reseller_id)
    good = enterprise_body(login.reseller_id, "Globex", pbx=pbx[:1], sbc=sbc[:1])
    cases = [
        ({k: v for k, v in good.items() if k != "enterpriseName"}, 400, "enterpriseName"),
        (good | {"enterpriseName": "   "}, 400, "enterpriseName"),
        (good | {"resellerId": "12"}, 400, "resellerId"),
        (good | {"userLimit": False}, 400, "userLimit"),
        # the count a Fusion subscription's msTeamsUsers keeps equal: the licences' one rule (PostgreSQL's 32-bit
        # column answered a generic out-of-range error to 2**40)
        (good | {"userLimit": 2**40}, 400, "userLimit: must be an integer from 0 (no limit) to 1000000"),
        (good | {"userLimit": 1_000_001}, 400, "userLimit: must be an integer from 0 (no limit) to 1000000"),
        (good | {"services": ["PBX", "FAX"]}, 400, "services"),
        ({k: v for k, v in good.items() if k != "pbxId"}, 400, "pbxId"),
        (good | {"pbxId": other_pbx[:1]}, 400, "pbxId"),
        (good | {"sbcGateways": other_sbc[:1]}, 400, "sbcGateways"),
        (good | {"sbcGateways": []}, 400, "sbcGateways"),
        (good | {"services": ["CALLAPP"], "pbxId": []}, 400, "CALLAPP"),
        # Texts longer than their columns, or with NUL: SQLite stored them, PostgreSQL answered "A value in the
        # request cannot be stored" (or spoke of NUL), naming no field.
        (good | {"countryName": "x" * 101}, 400, "countryName: at most 100 characters"),
        (good | {"countryName": "Bel\u0000gium"}, 400, "countryName: must not contain NUL"),
        (good | {"federationDomain": "x" * 256}, 400, "federationDomain: at most 255 characters"),
        (good | {"registeredBy": "x" * 201}, 400, "registeredBy: at most 200 characters"),
    ]
    for body, status, named in cases:
        response = await client.post("/reseller/newEnterprise", json=body, headers=bearer(token))
        assert response.status_code == status, (body, response.text)
        assert named in response.json()["message"], response.json()
        assert response.json()["path"] == "/reseller/newEnterprise"
    malformed = await client.post("/reseller/newEnterprise", content=b'{"enterpriseName": ', headers=bearer(token) | {"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "Malformed JSON" in malformed.json()["message"]
    assert (await client.get(f"/reseller/getEnterprisesForReseller/{login.reseller_id}", headers=bearer(token))).json() == []
    assert (await client.post("/reseller/newEnterprise", json=good, headers=bearer(token))).status_code == 200
    duplicate = await client.post("/reseller/newEnterprise", json=good, headers=bearer(token))
    assert duplicate.status_code == 409 and "Globex" in duplicate.json()["message"]


async def test_edit_enterprise_changes_only_what_is_sent(client: httpx.AsyncClient, organisation) -> None:
    login = organisation.resellers[0]
    token = await token_for(client, login)
    pbx, sbc = await reseller_catalogue(client, token, login.reseller_id)
    enterprise_id = (await client.post("/reseller/newEnterprise", json=enterprise_body(login.reseller_id, "Initech", pbx=pbx[:1], sbc=sbc[:1]),
                                       headers=bearer(token))).json()
    edited = await client.post("/reseller/editEnterprise", json={"enterpriseId": enterprise_id, "services": ["PBX", "SMS", "CALLAPP"]},
                               headers=bearer(token))
    assert edited.status_code == 200
    assert edited.json()["services"] == ["PBX", "SMS", "CALLAPP"] and edited.json()["billingReferences"] == ["PO-1"]
    bad = await client.post("/reseller/editEnterprise", json={"enterpriseId": enterprise_id, "services": ["Trunk"], "sbcGateways": []},
                            headers=bearer(token))
    assert bad.status_code == 400 and "sbcGateways" in bad.json()["message"]
    too_long = await client.post("/reseller/editEnterprise", headers=bearer(token),
                                 json={"enterpriseId": enterprise_id, "countryName": "x" * 101})
    assert too_long.status_code == 400 and too_long.json()["message"] == "countryName: at most 100 characters"
    other = await client.post("/reseller/editEnterprise", json={"enterpriseId": enterprise_id, "enterpriseName": "Mine"},
                              headers=bearer(await token_for(client, organisation.resellers[1])))
    assert other.status_code == 404
    missing_id = await client.post("/reseller/editEnterprise", json={"services": ["PBX"]}, headers=bearer(token))
    assert missing_id.status_code == 400 and "enterpriseId" in missing_id.json()["message"]
