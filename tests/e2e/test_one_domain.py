"""One domain, two vocabularies: numbers assigned by a Fusion bulk job are the numbers ConnecttoTeams sees
(and the reverse), and both are what Teams has in the emulated tenant."""

import httpx

from tests.api.fusion.users_support import onboard
from tests.support.ctt import bearer, token_for


async def test_numbers_assigned_through_fusion_are_seen_through_connecttoteams(client: httpx.AsyncClient, live, organisation) -> None:
    sub = await onboard(client, live, organisation, tenant_index=2, count=6)
    users = [u["msTeams"] for u in await sub.users(10) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:4]
    data = [{"upn": u["userPrincipalName"], "displayName": u["displayName"], "number": sub.numbers[i]}
            for i, u in enumerate(users[:3])]
    bulk = await client.put(f"{sub.path}/msteams/users/bulk", headers=sub.headers, json={"name": "one domain", "data": data})
    assert bulk.status_code == 200, bulk.text

    # ConnecttoTeams: the subscription is an enterprise of the same reseller, linked to the same tenant.
    token = await token_for(client, organisation.resellers[0])
    enterprises = (await client.get(f"/reseller/getEnterprisesForReseller/{organisation.resellers[0].reseller_id}",
                                    headers=bearer(token))).json()
    enterprise = next(e for e in enterprises if e["tenantId"] == sub.tenant["tenantId"])
    consent_object = {"tenantId": sub.tenant["tenantId"], "resellerId": enterprise["resellerId"]}
    synced = await client.post("/provisioning/syncTeamsRegistrations", headers=bearer(token), json=consent_object)
    assert synced.status_code == 200, synced.text
    seen = {r["userPrincipalName"]: r["status"] for r in synced.json()["results"]}
    assert {d["upn"].lower() for d in data} <= set(seen) and all(seen[d["upn"].lower()] == "UNCHANGED" for d in data)
    # A number Fusion assigned is taken for ConnecttoTeams too.
    taken = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                              json=consent_object | {"userPrincipalName": users[3]["userPrincipalName"], "phoneNumber": sub.numbers[0]})
    assert taken.status_code == 409, taken.text

    # The reverse: ConnecttoTeams moves the first user to another number of the subscription.
    moved = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                              json=consent_object | {"userPrincipalName": data[0]["upn"], "phoneNumber": sub.numbers[5]})
    assert moved.status_code == 200, moved.text
    fusion_view = (await client.get(f"{sub.path}/msteams/user/{users[0]['id']}", headers=sub.headers)).json()
    assert fusion_view["draas"]["phoneNumber"] == sub.numbers[5]
    free = (await client.get(f"{sub.path}/free_numbers", headers=sub.headers)).text
    assert sub.numbers[0] in free and sub.numbers[5] not in free and sub.numbers[1] not in free

    # Teams, in the emulated tenant, agrees with both.
    assert await sub.teams_numbers(users[0]["id"]) == [sub.numbers[5]]
    assert await sub.teams_numbers(users[1]["id"]) == [sub.numbers[1]]


async def test_one_rule_for_giving_a_number_in_both_families(client: httpx.AsyncClient, live, organisation) -> None:
    """domain/inventory/ownership.require_free: a number in quarantine after offboarding waits, and a number held
    by another user is refused, whichever family asks (Fusion: 400 with its code; ConnecttoTeams: 409)."""
    from datetime import timedelta

    from teamsvoice.core.clock import utcnow
    from teamsvoice.domain.fusion.models import FusionSubscription
    from teamsvoice.domain.voice_state.models import NumberQuarantine

    sub = await onboard(client, live, organisation, tenant_index=2, count=4)
    users = [u["msTeams"] for u in await sub.users(10) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:2]
    resting = sub.numbers[3]
    subscription_id = int(sub.path.rsplit("/", 1)[1])

    async def quarantine(session) -> None:  # type: ignore[no-untyped-def]
        enterprise_id = (await session.get(FusionSubscription, subscription_id)).enterprise_id
        session.add(NumberQuarantine(enterprise_id=enterprise_id, e164=resting, previous_holder="gone@x.example",
                                     until=utcnow() + timedelta(days=30)))

    await sub.world._with_session(quarantine)
    fusion = await client.put(f"{sub.path}/msteams/users/{users[0]['id']}", headers=sub.headers,
                              json={"phoneNumber": resting})
    assert fusion.status_code == 400 and "quarantine" in fusion.json()["error"]["reason"], fusion.text
    token = await token_for(client, organisation.resellers[0])
    enterprises = (await client.get(f"/reseller/getEnterprisesForReseller/{organisation.resellers[0].reseller_id}",
                                    headers=bearer(token))).json()
    enterprise = next(e for e in enterprises if e["tenantId"] == sub.tenant["tenantId"])
    consent_object = {"tenantId": sub.tenant["tenantId"], "resellerId": enterprise["resellerId"]}
    ctt = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                            json=consent_object | {"userPrincipalName": users[1]["userPrincipalName"], "phoneNumber": resting})
    assert ctt.status_code == 409 and "quarantine" in ctt.text, ctt.text

    # Held by another user: the same refusal, naming the holder to its owner, in each family's envelope.
    given = await client.put(f"{sub.path}/msteams/users/{users[0]['id']}", headers=sub.headers,
                             json={"phoneNumber": sub.numbers[0]})
    assert given.status_code == 200, given.text
    taken = await client.put(f"{sub.path}/msteams/users/{users[1]['id']}", headers=sub.headers,
                             json={"phoneNumber": sub.numbers[0]})
    assert taken.status_code == 400 and taken.json()["error"]["code"] == 2011, taken.text
    assert users[0]["userPrincipalName"].lower() in taken.json()["error"]["reason"].lower()
    ctt_taken = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                                  json=consent_object | {"userPrincipalName": users[1]["userPrincipalName"],
                                                         "phoneNumber": sub.numbers[0]})
    assert ctt_taken.status_code == 409 and users[0]["userPrincipalName"].lower() in ctt_taken.text.lower(), ctt_taken.text


async def test_a_fusion_customer_read_through_connecttoteams_can_be_written_back(client: httpx.AsyncClient, live, organisation) -> None:
    """A probe read a Fusion subscription's customer with getEnterprisesForReseller (services ["DIRECT_ROUTING"])
    and posted the services back with editEnterprise: 400 "unknown service(s) ['DIRECT_ROUTING']". A client that
    reads, changes and writes back an enterprise could not edit these."""
    sub = await onboard(client, live, organisation, tenant_index=2, count=1)
    token = await token_for(client, organisation.resellers[0])
    enterprises = (await client.get(f"/reseller/getEnterprisesForReseller/{organisation.resellers[0].reseller_id}",
                                    headers=bearer(token))).json()
    enterprise = next(e for e in enterprises if e["tenantId"] == sub.tenant["tenantId"])
    assert enterprise["services"] == ["DIRECT_ROUTING"]
    edited = await client.post("/reseller/editEnterprise", headers=bearer(token),
                               json={"enterpriseId": enterprise["enterpriseId"], "services": enterprise["services"]})
    assert edited.status_code == 200, edited.text
    # It is no service a reseller gives: a new enterprise cannot take it, nor an enterprise that does not have it.
    others = [e for e in enterprises if e["services"] != ["DIRECT_ROUTING"]]
    if others:
        refused = await client.post("/reseller/editEnterprise", headers=bearer(token),
                                    json={"enterpriseId": others[0]["enterpriseId"], "services": ["DIRECT_ROUTING"]})
        assert refused.status_code == 400 and "DIRECT_ROUTING" in refused.json()["message"], refused.text
