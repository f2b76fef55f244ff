"""ConnecttoTeams: a Microsoft tenant id is a GUID, which Microsoft reads in any case: one sent in capitals names the
same tenant as the lower-case form Microsoft writes (every request that names a tenant answered 404, or 400 at
completeEnterpriseRegistration). configurePBX takes a PBX type by its name or by its id, the id as a number too, and
its 400 quotes a refused value shortened."""

import uuid

from tests.e2e.test_calling import location_body, user_body
from tests.e2e.test_onboarding import voice_config
from tests.support.calling import graph_get, licensed_users
from tests.support.ctt import SPRING, bearer, enterprise_body, reseller_catalogue, token_for
from tests.support.emulated import emulated_tenant
from tests.support.onboarding import Onboarding



def expect(response, status: int, *named: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    if status >= 400:
        assert set(body) == SPRING and all(name in body["message"] for name in named), response.text
    return body


async def _consented(client, live, organisation, receiver) -> tuple[Onboarding, str]:  # type: ignore[no-untyped-def]
    """An enterprise whose Global Administrator gave the REGISTRATION consent in a tenant of the test's own (its
    registration not yet completed), and that tenant's id in capitals."""
    receiver.reset()
    tenant = await emulated_tenant(live, f"caps-{uuid.uuid4().hex[:8]}.example", 3)
    onboarding = Onboarding(client, live, organisation, receiver, tenant)
    await onboarding.create()
    payload = await onboarding.consent("REGISTRATION")
    onboarding.msal_object = payload["msalAuthenticationResult"]
    upper = tenant["tenantId"].upper()
    assert upper != tenant["tenantId"]  # (Microsoft writes its tenant ids in lower case)
    return onboarding, upper


async def test_a_tenant_id_in_capitals_names_the_same_tenant(client, live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    onboarding, upper = await _consented(client, live, organisation, receiver)
    token, tenant_id, enterprise_id = onboarding.token, onboarding.tenant["tenantId"], onboarding.enterprise_id
    completed = expect(await client.post("/provisioning/completeEnterpriseRegistration", headers=bearer(token), json={
        "enterpriseId": enterprise_id, "tenantId": upper, "givenName": "Ada", "familyName": "Admin"}), 200)
    assert completed["registered"] is True and completed["tenantId"] == tenant_id  # as Microsoft writes it

    for answer in (await client.get("/enterprise/getEnterpriseInfoForTenant", params={"tenantId": upper}, headers=bearer(token)),
                   await client.post("/enterprise/getEnterpriseInfoForTenant", headers=bearer(token), content=upper),
                   await client.post("/enterprise/getEnterpriseInfoForTenant", headers=bearer(token), json=upper)):
        info = expect(answer, 200)
        assert (info["enterpriseId"], info["tenantId"]) == (enterprise_id, tenant_id)
    credentials = expect(await client.post("/enterprise/regenerateAPICredentials", headers=bearer(token), content=upper), 200)
    signed_in = await client.post("/oauth/token", auth=(credentials["clientID"], credentials["clientSecret"]), data={
        "username": credentials["entAdminUsername"], "password": credentials["entAdminSecret"], "grant_type": "password"})
    assert signed_in.status_code == 200, signed_in.text

    # configureUser's tenantID, with a reseller token (it names the enterprise) and with the enterprise's own token
    # and MSAL object (it must be the enterprise's tenant): the tenant is taken, and Microsoft is asked for the user.
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@{onboarding.tenant['domain']}"
    user = user_body(onboarding, upn=nobody, number="14139301761", route=1, location="HQ") | {"tenantID": upper}
    for headers, body in ((bearer(token), user),
                          (bearer(signed_in.json()["access_token"]), user | {"authenticationResult": onboarding.msal_object})):
        expect(await client.post("/enterprise/configureUser", headers=headers, json=body), 404, "teamsUserId", nobody)

    # The PBX routes: named by the tenant alone, or by the enterprise and its tenant.
    by_tenant = {k: v for k, v in location_body(enterprise_id).items() if k != "enterpriseId"} | {"tenantId": upper}
    location = expect(await client.post("/pbx/configurePBX", headers=bearer(token), json=by_tenant), 200)
    both = location_body(enterprise_id) | {"tenantId": upper, "regExpiresValue": 60}
    assert expect(await client.post("/pbx/configurePBX", headers=bearer(token), json=both), 200)["id"] == location["id"]
    listed = expect(await client.post("/pbx/getBasicPBXLocationDetailsForEnterprise", headers=bearer(token),
                                      content=f'"{upper}"'), 200)
    assert [(loc["id"], loc["regExpiresValue"]) for loc in listed] == [(location["id"], 60)]
    expect(await client.post("/pbx/getDirectRoutesForEnterprise", headers=bearer(token), content=upper), 200)

    # Another tenant's id, in any case, is still no tenant of the enterprise's.
    other = str(uuid.uuid4()).upper()
    expect(await client.get("/enterprise/getEnterpriseInfoForTenant", params={"tenantId": other}, headers=bearer(token)),
           404, other.lower())
    expect(await client.post("/pbx/configurePBX", headers=bearer(token), json=both | {"tenantId": other}), 400, "tenantId")


async def test_a_consented_reseller_names_the_tenant_in_capitals(client, live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    """The consented-reseller object {"tenantId", "resellerId"} of spec 001, its tenant id in capitals: the user is
    provisioned in the tenant as with the lower-case form."""
    onboarding, upper = await _consented(client, live, organisation, receiver)
    token, tenant = onboarding.token, onboarding.tenant
    expect(await client.post("/provisioning/completeEnterpriseRegistration", headers=bearer(token), json={
        "enterpriseId": onboarding.enterprise_id, "tenantId": tenant["tenantId"]}), 200)
    await onboarding.consent("GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT")
    ga_token = onboarding.msal_object["authenticationResult"]["accessToken"]
    upn = licensed_users(live, ga_token, tenant["globalAdmin"]["username"])[0]["userPrincipalName"]
    assert graph_get(live, ga_token, f"/users/{upn}").status_code == 200
    number = f"+1413930{uuid.uuid4().int % 10000:04d}"
    consent_object = {"tenantId": upper, "resellerId": onboarding.login.reseller_id}
    updated = expect(await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                                       json=consent_object | {"userPrincipalName": upn, "phoneNumber": number}), 200)
    assert updated["status"] == "UPDATED", updated
    config = voice_config(live, tenant["tenantId"], upn)
    assert [n["telephoneNumber"] for n in config["telephoneNumbers"]] in ([number], [number.lstrip("+")])
    expect(await client.post(f"/provisioning/disableCallingForUser/{upn}", headers=bearer(token),
                             json=consent_object | {"resellerId": onboarding.login.reseller_id + 1000}), 404)


async def test_configure_pbx_takes_a_pbx_type_by_name_or_id(client, organisation) -> None:  # type: ignore[no-untyped-def]
    """Spec 003 answers a location's pbxType as the type's name; getPBXTypesByResellerId gives each type's id (a
    number, as newEnterprise's pbxId takes it): configurePBX takes either, the id as a number or as text."""
    login = organisation.resellers[0]
    token = await token_for(client, login)
    pbx, sbc = await reseller_catalogue(client, token, login.reseller_id)
    types = (await client.get("/pbx/getPBXTypesByResellerId", params={"resellerId": login.reseller_id},
                              headers=bearer(token))).json()
    chosen = next(t for t in types if t["id"] == pbx[0])
    enterprise_id = expect(await client.post("/reseller/newEnterprise", headers=bearer(token), json=enterprise_body(
        login.reseller_id, "Acme", pbx=[chosen["id"]], sbc=sbc[:1])), 200)
    body = location_body(enterprise_id)

    for reference in (chosen["id"], str(chosen["id"]), chosen["pbxName"], chosen["pbxName"].upper()):
        location = expect(await client.post("/pbx/configurePBX", headers=bearer(token), json=body | {"pbxType": reference}), 200)
        assert location["pbxType"] == chosen["pbxName"], (reference, location)

    unknown = max(t["id"] for t in types) + 1000
    expect(await client.post("/pbx/configurePBX", headers=bearer(token), json=body | {"pbxType": unknown}), 400,
           "pbxType", str(unknown))
    for wrong in (True, 1.5, None, [chosen["id"]]):
        expect(await client.post("/pbx/configurePBX", headers=bearer(token), json=body | {"pbxType": wrong}), 400, "pbxType")
    # A refused value is quoted shortened, its control characters by code point (the 400 quoted 5,000 characters).
    for hostile in ("Z" * 5000, "Broad\x00Works" + "x" * 200):
        refused = expect(await client.post("/pbx/configurePBX", headers=bearer(token), json=body | {"pbxType": hostile}),
                         400, "pbxType")
        assert len(refused["message"]) < 300 and "\x00" not in refused["message"], refused
