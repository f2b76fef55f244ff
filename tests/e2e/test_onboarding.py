"""Spec 000 Parts I-IV and spec 001's tokens and consented-reseller provisioning, end to end over real HTTP:
teamsvoice on loopback, the Microsoft 365 emulator on loopback HTTPS, the provider's webhook receiver on loopback."""

import asyncio
from urllib.parse import parse_qs, urlparse

import msal
import pytest
import requests

from tests.support.ctt import bearer, token_for
from tests.support.onboarding import Onboarding, action_url


@pytest.fixture
def onboarding(client, live, organisation, receiver):
    receiver.reset()
    return Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])


async def test_registration_url_is_shaped_like_the_vendors(onboarding) -> None:
    await onboarding.create()
    url = await action_url(onboarding.client, onboarding.token, "REGISTRATION", onboarding.name, f"{onboarding.receiver.url}/hook")
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    assert url.startswith(f"{onboarding.live.emulator.url}/common/oauth2/v2.0/authorize?")
    assert query["response_mode"] == ["form_post"] and set(query["response_type"][0].split()) == {"code", "id_token"}
    assert query["client_id"] == [onboarding.live.settings.microsoft_client_id] and query["nonce"][0] and query["state"][0]
    assert query["redirect_uri"] == [f"{onboarding.live.url}/restricted/handleResponse"]
    assert "Directory.ReadWrite.All" in query["scope"][0] and "48ac35b8-9aa8-4d74-927d-1f4a14a0b239/user_impersonation" in query["scope"][0]


async def test_registration_webhook_and_completion(onboarding) -> None:
    await onboarding.create()
    payload = await onboarding.consent("REGISTRATION")
    page = onboarding.last.callback.text  # what the Global Administrator reads: not "complete" before completion
    assert "Registration consent" in page and "completeEnterpriseRegistration" in page and "is complete" not in page, page
    tenant = onboarding.tenant
    result = payload["msalAuthenticationResult"]["authenticationResult"]
    assert payload["officeUserType"] == "GLOBAL_ADMIN" and payload["companyAdmin"] is True
    assert payload["containsTeamsTenantAdminAPI"] is True and payload["organization"]
    assert result["userInfo"] == {"displayableId": tenant["globalAdmin"]["username"], "identityProvider": "user",
                                  "tenantId": tenant["tenantId"]}
    assert result["accessToken"] and result["idToken"] and result["expiresOn"] > 10**15
    assert onboarding.receiver.received[-1]["path"] == "/hooks/REGISTRATION"
    # The handed-out token really is a Graph token for that tenant.
    graph = requests.get(f"{onboarding.live.emulator.url}/v1.0/organization", verify=str(onboarding.live.emulator.ca_cert_path),
                         headers=bearer(result["accessToken"]), timeout=30)
    assert graph.status_code == 200 and graph.json()["value"][0]["id"] == tenant["tenantId"]

    client, token = onboarding.client, onboarding.token
    wrong = await client.post("/provisioning/completeEnterpriseRegistration", headers=bearer(token),
                              json={"enterpriseId": onboarding.enterprise_id, "tenantId": "00000000-0000-0000-0000-000000000000"})
    assert wrong.status_code == 400 and "tenantId" in wrong.json()["message"]
    # Names longer than their columns: SQLite stored them and completed the registration, PostgreSQL answered "A
    # value in the request cannot be stored". Refused, they leave the registration to complete.
    for field, value, named in (("givenName", "g" * 101, "givenName: at most 100 characters"),
                                ("familyName", "A\u0000dmin", "familyName: must not contain NUL")):
        refused = await client.post("/provisioning/completeEnterpriseRegistration", headers=bearer(token), json={
            "enterpriseId": onboarding.enterprise_id, "tenantId": tenant["tenantId"], field: value})
        assert refused.status_code == 400 and refused.json()["message"].startswith(named), refused.text
    completed = await client.post("/provisioning/completeEnterpriseRegistration", headers=bearer(token), json={
        "enterpriseId": onboarding.enterprise_id, "tenantId": tenant["tenantId"], "givenName": "Ada", "familyName": "Admin"})
    assert completed.status_code == 200, completed.text
    body = completed.json()
    assert body["registered"] is True and body["tenantId"] == tenant["tenantId"]
    creds = body["entAPICredentialInfo"]
    assert set(creds) == {"enterpriseId", "entAdminUsername", "entAdminSecret", "clientID", "clientSecret"}
    again = await client.post("/provisioning/completeEnterpriseRegistration", headers=bearer(token),
                              json={"enterpriseId": onboarding.enterprise_id, "tenantId": tenant["tenantId"]})
    assert again.status_code == 409


