"""Bad input to the calling-services endpoints gets a clear 4xx in the Spring envelope, and nothing is written."""

import base64

from tests.e2e.test_calling import location_body, template_body, user_body
from tests.support.calling import b64png, graph_get, licensed_users, png
from tests.support.ctt import SPRING, bearer, token_for
from tests.support.onboarding import Onboarding


def expect(response, status: int, named: str) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == SPRING and named in response.json()["message"], response.text


async def test_pbx_location_rules(registered, organisation) -> None:
    client, token, enterprise_id = registered.client, registered.token, registered.enterprise_id
    cases = [
        (location_body(enterprise_id) | {"pbxType": "Nortel"}, 400, "pbxType"),
        (location_body(enterprise_id) | {"canonicalPbxSIPDomain": "not a host"}, 400, "canonicalPbxSIPDomain"),
        (location_body(enterprise_id) | {"proxyDomainPort": 70000}, 400, "proxyDomainPort"),
        (location_body(enterprise_id) | {"proxyDomainPort": "5060"}, 400, "proxyDomainPort"),
        (location_body(enterprise_id) | {"topologyHiding": "true"}, 400, "topologyHiding"),
        (location_body(enterprise_id) | {"presencePackageType": "smoke-signals"}, 400, "presencePackageType"),
        ({k: v for k, v in location_body(enterprise_id).items() if k != "pbxLocation"}, 400, "pbxLocation"),
        (location_body(enterprise_id) | {"enterpriseId": 987654}, 404, "987654"),
        # What reaches the SBC's tables: no newline after a host name (it was stored), nothing longer than they
        # hold, no expiry past 32 bits, no control characters in the call policy.
        (location_body(enterprise_id) | {"canonicalPbxSIPDomain": "pbx.example.com\n"}, 400, "canonicalPbxSIPDomain"),
        (location_body(enterprise_id) | {"canonicalPbxSIPDomain": "a" * 60 + ".example.com"}, 400, "canonicalPbxSIPDomain"),
        (location_body(enterprise_id) | {"regExpiresValue": 2**63 - 1}, 400, "regExpiresValue"),
        (location_body(enterprise_id) | {"regExpiresValue": 1}, 400, "regExpiresValue"),  # 20 REGISTERs in 10 s
        (location_body(enterprise_id) | {"callPolicy": {"callPolicyCNAM": "Evil\r\nX-Injected: 1"}}, 400, "callPolicy"),
    ]
    for body, status, named in cases:
        expect(await client.post("/pbx/configurePBX", headers=bearer(token), json=body), status, named)
    details = await client.post("/pbx/getBasicPBXLocationDetailsForEnterprise", headers=bearer(token),
                                content=f'"{registered.tenant["tenantId"]}"')
    assert details.status_code == 200 and details.json() == []
    created = (await client.post("/pbx/configurePBX", headers=bearer(token), json=location_body(enterprise_id))).json()
    same = await client.post("/pbx/configurePBX", headers=bearer(token), json=location_body(enterprise_id) | {"regExpiresValue": 60})
    assert same.json()["id"] == created["id"] and same.json()["regExpiresValue"] == 60
    other = await token_for(client, organisation.resellers[1])
    expect(await client.post("/pbx/configurePBX", headers=bearer(other), json=location_body(enterprise_id)), 404, str(enterprise_id))
    assert (await client.delete(f"/pbx/deletePBXLocation/{created['id']}", headers=bearer(other))).status_code == 404
    assert (await client.delete(f"/pbx/deletePBXLocation/{created['id']}", headers=bearer(token))).status_code == 204
    gone = await client.post("/pbx/getBasicPBXLocationDetailsForEnterprise", headers=bearer(token), content=registered.tenant["tenantId"])
    assert gone.json() == []
    expect(await client.post("/pbx/getBasicPBXLocationDetailsForEnterprise", headers=bearer(token), content=""), 400, "tenantId")


