"""Spec 000's registration and consents under the answers a probe sent at once or late: a registration link handed
out before the enterprise registered, one answer posted several times at the same moment, two enterprises'
registrations of one tenant, completeEnterpriseRegistration called several times at once."""

import asyncio
import uuid

import pytest

from tests.support.consent import sign_in_and_consent
from tests.support.ctt import bearer
from tests.support.emulated import emulated_tenant
from tests.support.onboarding import Onboarding, action_url


async def _onboarding(client, live, organisation, receiver, name: str | None = None, tenant: dict | None = None) -> Onboarding:  # type: ignore[no-untyped-def]
    tenant = tenant or await emulated_tenant(live, f"race-{uuid.uuid4().hex[:8]}.example", 2)
    onboarding = Onboarding(client, live, organisation, receiver, tenant)
    if name:
        onboarding.name = name
    await onboarding.create()
    return onboarding


async def _enterprise(onboarding: Onboarding) -> dict:
    listed = await onboarding.client.get(f"/reseller/getEnterprisesForReseller/{onboarding.login.reseller_id}",
                                         headers=bearer(onboarding.token))
    return next(e for e in listed.json() if e["enterpriseId"] == onboarding.enterprise_id)


async def _answer(onboarding: Onboarding, url: str, tenant: dict) -> dict[str, str]:
    """The form Microsoft has the administrator's browser post to teamsvoice, not posted yet."""
    admin = tenant["globalAdmin"]
    result = await sign_in_and_consent(url, admin["username"], admin["password"], str(onboarding.live.emulator.ca_cert_path),
                                       post=False)
    return result.form_post_fields