async def test_state_is_single_use_and_tamper_proof(onboarding) -> None:
    await onboarding.create()
    await onboarding.consent("REGISTRATION")
    fields = onboarding.last.form_post_fields
    replayed = await onboarding.client.post("/restricted/handleResponse", data=fields)
    assert replayed.status_code == 400 and "already" in replayed.text
    tampered = await onboarding.client.post("/restricted/handleResponse", data=fields | {"state": fields["state"][:-3] + "AAA"})
    assert tampered.status_code == 400 and "not issued by this service" in tampered.text
    missing = await onboarding.client.post("/restricted/handleResponse", data={"code": "x"})
    assert missing.status_code == 400
    assert len(onboarding.receiver.received) == 1


async def test_cancelled_consent_is_reported_to_the_provider(onboarding) -> None:
    await onboarding.create()
    payload = await onboarding.consent("REGISTRATION", accept=False)
    assert payload["actionType"] == "REGISTRATION" and payload["error"] == "access_denied"
    info = await onboarding.client.get(f"/reseller/getEnterprisesForReseller/{onboarding.login.reseller_id}", headers=bearer(onboarding.token))
    assert info.json()[0]["tenantId"] is None


async def test_webhook_is_retried_until_delivered(onboarding) -> None:
    await onboarding.create()
    onboarding.receiver.fail_next = 3
    payload = await onboarding.consent("REGISTRATION")
    assert payload["officeUserType"] == "GLOBAL_ADMIN"
    assert onboarding.receiver.attempts == 4


async def test_microsoft_not_answering_at_the_callback_is_not_final(onboarding) -> None:
    """Microsoft's Graph answers the callback's reads 429 (a storm): the consent was given, the code redeemed, but
    teamsvoice could not read the tenant. Nothing is final: no failure webhook to the provider, the state is usable
    again, and the page links the same sign-in; the answer reloaded (its code is spent) is not redeemed twice. Signed
    in again at that link, the registration completes and the provider gets its one webhook; a replay of that
    successful answer is refused (the state is single-use)."""
    import uuid

    from tests.support.live import emulator_faults

    await onboarding.create()
    client, live, receiver = onboarding.client, onboarding.live, onboarding.receiver
    hook = f"/hooks/transient-{uuid.uuid4().hex[:8]}"
    first = await onboarding.unposted_answer("REGISTRATION", hook)
    await emulator_faults(live.emulator, "PUT", storm429={"count": 1000, "retryAfterSeconds": 0})
    try:
        answered = await client.post("/restricted/handleResponse", data=first)
    finally:
        await emulator_faults(live.emulator, "DELETE")
    assert answered.status_code == 503 and "Microsoft did not answer" in answered.text, answered.text
    reloaded = await client.post("/restricted/handleResponse", data=first)  # its code was redeemed: not again
    assert reloaded.status_code == 503 and "already used" in reloaded.text, reloaded.text
    second = await onboarding.registered_at_the_link(answered.text, first, hook)
    for replay in (second.form_post_fields, first):
        refused = await client.post("/restricted/handleResponse", data=replay)
        assert refused.status_code == 400 and "already processed" in refused.text, refused.text
    await asyncio.sleep(1.0)  # no other webhook comes (a failure's would have been owed since the first answer)
    assert len(receiver.at(hook)) == 1