async def test_configure_user_rules(registered, live) -> None:
    client, token, tenant = registered.client, registered.token, registered.tenant
    location = (await client.post("/pbx/configurePBX", headers=bearer(token), json=location_body(registered.enterprise_id))).json()
    ga_token = registered.msal_object["authenticationResult"]["accessToken"]
    users = licensed_users(live, ga_token, tenant["globalAdmin"]["username"])

    def body(**changes):
        return user_body(registered, upn=users[0]["userPrincipalName"], number="14139301761", route=1,
                         location=location["pbxLocation"]) | changes

    no_route = await client.post("/enterprise/configureUser", headers=bearer(token), json=body(directRouteId=12345))
    expect(no_route, 404, "directRouteId")
    # A location named by digits past a 32-bit id is looked up by its name alone: PostgreSQL refused the comparison
    # with the id column, and the caller read "A number in the request is out of range" (the location unusable).
    numeric = await client.post("/pbx/configurePBX", headers=bearer(token),
                                json=location_body(registered.enterprise_id, "3000000000"))
    assert numeric.status_code == 200, numeric.text
    expect(await client.post("/enterprise/configureUser", headers=bearer(token),
                             json=body(pbxLocation="3000000000", directRouteId=12345)), 404, "directRouteId")
    expect(await client.post("/enterprise/configureUser", headers=bearer(token), json=body(pbxLocation="4000000000")),
           404, "pbxLocation")
    cases = [
        (body(directRouteId="806"), 400, "directRouteId"),
        (body(directRouteId=-1), 400, "directRouteId"),
        ({k: v for k, v in body().items() if k != "password"}, 400, "password"),
        ({k: v for k, v in body().items() if k != "pbxUserId"}, 400, "pbxUserId"),
        ({k: v for k, v in body().items() if k != "phoneNumber"}, 400, "phoneNumber"),
        ({k: v for k, v in body().items() if k != "teamsUserId"}, 400, "teamsUserId"),
        (body(rePassword="other"), 400, "rePassword"),
        (body(phoneNumber="1555"), 400, "phoneNumber"),
        (body(phoneNumber=14139301761), 400, "phoneNumber"),
        (body(teamsUserId="nobody@" + tenant["domain"]), 404, "teamsUserId"),
        (body(pbxLocation="Atlantis"), 404, "pbxLocation"),
        (body(tenantID="00000000-0000-0000-0000-000000000000"), 404, "00000000"),
        ({k: v for k, v in body().items() if k != "tenantID"}, 400, "tenantID"),
        # What the SBC registers with: CR/LF would inject SIP headers; longer than its tables hold is refused.
        (body(pbxUserId="100\r\nX-Injected: 1"), 400, "pbxUserId"),
        (body(pbxAuthUserId="auth\u0000"), 400, "pbxAuthUserId"),
        (body(pbxUserId="1" * 65), 400, "pbxUserId"),
        # Nor characters that end the SIP URI or the digest's quoted string (they reached the PBX as they came).
        (body(pbxUserId="105>;lr;x=<sip:attacker.example>"), 400, "pbxUserId"),
        (body(pbxAuthUserId='105", realm="evil'), 400, "pbxAuthUserId"),
        (body(pbxUserId="10 5"), 400, "pbxUserId"),
        (body(password="p\r\nq", rePassword="p\r\nq"), 400, "password"),
        (body(userTag="tag\r\n"), 400, "userTag"),
        # Messages in words: a union's members read as one sentence (was "pbxLocation.str: ...; pbxLocation.constrained-int:
        # ..."), and a refused user principal name is named by its field and quoted without Python's escapes.
        (body(pbxLocation=1.5), 400, "pbxLocation: Input should be a valid string or a valid integer"),
        (body(teamsUserId="\u00e9\u202e@contoso.example"), 400,
         "teamsUserId: '\u00e9<U+202E>@contoso.example' is not a valid user principal name"),
    ]
    for payload, status, named in cases:
        expect(await client.post("/enterprise/configureUser", headers=bearer(token), json=payload), status, named)
    # The enterprise has no CALLAPP service: configureValetUser says so.
    expect(await client.post("/valet/configureValetUser", headers=bearer(token), json=body(directRouteId=-1)), 400, "CALLAPP")
    # An enterprise token needs a real MSAL object.
    creds = registered.credentials
    ent = (await client.post("/oauth/token", auth=(creds["clientID"], creds["clientSecret"]), data={
        "username": creds["entAdminUsername"], "password": creds["entAdminSecret"], "grant_type": "password"})).json()["access_token"]
    forged = await client.post("/enterprise/configureUser", headers=bearer(ent), json=body())
    assert forged.status_code == 401 and "not a Microsoft token" in forged.json()["error_description"]
    assert graph_get(live, ga_token, "/organization").status_code == 200


