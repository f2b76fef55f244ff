"""Spec 003 Parts I-III (PBX connector and users) and spec 002 Parts I-II (CallApp), end to end over real
HTTP against the Microsoft 365 emulator: direct routing, PBX locations and users, Sync Teams Users, the
Unified App template and its sync, the CallApp service account, and SMS numbers."""

import random

import pytest
from sqlalchemy import create_engine, text

from teamsvoice.core.db import sync_url
from tests.support.calling import admin_view, b64png, graph_get, licensed_users, wait_for_job
from tests.support.ctt import bearer, reseller_catalogue, token_for
from tests.support.onboarding import Onboarding

SPEC_LOCATION_KEYS = {
    "id", "canonicalPbxSIPDomain", "proxyDomainPort", "pbxLocation", "apiAccessEnabled", "apiIntegrationEnabled",
    "topologyHiding", "pbxType", "pbxLabel", "presencePackageType", "callPolicy", "oldStyleHold",
    "metaSwitchSubscriptionCompatibility", "regExpiresValue", "sipWaitForAlegAck", "enforceCodecsOnInbound",
    "rejectCalling", "acceptsEncodedFeatureCode", "convertHistoryInfoToDiversion", "escapeRequestUri",
    "enableMWIEvents", "links",
}


@pytest.fixture
def onboarding(client, live, organisation, receiver):
    receiver.reset()
    return Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])


async def enterprise_token(onboarding: Onboarding) -> str:
    creds = onboarding.credentials
    response = await onboarding.client.post("/oauth/token", auth=(creds["clientID"], creds["clientSecret"]), data={
        "username": creds["entAdminUsername"], "password": creds["entAdminSecret"], "grant_type": "password"})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def user_body(onboarding: Onboarding, *, upn: str, number: str, route: int, location: str, pbx_id: str = "104") -> dict:
    """Spec 003's sample body, with this tenant's values."""
    return {
        "pbxCallPolicyInfo": {"callPolicyCNAM": "TRANSPARENT", "callPolicyName": "Global", "forwardedCallsCallerId": "USER_CALLER_ID"},
        "authenticationResult": {"authenticationResult": {
            "accessToken": "eyJ0eXAiOiJKV1QiLCJub25jZSI6IjdKbXh..............", "accessTokenType": "login.microsoftonline.com",
            "expiresOn": 1743285790991831, "idToken": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1..............",
            "multipleResourceRefreshToken": False,
            "userInfo": {"displayableId": onboarding.tenant["globalAdmin"]["username"], "identityProvider": "user",
                         "tenantId": onboarding.tenant["tenantId"]}}},
        "userType": "Service", "directRouteId": route, "useTeamsVoicemail": False,
        "password": "S1p-secret-104", "rePassword": "S1p-secret-104", "pbxAuthUserId": pbx_id, "pbxLocation": location,
        "pbxUserId": pbx_id, "phoneNumber": number, "portalLoginName": "", "portalPassword": "", "teamsUserId": upn,
        "useEnterpriseDialPlan": True, "tenantID": onboarding.tenant["tenantId"], "loginID": "ent-admin@example.com",
        "sipAutoProvisioningEnabled": False, "useAudioConferenceVRP": False, "userTag": "",
    }


def location_body(enterprise_id: int, name: str = "Brussels HQ") -> dict:
    return {"enterpriseId": enterprise_id, "pbxLocation": name, "pbxType": "BroadWorks",
            "canonicalPbxSIPDomain": "pbx.contoso-voice.example", "proxyDomainPort": 5060, "presencePackageType": "call-info",
            "callPolicy": {"callPolicyName": "Global", "callPolicyCNAM": "TRANSPARENT", "forwardedCallsCallerId": "USER_CALLER_ID"},
            "topologyHiding": True, "regExpiresValue": 3600}


def template_body(enterprise_id: int, reseller_id: int, tenant_id: str, *, name: str = "Contoso Voice") -> dict:
    return {"enterpriseId": enterprise_id, "resellerId": reseller_id, "name": name, "bIconFileName": "branding_icon.png",
            "oIconFileName": "outline_icon.png", "portalURL": "https://portal.provider.example", "ssoURL": "https://sso.provider.example",
            "type": "UNIFIED", "portalTabName": "PBX", "brandingImageInBytes": b64png(192, 192),
            "outlineImageInBytes": b64png(32, 32, (255, 255, 255)), "turnOffCard": False, "turnOffVMCard": True,
            "showCard": True, "showVMCard": False, "tenantID": tenant_id, "teamName": "Provider"}