async def test_action_url_rules(onboarding) -> None:
    await onboarding.create()
    client, token, name = onboarding.client, onboarding.token, onboarding.name
    cases = [
        ({"actionType": "GET_USER_SYNC_CONSENT", "enterpriseName": name, "redirectUrl": "http://127.0.0.1:9/x"}, 400, "REGISTRATION"),
        ({"actionType": "MAKE_COFFEE", "enterpriseName": name, "redirectUrl": "http://127.0.0.1:9/x"}, 400, "actionType"),
        ({"actionType": "REGISTRATION", "enterpriseName": "Nope", "redirectUrl": "http://127.0.0.1:9/x"}, 404, "Nope"),
        ({"actionType": "REGISTRATION", "enterpriseName": name, "redirectUrl": "http://provider.example/x"}, 400, "redirectUrl"),
        ({"actionType": "REGISTRATION", "enterpriseName": name, "redirectUrl": "https://provider.example/x"}, 400, "not registered"),
        ({"actionType": "REGISTRATION", "enterpriseName": name}, 400, "redirectUrl"),
    ]
    for body, status, named in cases:
        response = await client.post("/enterprise/getActionItemUrl", headers=bearer(token), json=body)
        assert response.status_code == status, (body, response.text)
        assert named in response.json()["message"]
    # newEnterprise stores the name trimmed: the name as a script sent it there finds the enterprise (it was a 404).
    padded = await client.post("/enterprise/getActionItemUrl", headers=bearer(token), json={
        "actionType": "REGISTRATION", "enterpriseName": f"  {name} ", "redirectUrl": "http://127.0.0.1:9/x"})
    assert padded.status_code == 200, padded.text


async def test_action_url_consent_type(onboarding) -> None:
    """The action type decides the consent; `consentType` (vendor-notes 1.9's column) was accepted and ignored, so
    one naming another action's consent got that action's URL. Now a 400 naming it and the consent the action
    gives; absent, the action's own or a value no action's consent is named (REGISTRATION's "-") works as before."""
    await onboarding.create()  # (not registered: only REGISTRATION answers a URL, the rest say REGISTRATION first)
    client, token, name = onboarding.client, onboarding.token, onboarding.name

    async def ask(action: str, consent_type: str) -> dict:
        response = await client.post("/enterprise/getActionItemUrl", headers=bearer(token), json={
            "actionType": action, "enterpriseName": name, "redirectUrl": "http://127.0.0.1:9/x",
            "consentType": consent_type})
        return {"status": response.status_code, "text": response.text}

    refused = await ask("GET_USER_SYNC_CONSENT", "Presence")
    assert refused["status"] == 400, refused
    assert "consentType: 'Presence' is the consent of GET_PRESENCE_CONSENT" in refused["text"], refused
    assert "GET_USER_SYNC_CONSENT gives the consent 'UserSync'" in refused["text"], refused
    refused = await ask("REGISTRATION", "usersync")
    assert refused["status"] == 400 and "consentType: 'UserSync'" in refused["text"], refused
    assert "REGISTRATION gives no consent" in refused["text"], refused
    for consent_type in ("-", ""):
        assert (await ask("REGISTRATION", consent_type))["status"] == 200
    for action, consent_type in (("GET_USER_SYNC_CONSENT", "UserSync"), ("GET_PRESENCE_CONSENT", "presence"),
                                 ("GET_CALL_APP_CONSENT", "CALL_APP")):  # (the vendor's CallApp type is undocumented)
        answer = await ask(action, consent_type)
        assert answer["status"] == 400 and "complete REGISTRATION first" in answer["text"], answer


async def test_another_resellers_enterprise_is_not_found(onboarding, organisation) -> None:
    await onboarding.create()
    other = await token_for(onboarding.client, organisation.resellers[1])
    response = await onboarding.client.post("/enterprise/getActionItemUrl", headers=bearer(other), json={
        "actionType": "REGISTRATION", "enterpriseName": onboarding.name, "redirectUrl": "http://127.0.0.1:9/x"})
    assert response.status_code == 404