async def test_configure_user_takes_a_licence_of_the_fusion_subscription(registered, live) -> None:
    """An enterprise backing a Fusion subscription: a PBX user with a direct route is voice-enabled (its number on
    its Teams record), so it takes an msTeamsUsers licence like updateUserDetails' user does. configureUser looked
    only at userLimit against the PBX users, and gave a number past the quota (inUse 3 of 2)."""
    from sqlalchemy import func, select

    from teamsvoice.domain.calling.models import DirectRoute, PbxUser
    from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant
    from teamsvoice.domain.orgs.models import Enterprise
    from teamsvoice.domain.provisioning.models import TeamsVoiceUser
    from tests.e2e.test_calling import fresh_numbers
    from tests.support.database import in_session

    client, token, tenant, enterprise_id = registered.client, registered.token, registered.tenant, registered.enterprise_id
    n1, n2, n3 = fresh_numbers()

    async def back_a_subscription(session) -> int:  # type: ignore[no-untyped-def]
        enterprise = await session.get(Enterprise, enterprise_id)
        enterprise.user_limit = 2  # kept equal to the subscription's msTeamsUsers
        fusion_tenant = FusionTenant(name="Quota", owner_reseller_id=enterprise.reseller_id)
        session.add(fusion_tenant)
        await session.flush()
        session.add(FusionSubscription(fusion_tenant_id=fusion_tenant.id, name="Quota", ms_teams_users=2,
                                       enterprise_id=enterprise_id))
        route = DirectRoute(enterprise_id=enterprise_id, sbc_gateway_id=enterprise.sbc_gateway_ids[0],
                            tenant_id=tenant["tenantId"], gateway_fqdn=f"sbc.{tenant['domain']}", sip_port=5061,
                            pstn_usage="Quota", voice_route="Quota", number_pattern=".*", voice_routing_policy="Quota")
        # A user voice-enabled through Fusion (no PBX user): it holds one of the two licences.
        session.add_all([route, TeamsVoiceUser(enterprise_id=enterprise_id, user_principal_name=f"fusion@{tenant['domain']}",
                                               phone_number=f"+{n3}")])
        await session.flush()
        return route.id

    route_id = await in_session(live, back_a_subscription)
    location = (await client.post("/pbx/configurePBX", headers=bearer(token), json=location_body(enterprise_id))).json()
    ga_token = registered.msal_object["authenticationResult"]["accessToken"]
    users = licensed_users(live, ga_token, tenant["globalAdmin"]["username"])

    def body(user: int, number: str) -> dict:
        return user_body(registered, upn=users[user]["userPrincipalName"], number=number, route=route_id,
                         location=location["pbxLocation"], pbx_id=str(200 + user))

    first = await client.post("/enterprise/configureUser", headers=bearer(token), json=body(0, n1))
    assert first.status_code == 200, first.text  # the second licence
    # One PBX user of a userLimit of 2, but both licences in use: refused naming the licence, nothing recorded.
    over = await client.post("/enterprise/configureUser", headers=bearer(token), json=body(1, n2))
    expect(over, 400, "msTeamsUsers licence exceeded")

    async def recorded(session) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        return (await session.scalar(select(func.count(PbxUser.id))),
                await session.scalar(select(func.count(TeamsVoiceUser.id)).where(TeamsVoiceUser.phone_number.is_not(None))))

    assert await in_session(live, recorded) == (1, 2)
    # Another number for the user who has one takes no new licence.
    moved = await client.post("/enterprise/configureUser", headers=bearer(token), json=body(0, n2))
    assert moved.status_code == 200 and moved.json()["phoneNumber"] == f"+{n2}", moved.text