async def test_a_registration_link_used_after_registration_does_not_move_the_enterprise(client, live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    """Two REGISTRATION links were handed out; the first was used and the registration completed. The second, used
    later by another tenant's administrator, moved the registered enterprise to that tenant, where the first
    tenant's EnterpriseManagement consent then let the reseller provision."""
    receiver.reset()
    onboarding = await _onboarding(client, live, organisation, receiver)
    hook = f"/hooks/late-{uuid.uuid4().hex[:8]}"
    first = await action_url(client, onboarding.token, "REGISTRATION", onboarding.name, f"{receiver.url}/hooks/first")
    late = await action_url(client, onboarding.token, "REGISTRATION", onboarding.name, receiver.url + hook)
    admin = onboarding.tenant["globalAdmin"]
    ca = str(live.emulator.ca_cert_path)
    assert (await sign_in_and_consent(first, admin["username"], admin["password"], ca)).callback.status_code == 200
    completed = await client.post("/provisioning/completeEnterpriseRegistration", headers=bearer(onboarding.token), json={
        "enterpriseId": onboarding.enterprise_id, "tenantId": onboarding.tenant["tenantId"]})
    assert completed.status_code == 200, completed.text
    await onboarding.consent("GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT")

    other = await emulated_tenant(live, f"late-{uuid.uuid4().hex[:8]}.example", 2)
    answered = await sign_in_and_consent(late, other["globalAdmin"]["username"], other["globalAdmin"]["password"], ca)
    assert "already registered to tenant" in answered.callback.text, answered.callback.text
    [webhook] = [r["body"] for r in receiver.at(hook)]
    assert webhook["error"] == "conflict" and "already registered to tenant" in webhook["errorDescription"], webhook
    enterprise = await _enterprise(onboarding)
    assert enterprise["tenantId"] == onboarding.tenant["tenantId"] and enterprise["registered"] is True, enterprise
    provisioned = await client.post("/provisioning/updateUserDetails", headers=bearer(onboarding.token), json={
        "tenantId": other["tenantId"], "resellerId": onboarding.login.reseller_id,
        "userPrincipalName": other["globalAdmin"]["username"], "voiceRoutingPolicy": None})
    assert provisioned.status_code in (403, 404), provisioned.text


async def test_a_registration_moved_before_completion_keeps_no_consent_of_the_first_tenant(client, live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    """Before completion a registration may still move (the wrong tenant's administrator consented first); the
    consents the first tenant's administrator granted stay behind with that tenant."""
    receiver.reset()
    onboarding = await _onboarding(client, live, organisation, receiver)
    redirect = f"{receiver.url}/hooks/REGISTRATION"
    late = await action_url(client, onboarding.token, "REGISTRATION", onboarding.name, redirect)
    await onboarding.consent("REGISTRATION")
    await onboarding.consent("GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT")
    assert [c["consentName"] for c in (await _enterprise(onboarding))["consentsByEnterprise"]] == ["EnterpriseManagement"]
    other = await emulated_tenant(live, f"right-{uuid.uuid4().hex[:8]}.example", 2)
    answered = await sign_in_and_consent(late, other["globalAdmin"]["username"], other["globalAdmin"]["password"],
                                         str(live.emulator.ca_cert_path))
    assert answered.callback.status_code == 200, answered.callback.text
    enterprise = await _enterprise(onboarding)
    assert enterprise["tenantId"] == other["tenantId"] and enterprise["consentsByEnterprise"] == [], enterprise


async def test_one_answer_posted_at_once_counts_once(client, live, organisation, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A sign-in answer posted four times at the same moment: each read the state unused and went on (one success,
    two "already redeemed" failures sent to the provider, one replay), and the request ended failed."""
    from teamsvoice.domain.consent import repository as consents

    read = consents.action_request_by_state

    async def read_then_wait(session, key):  # type: ignore[no-untyped-def]
        found = await read(session, key)
        await asyncio.sleep(0.3)  # the four posts have all read the state before any goes on
        return found

    monkeypatch.setattr(consents, "action_request_by_state", read_then_wait)
    receiver.reset()
    onboarding = await _onboarding(client, live, organisation, receiver)
    hook = f"/hooks/once-{uuid.uuid4().hex[:8]}"
    url = await action_url(client, onboarding.token, "REGISTRATION", onboarding.name, receiver.url + hook)
    fields = await _answer(onboarding, url, onboarding.tenant)
    answers = await asyncio.gather(*(client.post("/restricted/handleResponse", data=fields) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400], [a.text for a in answers]
    assert all("already processed" in a.text for a in answers if a.status_code == 400)
    webhooks = receiver.at(hook)
    await asyncio.sleep(1.0)  # no other webhook comes
    assert len(receiver.at(hook)) == 1 and "error" not in webhooks[0]["body"], webhooks


async def test_two_enterprises_registering_one_tenant_at_once(client, live, organisation, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Both registrations found the tenant free; the loser's write was refused by the unique tenant, answered with a
    table name and "try again" (its state already used), and its provider never got a webhook."""
    from teamsvoice.domain.orgs import repository

    receiver.reset()
    first = await _onboarding(client, live, organisation, receiver)
    second = await _onboarding(client, live, organisation, receiver, name=f"Second of {first.tenant['domain']}", tenant=first.tenant)
    await first.consent("REGISTRATION")
    hook = f"/hooks/second-{uuid.uuid4().hex[:8]}"

    async def free(*args, **kwargs) -> bool:  # type: ignore[no-untyped-def]
        return False  # as the loser saw it: the winner had not committed yet

    monkeypatch.setattr(repository, "tenant_registered_elsewhere", free)
    url = await action_url(client, second.token, "REGISTRATION", second.name, receiver.url + hook)
    answered = await sign_in_and_consent(url, first.tenant["globalAdmin"]["username"],
                                         first.tenant["globalAdmin"]["password"], str(live.emulator.ca_cert_path))
    page = answered.callback.text
    assert "Not completed" in page and "already registered to another enterprise" in page and "enterprises." not in page, page
    [webhook] = receiver.at(hook)
    assert webhook["body"]["error"] == "conflict", webhook
    assert (await _enterprise(second))["tenantId"] is None


@pytest.mark.parametrize("calls", [4])
async def test_completing_a_registration_at_once_gives_one_set_of_credentials(client, live, organisation, receiver, calls: int) -> None:  # type: ignore[no-untyped-def]
    """Four completions at the same moment each answered 200 with their own credentials, three of them dead."""
    receiver.reset()
    onboarding = await _onboarding(client, live, organisation, receiver)
    await onboarding.consent("REGISTRATION")
    body = {"enterpriseId": onboarding.enterprise_id, "tenantId": onboarding.tenant["tenantId"]}
    answers = await asyncio.gather(*(client.post("/provisioning/completeEnterpriseRegistration",
                                                 headers=bearer(onboarding.token), json=body) for _ in range(calls)))
    assert sorted(a.status_code for a in answers) == [200] + [409] * (calls - 1), [a.text for a in answers]
    won = next(a.json() for a in answers if a.status_code == 200)
    assert won["registered"] is True, won
    creds = won["entAPICredentialInfo"]
    token = await client.post("/oauth/token", auth=(creds["clientID"], creds["clientSecret"]), data={
        "username": creds["entAdminUsername"], "password": creds["entAdminSecret"], "grant_type": "password"})
    assert token.status_code == 200, token.text


async def test_regenerating_credentials_at_once_leaves_one_set_working(  # type: ignore[no-untyped-def]
        client, live, organisation, receiver) -> None:
    """Spec 001: each regenerateAPICredentials invalidates the credentials before it. Four calls at the same moment
    (a script's retries) each revoked only what it had read, and all four answered sets worked: credentials the
    provider may never have stored stayed live."""
    receiver.reset()
    onboarding = await _onboarding(client, live, organisation, receiver)
    await onboarding.consent("REGISTRATION")
    headers, tenant_id = bearer(onboarding.token), onboarding.tenant["tenantId"]
    completed = await client.post("/provisioning/completeEnterpriseRegistration", headers=headers,
                                  json={"enterpriseId": onboarding.enterprise_id, "tenantId": tenant_id})
    assert completed.status_code == 200, completed.text
    answers = await asyncio.gather(*(client.post("/enterprise/regenerateAPICredentials", headers=headers,
                                                 content=tenant_id) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    working = []
    for answer in answers:
        creds = answer.json()
        token = await client.post("/oauth/token", auth=(creds["clientID"], creds["clientSecret"]), data={
            "username": creds["entAdminUsername"], "password": creds["entAdminSecret"], "grant_type": "password"})
        working += [creds["clientID"]] if token.status_code == 200 else []
    assert len(working) == 1, working


async def test_a_master_reseller_names_which_of_two_same_named_enterprises(client, live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    """Enterprise names are unique per reseller: a master reseller sees two of the same name under its resellers,
    and getActionItemUrl silently took the lowest id, so it could never reach the other. Now it is told, and
    `enterpriseId` says which."""
    from tests.support.ctt import enterprise_body, reseller_catalogue, token_for

    receiver.reset()
    first = await _onboarding(client, live, organisation, receiver)
    other_login = organisation.resellers[1]
    other_token = await token_for(client, other_login)
    pbx, sbc = await reseller_catalogue(client, other_token, other_login.reseller_id)
    created = await client.post("/reseller/newEnterprise", headers=bearer(other_token), json=enterprise_body(
        other_login.reseller_id, first.name, pbx=pbx[:1], sbc=sbc[:1], manage=True))
    assert created.status_code == 200, created.text
    other_id = created.json()
    master = await token_for(client, organisation.master)
    body = {"actionType": "REGISTRATION", "enterpriseName": first.name, "redirectUrl": f"{receiver.url}/hooks/master"}
    ambiguous = await client.post("/enterprise/getActionItemUrl", headers=bearer(master), json=body)
    assert ambiguous.status_code == 409, ambiguous.text
    assert f"ids {min(first.enterprise_id, other_id)}, {max(first.enterprise_id, other_id)}" in ambiguous.json()["message"]
    chosen = await client.post("/enterprise/getActionItemUrl", headers=bearer(master), json=body | {"enterpriseId": other_id})
    assert chosen.status_code == 200 and chosen.text.startswith(live.emulator.url), chosen.text
    wrong = await client.post("/enterprise/getActionItemUrl", headers=bearer(master), json=body | {"enterpriseId": 10**9})
    assert wrong.status_code == 404, wrong.text
    # A reseller that sees one of them is not concerned.
    assert (await client.post("/enterprise/getActionItemUrl", headers=bearer(other_token), json=body)).status_code == 200