async def test_enterprise_credentials_and_regeneration(onboarding) -> None:
    await onboarding.register()
    client, creds, tenant = onboarding.client, onboarding.credentials, onboarding.tenant
    form = {"username": creds["entAdminUsername"], "password": creds["entAdminSecret"], "grant_type": "password"}
    enterprise_token = await client.post("/oauth/token", auth=(creds["clientID"], creds["clientSecret"]), data=form)
    assert enterprise_token.status_code == 200
    # Enterprise-level tokens are not reseller tokens.
    refused = await client.get(f"/reseller/getEnterprisesForReseller/{onboarding.login.reseller_id}",
                               headers=bearer(enterprise_token.json()["access_token"]))
    assert refused.status_code == 403
    regenerated = await client.post("/enterprise/regenerateAPICredentials", headers=bearer(onboarding.token) | {"Content-Type": "application/json"},
                                    content=tenant["tenantId"])
    assert regenerated.status_code == 200
    fresh = regenerated.json()
    assert fresh["enterpriseId"] == onboarding.enterprise_id and fresh["clientSecret"] != creds["clientSecret"]
    old = await client.post("/oauth/token", auth=(creds["clientID"], creds["clientSecret"]), data=form)
    assert old.status_code == 401
    old_token = await client.post("/provisioning/syncTeamsRegistrations", headers=bearer(enterprise_token.json()["access_token"]), json={})
    assert old_token.status_code == 401
    new = await client.post("/oauth/token", auth=(fresh["clientID"], fresh["clientSecret"]),
                            data={"username": fresh["entAdminUsername"], "password": fresh["entAdminSecret"], "grant_type": "password"})
    assert new.status_code == 200


async def test_regenerate_before_registration_is_an_error(onboarding) -> None:
    await onboarding.create()
    await onboarding.consent("REGISTRATION")  # linked to the tenant, but completeEnterpriseRegistration not called
    response = await onboarding.client.post("/enterprise/regenerateAPICredentials", headers=bearer(onboarding.token),
                                            content=onboarding.tenant["tenantId"])
    assert response.status_code == 400 and "completeEnterpriseRegistration" in response.json()["message"]
    unknown = await onboarding.client.post("/enterprise/regenerateAPICredentials", headers=bearer(onboarding.token), content="nope")
    assert unknown.status_code == 404
    # A bare-text tenantId that no tenant id can be: named (a NUL was PostgreSQL's 400 naming no field, SQLite's 404)
    for content, problem in (("te\u0000nant", "must not contain NUL"), ("t" * 201, "at most 200 characters")):
        odd = await onboarding.client.post("/enterprise/regenerateAPICredentials", headers=bearer(onboarding.token),
                                           content=content)
        assert odd.status_code == 400 and odd.json()["message"] == f"tenantId: {problem}" + (
            " or other control characters" if "NUL" in problem else ""), odd.text