async def test_phone_numbers_are_unique_across_enterprises(client, live, organisation, receiver) -> None:
    onboardings = []
    for tenant in live.emulator.tenants[:2]:
        receiver.reset()
        onboarding = Onboarding(client, live, organisation, receiver, tenant)
        await onboarding.register()
        onboardings.append(onboarding)
    first, second = onboardings
    valet_enabled = await client.post("/reseller/editEnterprise", headers=bearer(second.token),
                                      json={"enterpriseId": second.enterprise_id, "services": ["PBX", "CALLAPP"]})
    assert valet_enabled.status_code == 200
    await second.consent("GET_CALL_APP_CONSENT")
    results = []
    for onboarding, upn_index in ((first, 0), (second, 0)):
        location = (await client.post("/pbx/configurePBX", headers=bearer(onboarding.token), json=location_body(onboarding.enterprise_id))).json()
        ga_token = onboarding.msal_object["authenticationResult"]["accessToken"]
        user = licensed_users(live, ga_token, onboarding.tenant["globalAdmin"]["username"])[upn_index]
        results.append(await client.post("/valet/configureValetUser" if onboarding is second else "/enterprise/configureUser",
                                         headers=bearer(onboarding.token), json=user_body(
            onboarding, upn=user["userPrincipalName"], number="+1 413 930 1771", route=-1, location=location["pbxLocation"])))
    # The first enterprise has no direct route: its PBX user is refused; the CallApp user takes the number.
    expect(results[0], 400, "directRouteId")
    assert results[1].status_code == 200, results[1].text
    location = (await client.post("/pbx/getBasicPBXLocationDetailsForEnterprise", headers=bearer(first.token),
                                  content=first.tenant["tenantId"])).json()[0]
    ga_token = first.msal_object["authenticationResult"]["accessToken"]
    user = licensed_users(live, ga_token, first.tenant["globalAdmin"]["username"])[0]
    edited = await client.post("/reseller/editEnterprise", headers=bearer(first.token),
                               json={"enterpriseId": first.enterprise_id, "services": ["PBX", "CALLAPP"]})
    assert edited.status_code == 200
    await first.consent("GET_CALL_APP_CONSENT")
    clash = await client.post("/valet/configureValetUser", headers=bearer(first.token), json=user_body(
        first, upn=user["userPrincipalName"], number="14139301771", route=-1, location=str(location["id"])))
    expect(clash, 404, "+14139301771")  # held by another enterprise: not a number this one may use


async def test_template_images_are_checked(client, live, organisation, receiver) -> None:
    registered = Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])
    await registered.create()  # a template needs no Microsoft tenant yet
    token = registered.token
    good = template_body(registered.enterprise_id, registered.login.reseller_id, "") | {"tenantID": None}
    huge = base64.b64encode(png(192, 192) + b"\x00" * (1024 * 1024)).decode()
    cases = [
        (good | {"brandingImageInBytes": b64png(100, 100)}, "brandingImageInBytes: the image is 100x100"),
        (good | {"outlineImageInBytes": b64png(192, 192)}, "outlineImageInBytes: the image is 192x192"),
        (good | {"brandingImageInBytes": "not base64!"}, "brandingImageInBytes: not valid base64"),
        (good | {"brandingImageInBytes": base64.b64encode(b"GIF89a" + b"\x00" * 40).decode()}, "brandingImageInBytes: not a PNG"),
        (good | {"brandingImageInBytes": huge}, "the limit is 1048576 bytes"),
        (good | {"portalURL": "http://portal.example"}, "portalURL"),
        (good | {"type": "PBX"}, "type"),
        (good | {"name": ""}, "name"),
        (good | {"resellerId": registered.login.reseller_id + 1}, "resellerId"),
        (good | {"tenantID": "00000000-0000-0000-0000-000000000000"}, "tenantId"),
        (good | {"turnOffCard": "no"}, "turnOffCard"),
        ({k: v for k, v in good.items() if k != "enterpriseId"}, "enterpriseId"),
    ]
    for body, named in cases:
        expect(await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(token), json=body), 400, named)
    first = await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(token), json=good)
    again = await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(token), json=good)
    assert first.status_code == again.status_code == 200
    assert again.json()["appVersion"] == first.json()["appVersion"] == "1.0.1" and again.json()["changed"] is False


