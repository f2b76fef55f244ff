"""ConnecttoTeams: an id past the database's integer range is "not found" on both backends, and an extension is one
user's at a PBX (every location at its canonicalPbxSIPDomain), also when two requests give it at once."""

import asyncio
import random

from tests.e2e.test_calling import enterprise_token, location_body, user_body
from tests.support.calling import licensed_users
from tests.support.ctt import SPRING, bearer, enterprise_body, reseller_catalogue, token_for
from tests.support.database import in_session

PAST_THE_IDS = (2147483648, 99999999999999999999)  # past PostgreSQL's integer; past 64 bits


def expect(response, status: int, *named: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == SPRING and body["status"] == status, response.text
    assert all(name in body["message"] for name in named), response.text


async def test_an_id_past_the_database_range_is_not_found(client, organisation) -> None:
    """PostgreSQL answered its generic 400 ("A number in the request is out of range") where SQLite answered 404, and
    an id past 64 bits was a 400 on both: now the same 404 as any id that does not exist, in a path, a query or a body."""
    login = organisation.resellers[0]
    token = await token_for(client, login)
    pbx, sbc = await reseller_catalogue(client, token, login.reseller_id)
    enterprise_id = (await client.post("/reseller/newEnterprise", headers=bearer(token), json=enterprise_body(
        login.reseller_id, "Acme", pbx=pbx[:1], sbc=sbc[:1]))).json()
    for n in PAST_THE_IDS:
        requests = [
            ("DELETE", f"/pbx/deletePBXLocation/{n}", None, ()),
            ("DELETE", f"/pbx/deletePBXUser/{n}", None, ()),
            ("POST", f"/sms/getEnterpriseSMSConfig/{n}", None, ()),
            ("GET", f"/pbx/getPBXTypesByResellerId?resellerId={n}", None, ()),
            ("POST", "/reseller/editEnterprise", {"enterpriseId": n, "userLimit": 5}, ("enterpriseId",)),
            ("POST", "/pbx/configurePBX", location_body(n), ("enterpriseId",)),
            ("POST", "/pbx/configurePBX", location_body(enterprise_id) | {"id": n}, ("id",)),
            ("POST", "/reseller/saveOrUpdateTeamsApplicationTemplate",
             {"enterpriseId": n, "name": "App", "portalURL": "https://portal.example", "brandingImageInBytes": "x",
              "outlineImageInBytes": "x"}, ("enterpriseId",)),
            ("POST", "/provisioning/completeEnterpriseRegistration", {"enterpriseId": n, "tenantId": "t"}, ("enterpriseId",)),
            ("POST", "/enterprise/getActionItemUrl", {"actionType": "REGISTRATION", "enterpriseName": "Acme",
                                                      "redirectUrl": "https://portal.example/back", "enterpriseId": n},
             ("enterpriseId",)),
        ]
        for method, path, body, named in requests:
            expect(await client.request(method, path, headers=bearer(token), json=body), 404, str(n), *named)
    # Nothing was changed by them: the enterprise is as it was made, without locations.
    listed = (await client.get(f"/reseller/getEnterprisesForReseller/{login.reseller_id}", headers=bearer(token))).json()
    assert [(e["enterpriseId"], e["userLimit"]) for e in listed] == [(enterprise_id, 100)]


async def test_calling_ids_past_the_database_range_are_not_found(registered, live) -> None:
    client, token, tenant = registered.client, registered.token, registered.tenant
    location = (await client.post("/pbx/configurePBX", headers=bearer(token), json=location_body(registered.enterprise_id))).json()
    ga_token = registered.msal_object["authenticationResult"]["accessToken"]
    upn = licensed_users(live, ga_token, tenant["globalAdmin"]["username"])[0]["userPrincipalName"]
    ent_token = await enterprise_token(registered)
    msal = {"authenticationResult": registered.msal_object}
    for n in PAST_THE_IDS:
        body = user_body(registered, upn=upn, number="14139301761", route=n, location=location["pbxLocation"])
        expect(await client.post("/enterprise/configureUser", headers=bearer(token), json=body), 404, "directRouteId", str(n))
        named_by_number = body | {"directRouteId": 1, "pbxLocation": n}
        expect(await client.post("/enterprise/configureUser", headers=bearer(token), json=named_by_number), 404,
               "pbxLocation", str(n))
        for path in ("/provisioning/verifyTenantForDirectRouting", "/provisioning/provisionDirectRouting"):
            expect(await client.post(path, headers=bearer(ent_token), json=msal | {"sbcGatewayId": n}), 404,
                   "sbcGatewayId", str(n))
    registrations = await client.post("/pbx/getSBCRegistrationsForEnterprise", headers=bearer(token),
                                      content=tenant["tenantId"])
    assert registrations.status_code == 200 and registrations.json()["users"] == []


def numbers(count: int) -> list[str]:
    """Numbers nobody holds (the emulated tenant outlives each test's database and serves both backends)."""
    base = 14139300000 + random.randrange(0, 9000) * 10
    return [str(base + i) for i in range(count)]


async def _with_a_direct_route(live, registered) -> int:  # type: ignore[no-untyped-def]
    from teamsvoice.domain.calling.models import DirectRoute
    from teamsvoice.domain.orgs.models import Enterprise

    async def add(session) -> int:  # type: ignore[no-untyped-def]
        enterprise = await session.get(Enterprise, registered.enterprise_id)
        route = DirectRoute(enterprise_id=enterprise.id, sbc_gateway_id=enterprise.sbc_gateway_ids[0],
                            tenant_id=registered.tenant["tenantId"], gateway_fqdn=f"sbc.{registered.tenant['domain']}",
                            sip_port=5061, pstn_usage="Usage", voice_route="Route", number_pattern=".*",
                            voice_routing_policy="Policy")
        session.add(route)
        await session.flush()
        return route.id

    return await in_session(live, add)


async def _registered_users(client, token: str, tenant_id: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    report = await client.post("/pbx/getSBCRegistrationsForEnterprise", headers=bearer(token), content=tenant_id)
    assert report.status_code == 200, report.text
    return sorted((u["pbxLocation"], u["pbxUserId"], u["teamsUserId"]) for u in report.json()["users"])


async def test_an_extension_is_one_users_at_a_pbx(registered, live) -> None:
    """Two locations at one canonicalPbxSIPDomain are one PBX: the SBC registers extension@domain, and both users of
    one extension were registered (the PBX rang both). Refused naming the extension, its user and its location."""
    client, token, tenant, enterprise_id = registered.client, registered.token, registered.tenant, registered.enterprise_id
    route = await _with_a_direct_route(live, registered)
    ga_token = registered.msal_object["authenticationResult"]["accessToken"]
    upns = [u["userPrincipalName"] for u in licensed_users(live, ga_token, tenant["globalAdmin"]["username"])[:3]]
    n1, n2, n3, n4 = numbers(4)
    for name in ("HQ", "Annex"):
        created = await client.post("/pbx/configurePBX", headers=bearer(token), json=location_body(enterprise_id, name))
        assert created.status_code == 200, created.text
    elsewhere = location_body(enterprise_id, "Branch") | {"canonicalPbxSIPDomain": "pbx.branch.example"}
    assert (await client.post("/pbx/configurePBX", headers=bearer(token), json=elsewhere)).status_code == 200

    def configure(user: int, number: str, location: str, extension: str):  # type: ignore[no-untyped-def]
        return client.post("/enterprise/configureUser", headers=bearer(token), json=user_body(
            registered, upn=upns[user], number=number, route=route, location=location, pbx_id=extension))

    assert (await configure(0, n1, "HQ", "104")).status_code == 200
    expect(await configure(1, n2, "Annex", "104"), 409, "pbxUserId", "104", upns[0].lower(), "HQ")
    assert (await configure(1, n2, "Annex", "105")).status_code == 200
    assert (await configure(2, n3, "Branch", "104")).status_code == 200  # another PBX: its own 104
    # The same user again at its own extension, and moved to the other location of its PBX: no clash with itself.
    assert (await configure(0, n1, "Annex", "104")).status_code == 200
    # A location moving to the PBX takes its users' extensions there: Branch's 104 is the first user's at that PBX.
    moved = await client.post("/pbx/configurePBX", headers=bearer(token),
                              json=location_body(enterprise_id, "Branch"))
    expect(moved, 409, "canonicalPbxSIPDomain", "104", upns[0].lower(), upns[2].lower())
    assert await _registered_users(client, token, tenant["tenantId"]) == sorted([
        ("Annex", "104", upns[0].lower()), ("Annex", "105", upns[1].lower()), ("Branch", "104", upns[2].lower())])
    branch = next(loc for loc in (await client.post("/pbx/getBasicPBXLocationDetailsForEnterprise", headers=bearer(token),
                                                    content=tenant["tenantId"])).json() if loc["pbxLocation"] == "Branch")
    assert branch["canonicalPbxSIPDomain"] == "pbx.branch.example"
    # Requests at once giving one extension at two locations of the PBX: one is configured, the other refused.
    for extension in ("201", "202", "203"):  # (the winner leaves its last one: each round's is free for both)
        first, second = numbers(2)
        answers = await asyncio.gather(configure(1, first, "HQ", extension), configure(2, second, "Annex", extension))
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    at_the_pbx = [ext for location, ext, _ in await _registered_users(client, token, tenant["tenantId"])
                  if location in ("HQ", "Annex")]
    assert len(at_the_pbx) == len(set(at_the_pbx)), at_the_pbx


async def test_a_pbx_is_one_resellers(registered, organisation) -> None:  # type: ignore[no-untyped-def]
    """A location of another reseller's enterprise at a PBX's canonicalPbxSIPDomain was made: the SBC then
    registered its users at that PBX, and its configureUser answers told which of the first enterprise's extensions
    existed (409 for a taken one, 200 for a free one, which it then took). A PBX is one reseller's: refused, made
    or moved there, naming only the domain."""
    client, token = registered.client, registered.token
    taken = location_body(registered.enterprise_id)["canonicalPbxSIPDomain"]
    assert (await client.post("/pbx/configurePBX", headers=bearer(token),
                              json=location_body(registered.enterprise_id))).status_code == 200
    other = organisation.resellers[1]
    other_token = await token_for(client, other)
    pbx, sbc = await reseller_catalogue(client, other_token, other.reseller_id)
    theirs = (await client.post("/reseller/newEnterprise", headers=bearer(other_token), json=enterprise_body(
        other.reseller_id, "Other PBX owner", pbx=pbx[:1], sbc=sbc[:1]))).json()
    refused = await client.post("/pbx/configurePBX", headers=bearer(other_token), json=location_body(theirs, "Theirs"))
    expect(refused, 409, "canonicalPbxSIPDomain", taken)
    own = location_body(theirs, "Theirs") | {"canonicalPbxSIPDomain": "pbx.other-owner.example"}
    assert (await client.post("/pbx/configurePBX", headers=bearer(other_token), json=own)).status_code == 200
    moved = await client.post("/pbx/configurePBX", headers=bearer(other_token),
                              json=own | {"canonicalPbxSIPDomain": taken.upper()})
    expect(moved, 409, "canonicalPbxSIPDomain", taken)
    # The first reseller's enterprises there are as before: another location is made at its PBX.
    assert (await client.post("/pbx/configurePBX", headers=bearer(token),
                              json=location_body(registered.enterprise_id, "Annex"))).status_code == 200


async def test_text_that_names_nothing_is_answered_alike(client, organisation) -> None:
    """A job key or a tenant id with a NUL: PostgreSQL's generic 400 ("Text values must not contain NUL") where
    SQLite answered 404. An id in a path or query is ASCII digits: "1_0" read as 10, "1.0" as 1, " 3" as 3."""
    login = organisation.resellers[0]
    token = await token_for(client, login)
    expect(await client.get("/provisioning/getSyncJobStatus/a%00b", headers=bearer(token)), 404, "Job")
    long_key = await client.get("/provisioning/getSyncJobStatus/" + "a" * 5000, headers=bearer(token))
    expect(long_key, 404, "Job")
    assert len(long_key.json()["message"]) < 100  # (the message quoted the 5,000 characters)
    expect(await client.get("/enterprise/getEnterpriseInfoForTenant", params={"tenantId": "a\x00b"}, headers=bearer(token)),
           400, "tenantId")
    for text in ("1_0", "1.0", f" {login.reseller_id}", "\u0663"):
        expect(await client.get("/pbx/getPBXTypesByResellerId", params={"resellerId": text}, headers=bearer(token)),
               400, "resellerId", "whole number")
    expect(await client.delete("/pbx/deletePBXUser/1_0", headers=bearer(token)), 400, "userId", "whole number")
    assert (await client.get("/pbx/getPBXTypesByResellerId", params={"resellerId": str(login.reseller_id)},
                             headers=bearer(token))).status_code == 200


async def test_template_texts_hold_no_control_characters(client, organisation) -> None:
    """The Unified App's texts go into its Teams app manifest: a NUL or a line break (and a URL's space) was stored
    and published as it came. Refused naming the field; the saved template stays as it was."""
    from tests.e2e.test_calling import template_body

    login = organisation.resellers[0]
    token = await token_for(client, login)
    pbx, sbc = await reseller_catalogue(client, token, login.reseller_id)
    enterprise_id = (await client.post("/reseller/newEnterprise", headers=bearer(token), json=enterprise_body(
        login.reseller_id, "Acme", pbx=pbx[:1], sbc=sbc[:1]))).json()
    body = {k: v for k, v in template_body(enterprise_id, login.reseller_id, "-").items() if k != "tenantID"}
    saved = await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(token), json=body)
    assert saved.status_code == 200 and saved.json()["appVersion"] == "1.0.1", saved.text
    for field, value in (("teamName", "Pro\x00vider"), ("portalTabName", "PBX\nX-Injected: 1"),
                         ("portalURL", "https://portal.provider.example/\x00"), ("ssoURL", "https://sso.provider.example/a b"),
                         ("portalURL", "https://portal.provider.example/\t")):
        refused = await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(token),
                                    json=body | {field: value})
        expect(refused, 400, field)
    again = await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(token), json=body)
    assert again.status_code == 200 and again.json()["changed"] is False and again.json()["appVersion"] == "1.0.1"