def teams_refusal(number: str) -> str:
    """Teams' words for a number another user holds (answered 409 by teamsvoice)."""
    return f"assignNumber failed: Telephone Number '{number}' has already been assigned to another user"


async def stored_voice(live, enterprise_id: int, upn: str) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    """The user's voice record (number, policy, calling; its last sync) and its PBX user's number, as stored."""
    from teamsvoice.domain.calling import repository as calling_repository
    from teamsvoice.domain.provisioning import voice_users
    from tests.support.database import in_session

    async def read(session):  # type: ignore[no-untyped-def]
        record = await voice_users.find(session, enterprise_id, upn)
        pbx_user = await calling_repository.pbx_user_by_upn(session, enterprise_id, upn.lower())
        return ((record.phone_number, record.voice_routing_policy, record.calling_enabled),
                (record.last_sync_status, record.last_sync_detail), pbx_user.phone_number)
    return await in_session(live, read)


def fresh_numbers() -> tuple[str, str, str]:
    """The emulated tenant outlives each test's database and serves both backends: fresh numbers per call."""
    base = 14139300000 + random.randrange(0, 9000)
    return str(base), str(base + 1), str(base + 2)


async def test_pbx_connector_and_callapp_end_to_end(onboarding, live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    n1, n2, n3 = fresh_numbers()
    client = onboarding.client
    await onboarding.register()
    token, tenant = onboarding.token, onboarding.tenant
    tenant_id, enterprise_id = tenant["tenantId"], onboarding.enterprise_id
    ent_token = await enterprise_token(onboarding)
    msal = {"authenticationResult": onboarding.msal_object}
    ga_token = onboarding.msal_object["authenticationResult"]["accessToken"]
    sbc_id = (await client.get(f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{onboarding.login.reseller_id}",
                               headers=bearer(token))).json()[0]["sbcGatewayId"]

    # Part II.1: verify. Without the calling consents the report says what to do.
    verify = await client.post("/provisioning/verifyTenantForDirectRouting", headers=bearer(ent_token), json=msal | {"sbcGatewayId": sbc_id})
    assert verify.status_code == 200, verify.text
    report = verify.json()
    checks = {c["check"]: c for c in report["checks"]}
    assert report["ready"] is False and checks["consents"]["passed"] is False
    assert "GET_USER_SYNC_CONSENT" in checks["consents"]["fix"] and "GET_PRESENCE_CONSENT" in checks["consents"]["fix"]
    assert checks["sbcDomain"]["passed"] and checks["voiceLicences"]["passed"] and checks["enterpriseServices"]["passed"]
    assert report["pstnGatewayFqdn"] == f"sbc-us-east.{tenant['domain']}"
    refused = await client.post("/provisioning/provisionDirectRouting", headers=bearer(ent_token), json=msal | {"sbcGatewayId": sbc_id})
    assert refused.status_code == 400 and "consents" in refused.json()["message"]
    await onboarding.consent("GET_USER_SYNC_CONSENT")
    await onboarding.consent("GET_PRESENCE_CONSENT")
    report = (await client.post("/provisioning/verifyTenantForDirectRouting", headers=bearer(ent_token),
                                json=msal | {"sbcGatewayId": sbc_id})).json()
    assert report["ready"] is True, report

    # Part II.2: direct routing, idempotent.
    provisioned = await client.post("/provisioning/provisionDirectRouting", headers=bearer(ent_token), json=msal | {"sbcGatewayId": sbc_id})
    assert provisioned.status_code == 200, provisioned.text
    route = provisioned.json()
    again = await client.post("/provisioning/provisionDirectRouting", headers=bearer(ent_token), json=msal | {"sbcGatewayId": sbc_id})
    assert again.status_code == 200 and again.json()["changes"] == [] and again.json()["directRouteId"] == route["directRouteId"]
    voice = admin_view(live, tenant_id, "voice")
    gateway = next(g for g in voice["gateways"] if g["Fqdn"] == route["pstnGatewayFqdn"])
    assert gateway["Enabled"] is True and gateway["SipSignalingPort"] == 5061
    assert route["pstnUsage"] in voice["usages"]
    vroute = next(r for r in voice["routes"] if r["Identity"] == route["voiceRoute"])
    assert vroute["OnlinePstnGatewayList"] == [route["pstnGatewayFqdn"]] and vroute["OnlinePstnUsages"] == [route["pstnUsage"]]
    policy = next(p for p in voice["policies"] if p["Identity"] == f"Tag:{route['voiceRoutingPolicy']}")
    assert policy["OnlinePstnUsages"] == [route["pstnUsage"]]
    listed = await client.post("/pbx/getDirectRoutesForEnterprise", headers=bearer(token) | {"Content-Type": "application/json"},
                               content=tenant_id)
    assert [r["directRouteId"] for r in listed.json()] == [route["directRouteId"]]

    # Part II.3: PBX location; getBasicPBXLocationDetailsForEnterprise with a bare tenantId body.
    created = await client.post("/pbx/configurePBX", headers=bearer(token), json=location_body(enterprise_id))
    assert created.status_code == 200, created.text
    location = created.json()
    details = await client.post("/pbx/getBasicPBXLocationDetailsForEnterprise",
                                headers=bearer(token) | {"Content-Type": "application/json"}, content=tenant_id)
    assert details.status_code == 200, details.text
    assert details.json() == [location] and set(location) == SPEC_LOCATION_KEYS
    assert location["pbxType"] == "BroadWorks" and location["topologyHiding"] is True and location["links"] == []
    assert location["callPolicy"] == {"callPolicyName": "Global", "callPolicyCNAM": "TRANSPARENT", "forwardedCallsCallerId": "USER_CALLER_ID"}

    # Part II.4: the Unified App template.
    saved = await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(token),
                              json=template_body(enterprise_id, onboarding.login.reseller_id, tenant_id))
    assert saved.status_code == 200, saved.text
    assert saved.json()["appVersion"] == "1.0.1" and "brandingImageInBytes" not in saved.json()

    # Part III.2: PBX users, with a reseller token and no real MSAL object.
    users = licensed_users(live, ga_token, tenant["globalAdmin"]["username"])
    pbx_upn, valet_upn = users[-1]["userPrincipalName"], users[-2]["userPrincipalName"]
    body = user_body(onboarding, upn=pbx_upn, number=n1, route=route["directRouteId"], location=str(location["id"]))
    configured = await client.post("/enterprise/configureUser", headers=bearer(token), json=body)
    assert configured.status_code == 200, configured.text
    assert configured.json()["phoneNumber"] == f"+{n1}" and "S1p-secret-104" not in configured.text
    repeat = await client.post("/enterprise/configureUser", headers=bearer(token), json=body)
    assert repeat.status_code == 200 and repeat.json()["changed"] is False
    # Another Teams user as the same extension of the same PBX: refused (both registered, and the PBX rang both).
    clash = await client.post("/enterprise/configureUser", headers=bearer(token), json=user_body(
        onboarding, upn=valet_upn, number=n2, route=route["directRouteId"], location=str(location["id"])))
    assert clash.status_code == 409 and f"already {pbx_upn.lower()}'s PBX extension" in clash.json()["message"], clash.text
    engine = create_engine(sync_url(live.settings.effective_database_url))
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT sip_password_encrypted FROM pbx_users")).scalar_one()
    engine.dispose()
    assert "S1p-secret-104" not in stored
    # An edit of the enterprise may not take away what these records use (a probe's edits were each accepted, and
    # the sync went on pushing users onto a gateway the enterprise no longer had).
    pbx_types, gateways = await reseller_catalogue(client, token, onboarding.login.reseller_id)
    types = (await client.get("/pbx/getPBXTypesByResellerId", params={"resellerId": onboarding.login.reseller_id},
                              headers=bearer(token))).json()
    location_pbx = next(t["id"] for t in types if t["pbxName"] == location["pbxType"])
    for change, named in (({"services": ["SMS"]}, "has PBX users"), ({"pbxId": [p for p in pbx_types if p != location_pbx][:1]}, "uses PBX type"),
                          ({"sbcGateways": [g for g in gateways if g != sbc_id][:1]}, "uses SBC gateway")):
        edited = await client.post("/reseller/editEnterprise", headers=bearer(token), json={"enterpriseId": enterprise_id, **change})
        assert edited.status_code == 409 and named in edited.json()["message"], (change, edited.text)

    # Part III.3: Sync Teams Users pushes number, Enterprise Voice and the direct route's policy; then leaves it alone.
    synced = await client.post("/provisioning/syncTeamsRegistrations", headers=bearer(ent_token), json=msal)
    assert synced.status_code == 200, synced.text
    result = next(r for r in synced.json()["results"] if r["userPrincipalName"] == pbx_upn)
    assert result["status"] in ("UPDATED", "UNCHANGED")
    config = graph_get(live, ga_token, f"/admin/teams/userConfigurations/{users[-1]['id']}").json()
    assert config["isEnterpriseVoiceEnabled"] is True
    assert [n["telephoneNumber"] for n in config["telephoneNumbers"]] == [f"+{n1}"]
    assert [a["policyAssignment"]["displayName"] for a in config["effectivePolicyAssignments"]
            if "voicerouting" in a["policyType"].lower()] == [route["voiceRoutingPolicy"]]
    resynced = await client.post("/provisioning/syncTeamsRegistrations", headers=bearer(ent_token), json=msal)
    assert resynced.json()["updated"] == 0 and resynced.json()["unchanged"] == 1
    accepted = await client.post("/provisioning/syncTeamsRegistrations?async=true", headers=bearer(ent_token), json=msal)
    assert accepted.status_code == 202, accepted.text
    job = await wait_for_job(client, ent_token, accepted.json()["statusUrl"])
    assert job["status"] == "COMPLETED" and job["total"] == 1 and job["counts"] == {"UNCHANGED": 1}, job
    other = await client.get(accepted.json()["statusUrl"], headers=bearer(await token_for(client, organisation.resellers[1])))
    assert other.status_code == 404
    # A defect while one user is synced (an error that is no domain error) fails that user, named by its type
    # and logged; the job still ends (it stayed RUNNING for ever).
    from teamsvoice.domain.calling import workflows

    async def defect(connection, record):  # type: ignore[no-untyped-def]
        raise RuntimeError("a defect")
    monkeypatch.setattr(workflows, "reconcile", defect)
    accepted = await client.post("/provisioning/syncTeamsRegistrations?async=true", headers=bearer(ent_token), json=msal)
    job = await wait_for_job(client, ent_token, accepted.json()["statusUrl"])
    assert job["status"] == "COMPLETED" and job["counts"] == {"FAILED": 1}, job
    assert "Unexpected error: RuntimeError" in str(job), job
    monkeypatch.undo()

    # Spec 002 Part I: add CALLAPP (and SMS); CallApp needs its consent.
    edited = await client.post("/reseller/editEnterprise", headers=bearer(token),
                               json={"enterpriseId": enterprise_id, "services": ["PBX", "CALLAPP", "SMS"]})
    assert edited.status_code == 200, edited.text
    no_consent = await client.post("/valet/configureValetServiceAccount", headers=bearer(ent_token),
                                   json={"authenticationResult": onboarding.msal_object["authenticationResult"]})
    assert no_consent.status_code == 400 and "GET_CALL_APP_CONSENT" in no_consent.json()["message"]
    await onboarding.consent("GET_CALL_APP_CONSENT")
    account = await client.post("/valet/configureValetServiceAccount", headers=bearer(ent_token),
                                json={"authenticationResult": onboarding.msal_object["authenticationResult"]})
    assert account.status_code == 200, account.text
    assert account.json()["userPrincipalName"] == f"callappservice@{tenant['domain']}"
    account_again = await client.post("/valet/configureValetServiceAccount", headers=bearer(ent_token),
                                      json={"authenticationResult": onboarding.msal_object["authenticationResult"]})
    assert account_again.status_code == 200 and account_again.json()["created"] is False
    assert account_again.json()["id"] == account.json()["id"]
    assert graph_get(live, ga_token, f"/users/callappservice@{tenant['domain']}").status_code == 200

    # Spec 002 Part II: a CallApp user without a direct route.
    valet = await client.post("/valet/configureValetUser", headers=bearer(token),
                              json=user_body(onboarding, upn=valet_upn, number=n2, route=-1, location=location["pbxLocation"], pbx_id="105"))
    assert valet.status_code == 200, valet.text
    assert valet.json()["directRouteId"] == -1 and valet.json()["valet"] is True

    # Sync Unified App: published to the catalog, installed for both users; re-running changes nothing.
    accepted = await client.post("/provisioning/syncUnifiedApp", headers=bearer(ent_token), json=msal)
    assert accepted.status_code == 202, accepted.text
    job = await wait_for_job(client, ent_token, accepted.json()["statusUrl"])
    assert job["status"] == "COMPLETED" and job["total"] == 2, job
    assert job["app"]["action"] in ("PUBLISHED", "UNCHANGED", "UPDATED")
    apps = admin_view(live, tenant_id, "apps")
    app_id = job["app"]["teamsAppId"]
    catalog_app = next(a for a in apps["catalog"] if a["id"] == app_id)
    assert catalog_app["distributionMethod"] == "organization" and catalog_app["appDefinitions"][-1]["version"] == "1.0.1"
    assert {i["userId"] for i in apps["installations"] if i["teamsAppId"] == app_id} >= {users[-1]["id"], users[-2]["id"]}
    accepted = await client.post("/provisioning/syncUnifiedApp", headers=bearer(ent_token), json=msal)
    job = await wait_for_job(client, ent_token, accepted.json()["statusUrl"])
    assert job["status"] == "COMPLETED" and job["app"]["action"] == "UNCHANGED" and job["counts"] == {"UNCHANGED": 2}, job
    # A changed template is a new app version: the catalog app is updated and installations upgraded.
    saved = await client.post("/reseller/saveOrUpdateTeamsApplicationTemplate", headers=bearer(token),
                              json=template_body(enterprise_id, onboarding.login.reseller_id, tenant_id, name="Contoso Calling"))
    new_version = saved.json()["appVersion"]
    accepted = await client.post("/provisioning/syncUnifiedApp", headers=bearer(ent_token), json=msal)
    job = await wait_for_job(client, ent_token, accepted.json()["statusUrl"])
    assert job["status"] == "COMPLETED" and job["app"] == {"teamsAppId": app_id, "action": "UPDATED", "version": new_version}, job
    assert job["counts"] == {"UPGRADED": 2}, job

    # SMS numbers of the enterprise.
    sms = await client.post(f"/sms/getEnterpriseSMSConfig/{enterprise_id}", headers=bearer(token) | {"Content-Type": "application/json"})
    assert sms.status_code == 200, sms.text
    assert [n["phoneNumber"] for n in sms.json()["smsNumbers"]] == [f"+{n1}", f"+{n2}"]

    # updateUserDetails keeps the PBX user's number in step.
    updated = await client.post("/provisioning/updateUserDetails", headers=bearer(ent_token),
                                json=msal | {"userPrincipalName": pbx_upn, "phoneNumber": f"+{n3}"})
    assert updated.status_code == 200, updated.text
    sms = await client.post(f"/sms/getEnterpriseSMSConfig/{enterprise_id}", headers=bearer(token))
    assert [n["phoneNumber"] for n in sms.json()["smsNumbers"]] == [f"+{n2}", f"+{n3}"]
    unknown_policy = await client.post("/provisioning/updateUserDetails", headers=bearer(ent_token),
                                       json=msal | {"userPrincipalName": pbx_upn, "voiceRoutingPolicy": "US-East"})
    assert unknown_policy.status_code == 400 and "provisionDirectRouting" in unknown_policy.json()["message"]
    slashed = await client.post("/provisioning/updateUserDetails", headers=bearer(ent_token),  # Graph cannot grant it
                                json=msal | {"userPrincipalName": pbx_upn, "voiceRoutingPolicy": "US/East"})
    assert slashed.status_code == 400 and slashed.json()["message"].startswith("voiceRoutingPolicy: 'US/East' contains '/'")
    taken = await client.post("/provisioning/updateUserDetails", headers=bearer(ent_token),
                              json=msal | {"userPrincipalName": pbx_upn, "phoneNumber": f"+{n2}"})
    assert taken.status_code == 409
    # A change Teams refuses (the number held there by a user teamsvoice does not know) leaves the user and its PBX
    # user as they were, their last sync FAILED in Teams' words, the answer as before. (Recorded and committed before
    # Teams was asked, the refused number stayed theirs: listed, refused to other users, pushed again by each sync;
    # a refused enableCallingForUser left calling on.)
    from teamsvoice.microsoft.connector import MicrosoftConnector

    refused, holder, other = f"+{int(n3) + 1}", users[-3]["userPrincipalName"], users[-4]["userPrincipalName"]
    connector = MicrosoftConnector(live.settings)
    teams = connector.connect(tenant_id).voice
    try:
        await teams.assign_number(holder, refused)
        in_teams = await teams.voice_state(pbx_upn)
        assert in_teams.phone_numbers == [f"+{n3}"] and in_teams.enterprise_voice, in_teams
        answer = await client.post("/provisioning/updateUserDetails", headers=bearer(ent_token),
                                   json=msal | {"userPrincipalName": pbx_upn, "phoneNumber": refused})
        assert answer.status_code == 409 and answer.json()["message"] == teams_refusal(refused), answer.text
        assert set(answer.json()) == {"timestamp", "status", "error", "message", "path"}
        # Teams too: the user's number, removed before the refused one was asked for, is given back (it was left
        # with no number there, its own free for anyone, while its record said it held it).
        assert await teams.voice_state(pbx_upn) == in_teams
        sms = await client.post(f"/sms/getEnterpriseSMSConfig/{enterprise_id}", headers=bearer(token))
        assert [n["phoneNumber"] for n in sms.json()["smsNumbers"]] == [f"+{n2}", f"+{n3}"]
        assert await stored_voice(live, enterprise_id, pbx_upn) == (
            (f"+{n3}", route["voiceRoutingPolicy"], True), ("FAILED", {"error": teams_refusal(refused)}), f"+{n3}")
        disabled = await client.post(f"/provisioning/disableCallingForUser/{pbx_upn}", headers=bearer(ent_token),
                                     json=msal)
        assert disabled.status_code == 200, disabled.text
        await teams.remove_numbers(holder)
        await teams.assign_number(holder, f"+{n3}")  # the user's own number, taken in Teams meanwhile
        enabled = await client.post(f"/provisioning/enableCallingForUser/{pbx_upn}", headers=bearer(ent_token),
                                    json=msal)
        assert enabled.status_code == 409 and enabled.json()["message"] == teams_refusal(f"+{n3}"), enabled.text
        assert await stored_voice(live, enterprise_id, pbx_upn) == (
            (f"+{n3}", route["voiceRoutingPolicy"], False), ("FAILED", {"error": teams_refusal(f"+{n3}")}), f"+{n3}")
        # The refused number was never the user's: another user is given it.
        given = await client.post("/provisioning/updateUserDetails", headers=bearer(ent_token),
                                  json=msal | {"userPrincipalName": other, "phoneNumber": refused})
        assert given.status_code == 200 and given.json()["changes"][0] == f"number set to {refused}", given.text
        sms = await client.post(f"/sms/getEnterpriseSMSConfig/{enterprise_id}", headers=bearer(token))
        assert [n["phoneNumber"] for n in sms.json()["smsNumbers"]] == [f"+{n2}", f"+{n3}", refused]
    finally:
        await teams.remove_numbers(holder)
        await connector.aclose()
    # A user without Teams Phone is refused a number before anything is recorded (Microsoft would refuse it).
    everyone = graph_get(live, ga_token, "/users", **{"$top": "30", "$select": "id,userPrincipalName,assignedLicenses"}).json()["value"]
    unlicensed = next(u["userPrincipalName"] for u in everyone if not u["assignedLicenses"])
    refused = await client.post("/provisioning/updateUserDetails", headers=bearer(ent_token),
                                json=msal | {"userPrincipalName": unlicensed, "phoneNumber": f"+{fresh_numbers()[0]}"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["message"].startswith(f"phoneNumber: the user {unlicensed} has no Teams Phone licence (MCOEV")
    assert graph_get(live, ga_token, f"/admin/teams/userConfigurations/{unlicensed}").json()["telephoneNumbers"] == []


async def test_direct_routing_needs_authority_and_a_known_gateway(onboarding) -> None:
    client = onboarding.client
    await onboarding.register()
    ent_token = await enterprise_token(onboarding)
    msal = {"authenticationResult": onboarding.msal_object}
    cases = [
        (bearer(ent_token), {"sbcGatewayId": 1}, 400, "authenticationResult"),
        (bearer(ent_token), msal | {"sbcGatewayId": "805"}, 400, "sbcGatewayId"),
        (bearer(ent_token), msal, 400, "sbcGatewayId"),
        (bearer(ent_token), msal | {"sbcGatewayId": 999999}, 404, "999999"),
        (bearer(onboarding.token), {"sbcGatewayId": 1}, 400, "resellerId"),
    ]
    for headers, body, status, named in cases:
        response = await client.post("/provisioning/provisionDirectRouting", headers=headers, json=body)
        assert response.status_code == status, (body, response.text)
        assert named in response.json()["message"]
        assert set(response.json()) == {"timestamp", "status", "error", "message", "path"}
    unauthenticated = await client.post("/provisioning/verifyTenantForDirectRouting", json=msal | {"sbcGatewayId": 1})
    assert unauthenticated.status_code == 401


async def test_consented_reseller_provisions_direct_routing(onboarding, live) -> None:
    await onboarding.register()
    client, token, tenant = onboarding.client, onboarding.token, onboarding.tenant
    for action in ("GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT", "GET_USER_SYNC_CONSENT", "GET_PRESENCE_CONSENT"):
        await onboarding.consent(action)
    sbc_id = (await client.get(f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{onboarding.login.reseller_id}",
                               headers=bearer(token))).json()[1]["sbcGatewayId"]
    consented = {"tenantId": tenant["tenantId"], "resellerId": onboarding.login.reseller_id}
    # The enterprise was created with the first gateway only: the report names the fix.
    report = (await client.post("/provisioning/verifyTenantForDirectRouting", headers=bearer(token), json=consented | {"sbcGatewayId": sbc_id})).json()
    services = next(c for c in report["checks"] if c["check"] == "enterpriseServices")
    assert report["ready"] is False and "editEnterprise" in services["fix"]
    first = (await client.get(f"/reseller/getEnterprisesForReseller/{onboarding.login.reseller_id}", headers=bearer(token))).json()[0]
    edited = await client.post("/reseller/editEnterprise", headers=bearer(token), json={
        "enterpriseId": onboarding.enterprise_id, "sbcGateways": first["sbcGateways"] + [sbc_id]})
    assert edited.status_code == 200, edited.text
    first_run = await client.post("/provisioning/provisionDirectRouting", headers=bearer(token), json=consented | {"sbcGatewayId": sbc_id})
    assert first_run.status_code == 200, first_run.text
    again = await client.post("/provisioning/provisionDirectRouting", headers=bearer(token), json=consented | {"sbcGatewayId": sbc_id})
    assert again.json()["changes"] == [] and again.json()["sbcGatewayRegion"] == "EU-West"
    voice = admin_view(live, tenant["tenantId"], "voice")
    assert any(g["Fqdn"] == f"sbc-eu-west.{tenant['domain']}" for g in voice["gateways"])


async def _with_direct_route(onboarding: Onboarding) -> tuple[str, dict, dict]:  # type: ignore[type-arg]
    """The enterprise registered, its user-sync and presence consents given and its direct route provisioned on the
    reseller's first gateway: its enterprise token, the MSAL object to send and the route."""
    await onboarding.register()
    ent_token = await enterprise_token(onboarding)
    msal = {"authenticationResult": onboarding.msal_object}
    for action in ("GET_USER_SYNC_CONSENT", "GET_PRESENCE_CONSENT"):
        await onboarding.consent(action)
    sbc_id = (await onboarding.client.get(
        f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{onboarding.login.reseller_id}",
        headers=bearer(onboarding.token))).json()[0]["sbcGatewayId"]
    route = (await onboarding.client.post("/provisioning/provisionDirectRouting", headers=bearer(ent_token),
                                          json=msal | {"sbcGatewayId": sbc_id})).json()
    return ent_token, msal, route


async def test_a_policy_named_in_another_case_is_the_tenants_and_granted_once(onboarding, live) -> None:  # type: ignore[no-untyped-def]
    """Teams reads a voice routing policy's name in any case, "Tag:" or not: updateUserDetails refused the tenant's
    "teamsvoice" sent as "TAG:TEAMSVOICE" (a 400 naming provisionDirectRouting, where Fusion took it), and a user
    whose record named its policy so was granted it again by every sync (reported UPDATED each time)."""
    ent_token, msal, route = await _with_direct_route(onboarding)
    client, tenant = onboarding.client, onboarding.tenant
    user = licensed_users(live, onboarding.msal_object["authenticationResult"]["accessToken"],
                          tenant["globalAdmin"]["username"])[-1]
    upn = user["userPrincipalName"]
    cased = f"TAG:{route['voiceRoutingPolicy'].swapcase()}"
    reset = await client.post("/provisioning/updateUserDetails", headers=bearer(ent_token),  # (the emulated tenant
                              json=msal | {"userPrincipalName": upn, "voiceRoutingPolicy": None})  # serves both backends)
    assert reset.status_code == 200, reset.text
    updated = await client.post("/provisioning/updateUserDetails", headers=bearer(ent_token),
                                json=msal | {"userPrincipalName": upn, "voiceRoutingPolicy": cased})
    assert updated.status_code == 200, updated.text
    assert updated.json()["changes"][-1] == f"voice routing policy set to {cased}", updated.text
    for _ in range(2):
        synced = await client.post("/provisioning/syncTeamsRegistrations", headers=bearer(ent_token), json=msal)
        result = next(r for r in synced.json()["results"] if r["userPrincipalName"] == upn)
        assert result["status"] == "UNCHANGED", synced.text
    assert [g["policyName"] for g in admin_view(live, tenant["tenantId"], "voice")["grants"]
            if g["userId"] == user["id"] and "voicerouting" in g["policyType"].lower()] == [route["voiceRoutingPolicy"]]


async def test_a_pbx_user_made_callapp_only_says_a_sync_is_required(onboarding, live) -> None:  # type: ignore[no-untyped-def]
    """configureValetUser with directRouteId -1 on a PBX user with a direct route answered syncRequired false, yet
    the next sync removed the user's Teams number: syncRequired is true whenever a sync would change the user."""
    number = fresh_numbers()[0]
    ent_token, msal, route = await _with_direct_route(onboarding)
    client, token, tenant = onboarding.client, onboarding.token, onboarding.tenant
    location = (await client.post("/pbx/configurePBX", headers=bearer(token), json=location_body(onboarding.enterprise_id))).json()
    user = licensed_users(live, onboarding.msal_object["authenticationResult"]["accessToken"],
                          tenant["globalAdmin"]["username"])[-1]
    upn = user["userPrincipalName"]
    body = user_body(onboarding, upn=upn, number=number, route=route["directRouteId"], location=location["pbxLocation"])
    pbx_user = await client.post("/enterprise/configureUser", headers=bearer(token), json=body)
    assert pbx_user.status_code == 200 and pbx_user.json()["syncRequired"] is True, pbx_user.text
    synced = await client.post("/provisioning/syncTeamsRegistrations", headers=bearer(ent_token), json=msal)
    assert next(r for r in synced.json()["results"] if r["userPrincipalName"] == upn)["status"] == "UPDATED", synced.text
    edited = await client.post("/reseller/editEnterprise", headers=bearer(token),
                               json={"enterpriseId": onboarding.enterprise_id, "services": ["PBX", "CALLAPP"]})
    assert edited.status_code == 200, edited.text
    await onboarding.consent("GET_CALL_APP_CONSENT")

    valet = await client.post("/valet/configureValetUser", headers=bearer(token), json=body | {"directRouteId": -1})
    assert valet.status_code == 200, valet.text
    assert valet.json()["changed"] is True and valet.json()["syncRequired"] is True, valet.text
    synced = await client.post("/provisioning/syncTeamsRegistrations", headers=bearer(ent_token), json=msal)
    result = next(r for r in synced.json()["results"] if r["userPrincipalName"] == upn)
    assert "numbers removed" in result["changes"], synced.text  # what the sync did, as syncRequired said
    # Sent again: nothing changes, and a sync would change nothing.
    again = await client.post("/valet/configureValetUser", headers=bearer(token), json=body | {"directRouteId": -1})
    assert again.json()["changed"] is False and again.json()["syncRequired"] is False, again.text
    synced = await client.post("/provisioning/syncTeamsRegistrations", headers=bearer(ent_token), json=msal)
    assert next(r for r in synced.json()["results"] if r["userPrincipalName"] == upn)["status"] == "UNCHANGED", synced.text