async def test_sync_unified_app_needs_a_template_and_sms_needs_scope(registered, organisation) -> None:
    client, token = registered.client, registered.token
    creds = registered.credentials
    ent = (await client.post("/oauth/token", auth=(creds["clientID"], creds["clientSecret"]), data={
        "username": creds["entAdminUsername"], "password": creds["entAdminSecret"], "grant_type": "password"})).json()["access_token"]
    expect(await client.post("/provisioning/syncUnifiedApp", headers=bearer(ent), json={"authenticationResult": registered.msal_object}),
           400, "saveOrUpdateTeamsApplicationTemplate")
    sms = await client.post(f"/sms/getEnterpriseSMSConfig/{registered.enterprise_id}", headers=bearer(token))
    assert sms.status_code == 200 and sms.json()["smsEnabled"] is False and sms.json()["smsNumbers"] == []
    other = await token_for(client, organisation.resellers[1])
    assert (await client.post(f"/sms/getEnterpriseSMSConfig/{registered.enterprise_id}", headers=bearer(other))).status_code == 404
    assert (await client.get("/provisioning/getSyncJobStatus/not-a-job", headers=bearer(token))).status_code == 404


async def test_template_icon_file_names_are_plain_png_names(client, live, organisation, receiver) -> None:
    """The icons' file names are entries of the Teams app package (a zip beside manifest.json): a name that is a
    path, manifest.json itself, the other icon's name or unprintable broke the package; each is a 400 naming it."""
    registered = Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])
    await registered.create()
    good = template_body(registered.enterprise_id, registered.login.reseller_id, "") | {"tenantID": None}
    cases = [
        ({"bIconFileName": "manifest.json"}, "bIconFileName"),
        ({"oIconFileName": "../../etc/outline.png"}, "oIconFileName"),
        ({"oIconFileName": "icons\\outline.png"}, "oIconFileName"),
        ({"oIconFileName": "..png"}, "oIconFileName"),
        ({"bIconFileName": "same.png", "oIconFileName": "same.png"}, "oIconFileName: must differ from bIconFileName"),
        ({"bIconFileName": "Same.PNG", "oIconFileName": "same.png"}, "oIconFileName: must differ"),
        ({"bIconFileName": "outline.png", "oIconFileName": None}, "oIconFileName: must differ"),  # the default name
        ({"bIconFileName": "color\u0000.png"}, "bIconFileName"),
        ({"bIconFileName": "a" * 5000 + ".png"}, "bIconFileName: at most 100 characters"),
        ({"oIconFileName": "outline\u202egnp.png"}, "oIconFileName"),
        ({"oIconFileName": "outline.gif"}, "oIconFileName: must be a .png file name"),
    ]
    for change, named in cases:
        expect(await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(registered.token),
                                 json=good | change), 400, named)
    defaults = await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(registered.token),
                                 json=good | {"bIconFileName": None, "oIconFileName": ""})
    assert defaults.status_code == 200, defaults.text


async def test_template_texts_fit_the_teams_app_manifest(client, live, organisation, receiver) -> None:
    """The template's texts go into the Teams app manifest (v1.16), whose maximum lengths Teams enforces when the
    package is published: a teamName of 40 characters (Teams' developer name: 32) was saved, and only the sync
    failed. Each is a 400 at save naming the field and its limit; the longest accepted values are saved."""
    registered = Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])
    await registered.create()
    good = template_body(registered.enterprise_id, registered.login.reseller_id, "") | {"tenantID": None}
    portal, sso = "https://portal.provider.example/", "https://sso.provider.example/"
    cases = [
        ({"teamName": "T" * 33}, "teamName: at most 32 characters (Teams' developer name)"),
        ({"teamName": "T" * 40}, "teamName: at most 32 characters"),
        ({"name": "N" * 31}, "name: is required, at most 30 characters"),
        ({"portalTabName": "P" * 129}, "portalTabName: at most 128 characters"),
        ({"portalURL": portal + "p" * (2049 - len(portal))}, "portalURL: at most 2048 characters"),
        ({"ssoURL": sso + "s" * (2049 - len(sso))}, "ssoURL: at most 2048 characters"),
    ]
    for change, named in cases:
        expect(await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(registered.token),
                                 json=good | change), 400, named)
    longest = {"name": "N" * 30, "teamName": "T" * 32, "portalTabName": "P" * 128,
               "portalURL": portal + "p" * (2048 - len(portal)), "ssoURL": sso + "s" * (2048 - len(sso))}
    saved = await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(registered.token),
                              json=good | longest)
    assert saved.status_code == 200, saved.text
    assert {k: saved.json()[k] for k in longest} == longest and saved.json()["appVersion"] == "1.0.1"