def graph_as_app(live, tenant_id: str) -> requests.Session:
    """Reads the emulated tenant through Graph with teamsvoice's app registration, as an operator would."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would replace the emulator's CA
    session.verify = str(live.emulator.ca_cert_path)
    app = msal.ConfidentialClientApplication(
        live.settings.microsoft_client_id, client_credential=live.settings.microsoft_client_secret,
        authority=f"{live.emulator.url}/{tenant_id}", instance_discovery=False, http_client=session)
    token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    return session


def voice_config(live, tenant_id: str, upn: str) -> dict:
    graph = graph_as_app(live, tenant_id)
    user = graph.get(f"{live.emulator.url}/v1.0/users/{upn}", timeout=30).json()
    return graph.get(f"{live.emulator.url}/v1.0/admin/teams/userConfigurations/{user['id']}", timeout=30).json()


def some_user(live, tenant: dict) -> str:
    graph = graph_as_app(live, tenant["tenantId"])
    users = graph.get(f"{live.emulator.url}/v1.0/users", params={"$top": "5", "$select": "userPrincipalName,assignedLicenses"},
                      timeout=30).json()["value"]
    return next(u["userPrincipalName"] for u in users  # licensed (Teams Phone): it is given a number
                if u["userPrincipalName"] != tenant["globalAdmin"]["username"] and u["assignedLicenses"])


async def test_consented_reseller_provisions_calling(onboarding) -> None:
    await onboarding.register()
    client, token, tenant, live = onboarding.client, onboarding.token, onboarding.tenant, onboarding.live
    consent_object = {"tenantId": tenant["tenantId"], "resellerId": onboarding.login.reseller_id}
    upn = some_user(live, tenant)
    # Without the service-provider-management consent the reseller may not provision.
    refused = await client.post(f"/provisioning/disableCallingForUser/{upn}", headers=bearer(token), json=consent_object)
    assert refused.status_code == 403 and "EnterpriseManagement" in refused.json()["message"]
    await onboarding.consent("GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT")
    info = await client.post("/enterprise/getEnterpriseInfoForTenant", headers=bearer(token), content=tenant["tenantId"])
    assert info.status_code == 200
    assert info.json()["canResellerManageEnterpriseProvisioning"] is True
    assert [c["consentName"] for c in info.json()["consentsByEnterprise"]] == ["EnterpriseManagement"]

    updated = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                                json=consent_object | {"userPrincipalName": upn, "phoneNumber": "+14139301634"})
    assert updated.status_code == 200, updated.text
    config = voice_config(live, tenant["tenantId"], upn)
    assert config["isEnterpriseVoiceEnabled"] is True
    assert [n["telephoneNumber"] for n in config["telephoneNumbers"]] in (["+14139301634"], ["14139301634"])

    disabled = await client.post(f"/provisioning/disableCallingForUser/{upn}", headers=bearer(token), json=consent_object)
    assert disabled.status_code == 200, disabled.text
    config = voice_config(live, tenant["tenantId"], upn)
    assert config["isEnterpriseVoiceEnabled"] is False and config["telephoneNumbers"] == []

    enabled = await client.post(f"/provisioning/enableCallingForUser/{upn}", headers=bearer(token), json=consent_object)
    assert enabled.status_code == 200 and enabled.json()["status"] == "UPDATED"
    assert voice_config(live, tenant["tenantId"], upn)["isEnterpriseVoiceEnabled"] is True

    synced = await client.post("/provisioning/syncTeamsRegistrations", headers=bearer(token), json=consent_object)
    assert synced.status_code == 200
    assert synced.json()["unchanged"] == 1 and synced.json()["updated"] == 0

    wrong_reseller = await client.post(f"/provisioning/enableCallingForUser/{upn}", headers=bearer(token),
                                       json={"tenantId": tenant["tenantId"], "resellerId": onboarding.login.reseller_id + 1000})
    assert wrong_reseller.status_code == 404
    bad_type = await client.post(f"/provisioning/enableCallingForUser/{upn}", headers=bearer(token),
                                 json={"tenantId": tenant["tenantId"], "resellerId": "12"})
    assert bad_type.status_code == 400 and "resellerId" in bad_type.json()["message"]
    bad_number = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                                   json=consent_object | {"userPrincipalName": upn, "phoneNumber": "+1555"})
    assert bad_number.status_code == 400 and "phoneNumber" in bad_number.json()["message"]


async def test_enterprise_token_with_msal_object(onboarding) -> None:
    await onboarding.register()
    client, creds, tenant, live = onboarding.client, onboarding.credentials, onboarding.tenant, onboarding.live
    enterprise_token = (await client.post("/oauth/token", auth=(creds["clientID"], creds["clientSecret"]), data={
        "username": creds["entAdminUsername"], "password": creds["entAdminSecret"], "grant_type": "password"})).json()["access_token"]
    upn = some_user(live, tenant)
    body = {"authenticationResult": onboarding.msal_object}
    enabled = await client.post("/provisioning/updateUserDetails", headers=bearer(enterprise_token),
                                json=body | {"userPrincipalName": upn, "phoneNumber": "14139301700"})
    assert enabled.status_code == 200, enabled.text
    assert voice_config(live, tenant["tenantId"], upn)["isEnterpriseVoiceEnabled"] is True
    # An MSAL object is required, and a forged one (another tenant) is refused.
    missing = await client.post(f"/provisioning/enableCallingForUser/{upn}", headers=bearer(enterprise_token), json={})
    assert missing.status_code == 400 and "authenticationResult" in missing.json()["message"]
    forged = dict(onboarding.msal_object)
    forged["authenticationResult"] = dict(forged["authenticationResult"], accessToken="eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.")
    refused = await client.post(f"/provisioning/enableCallingForUser/{upn}", headers=bearer(enterprise_token),
                                json={"authenticationResult": forged})
    assert refused.status_code == 403


async def test_registered_https_redirect_urls_are_accepted(onboarding, monkeypatch) -> None:
    from typer.testing import CliRunner

    from teamsvoice.cli import app

    await onboarding.create()
    body = {"actionType": "REGISTRATION", "enterpriseName": onboarding.name, "redirectUrl": "https://portal.provider.example/hooks/1"}
    refused = await onboarding.client.post("/enterprise/getActionItemUrl", headers=bearer(onboarding.token), json=body)
    assert refused.status_code == 400
    monkeypatch.setenv("TEAMSVOICE_DATABASE_URL", onboarding.live.settings.effective_database_url)
    args = ["register-redirect-url", str(onboarding.login.reseller_id), "https://portal.provider.example/hooks/"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)  # the CLI runs its own event loop
    assert result.exit_code == 0, result.output
    accepted = await onboarding.client.post("/enterprise/getActionItemUrl", headers=bearer(onboarding.token), json=body)
    assert accepted.status_code == 200 and accepted.text.startswith("https://")


async def test_update_user_details_says_what_empty_and_null_mean(onboarding) -> None:  # type: ignore[no-untyped-def]
    """phoneNumber "" answered 200 UPDATED ["enterprise voice enabled"], null answered "number set to None", and
    voiceRoutingPolicy "" or " " 200 UNCHANGED while an unknown policy is a 400. null removes the number (and gives
    the tenant's global policy), as documented; empty text is a 400 naming the field; a userPrincipalName that is
    not a string says so."""
    import random

    await onboarding.register()
    client, creds, tenant, live = onboarding.client, onboarding.credentials, onboarding.tenant, onboarding.live
    token = (await client.post("/oauth/token", auth=(creds["clientID"], creds["clientSecret"]), data={
        "username": creds["entAdminUsername"], "password": creds["entAdminSecret"], "grant_type": "password"})).json()["access_token"]
    upn = some_user(live, tenant)
    body = {"authenticationResult": onboarding.msal_object, "userPrincipalName": upn}
    number = f"+1413931{random.randrange(0, 10000):04d}"  # the emulated tenant serves both backends

    async def update(**fields):  # type: ignore[no-untyped-def]
        return await client.post("/provisioning/updateUserDetails", headers=bearer(token), json=body | fields)

    given = await update(phoneNumber=number)
    assert given.status_code == 200 and given.json()["changes"][0] == f"number set to {number}", given.text
    for field, value in (("phoneNumber", ""), ("phoneNumber", "  "), ("voiceRoutingPolicy", ""), ("voiceRoutingPolicy", " ")):
        refused = await update(**{field: value})
        assert refused.status_code == 400, (field, value, refused.text)
        assert refused.json()["message"].startswith(f"{field}: must not be empty; send null"), refused.text
    assert [n["telephoneNumber"] for n in voice_config(live, tenant["tenantId"], upn)["telephoneNumbers"]] == [number]
    removed = await update(phoneNumber=None)
    assert removed.status_code == 200 and removed.json()["changes"] == ["number removed"], removed.text
    assert voice_config(live, tenant["tenantId"], upn)["telephoneNumbers"] == []
    not_text = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                                 json={"authenticationResult": onboarding.msal_object, "userPrincipalName": 123})
    assert not_text.status_code == 400 and not_text.json()["message"].startswith("userPrincipalName: must be a string"), not_text.text


async def test_a_stopping_server_answers_an_inline_sync_with_what_to_do(onboarding) -> None:
    """SIGTERM to `teamsvoice api` during an inline syncTeamsRegistrations (25 users or fewer: no durable job):
    uvicorn's graceful shutdown cancels the request after its timeout (5 s) and the client got uvicorn's bare
    text/plain 500. It gets a 503 in ConnecttoTeams' envelope now, with Retry-After, saying how many users were
    pushed and to send the sync again (each user's push changes only what differs); sent again, it finishes. The
    API is served as `teamsvoice api` serves it (runner.server, stopped by runner.serve_until as a signal stops it),
    on the live server's database, with a graceful timeout of half a second."""
    import random
    import re

    import httpx

    from m365_emulator import catalog
    from tests.support.live import answer_of_a_stopping_api, emulator_faults

    await onboarding.register()
    client, token, tenant, live = onboarding.client, onboarding.token, onboarding.tenant, onboarding.live
    await onboarding.consent("GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT")
    consent_object = {"tenantId": tenant["tenantId"], "resellerId": onboarding.login.reseller_id}
    graph = graph_as_app(live, tenant["tenantId"])
    listed = graph.get(f"{live.emulator.url}/v1.0/users", params={"$top": "30", "$select": "userPrincipalName,assignedLicenses"},
                       timeout=30).json()["value"]
    teams_phone = catalog.SKUS["MCOEV"]["skuId"]  # (other tests change some users' licences: Teams Phone is asked for)
    upns = [u["userPrincipalName"] for u in listed if u["userPrincipalName"] != tenant["globalAdmin"]["username"]
            and any(lic["skuId"] == teams_phone for lic in u["assignedLicenses"])][:3]
    assert len(upns) == 3, listed
    base = 14139400000 + random.randrange(0, 9000) * 3  # the emulated tenant serves both backends: fresh numbers
    for index, upn in enumerate(upns):
        updated = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                                    json=consent_object | {"userPrincipalName": upn, "phoneNumber": f"+{base + index}"})
        assert updated.status_code == 200, updated.text

    async def sync(stopping: httpx.AsyncClient) -> httpx.Response:
        return await stopping.post("/provisioning/syncTeamsRegistrations", headers=bearer(token), json=consent_object)

    async def asking_microsoft() -> bool:  # the sync is still running when it is cancelled
        return bool((await emulator_faults(live.emulator, "GET"))["injected"]["latency"])

    answer = await answer_of_a_stopping_api(live.settings, live.emulator, sync, asking_microsoft)
    assert answer.status_code == 503, (answer.status_code, answer.headers.get("content-type"), answer.text)
    assert answer.headers["Retry-After"] == "5"
    body = answer.json()
    assert (body["status"], body["error"], body["path"]) == (503, "Service Unavailable", "/provisioning/syncTeamsRegistrations")
    said = re.fullmatch(
        rf"The server is stopping and answered before the sync of enterprise {onboarding.enterprise_id} had ended: "
        r"(\d) of 3 users done(?: \((.*)\))?\. Send the sync again: each user's push changes only what differs from "
        r"Teams, so what was done is not done twice and the rest is finished", body["message"])
    assert said and int(said.group(1)) < 3, body["message"]
    done = said.group(2).split("; ") if said.group(2) else []
    assert done == [f"{upn} UNCHANGED" for upn in upns[:len(done)]], done  # in order, as pushed

    again = await client.post("/provisioning/syncTeamsRegistrations", headers=bearer(token), json=consent_object)
    assert again.status_code == 200, again.text
    assert [(r["userPrincipalName"], r["status"]) for r in again.json()["results"]] == [(upn, "UNCHANGED") for upn in upns]
