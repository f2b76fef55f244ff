"""Issue 10 section 1: a subscription's licences (an enforced quota, single updates and bulk items alike), free
numbers as strings, the number stock and catalogues, and what teamsvoice does not do (501 or the truth)."""

import asyncio
import uuid
from datetime import timedelta

import pytest

from teamsvoice.core.clock import utcnow
from teamsvoice.domain.fusion.scope import org_uuid
from tests.api.fusion.support import BASE, make_world
from tests.api.fusion.users_support import Onboarded, onboard


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation)


async def test_licence_quota_is_enforced(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    users = [u["msTeams"] for u in await sub.users(4)]
    got = await client.get(f"{path}/licenses", headers=headers)
    assert got.status_code == 200 and got.json() == {"msTeamsUsers": {"assigned": 0, "inUse": 0},
                                                     "sipTrunkChannels": {"assigned": 0}}
    # No limit set (0): the first user is voice-enabled as before.
    first = await client.put(f"{path}/msteams/users/{users[0]['id']}", headers=headers, json={"phoneNumber": sub.numbers[0]})
    assert first.status_code in (200, 204), first.text
    # A resource account holds a number but takes no MS Teams user licence.
    queue = await client.post(f"{path}/msteams/resource_accounts", headers=headers, json={
        "accountType": "call-queue", "userPrincipalName": f"queue{uuid.uuid4().hex[:8]}@{sub.tenant['domain']}",
        "displayName": "Licence Queue", "location": "BE", "phoneNumber": sub.numbers[5]})
    assert queue.status_code == 200, queue.text
    for _ in range(200):
        accounts = (await client.get(f"{path}/msteams/resource_accounts", headers=headers)).json()["resourceAccounts"]
        if any(a.get("draas", {}).get("id") == queue.json()["id"] and a["draas"]["status"] == "active" for a in accounts):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the resource account did not settle")
    set_two = await client.put(f"{path}/licenses", headers=headers, json={"msTeamsUsers": {"assigned": 2}})
    assert set_two.status_code == 200 and set_two.json()["msTeamsUsers"] == {"assigned": 2, "inUse": 1}
    channels = await client.put(f"{path}/licenses", headers=headers, json={"sipTrunkChannels": {"assigned": 10}})
    assert channels.json() == {"msTeamsUsers": {"assigned": 2, "inUse": 1}, "sipTrunkChannels": {"assigned": 10}}
    detail = (await client.get(path, headers=headers)).json()
    assert detail["licenses"] == {"msTeamsUsers": 2, "sipTrunkChannels": 10}
    assert detail["numberOfUsers"] == 1  # the users `inUse` counts: the queue is none (it was counted there)
    second = await client.put(f"{path}/msteams/users/{users[1]['id']}/phone_number", headers=headers,
                              json={"phoneNumber": sub.numbers[1]})
    assert second.status_code in (200, 204), second.text
    # The third user would exceed the licence: 400 naming it, nothing recorded, Teams untouched, and the directory
    # too (the name sent with the number was changed before the quota was looked at).
    third = await client.put(f"{path}/msteams/users/{users[2]['id']}", headers=headers,
                             json={"phoneNumber": sub.numbers[2], "displayName": "Over Quota"})
    assert third.status_code == 400 and third.json()["error"]["code"] == 2060, third.text
    assert "msTeamsUsers licence" in third.json()["error"]["reason"]
    named = (await client.get(f"{path}/msteams/user/{users[2]['id']}", headers=headers)).json()["msTeams"]
    assert named["displayName"] == users[2]["displayName"]
    assert sub.numbers[2] not in await sub.teams_numbers(users[2]["id"])  # (the tenant outlives tests)
    assert sub.numbers[2] in (await client.get(f"{path}/free_numbers", headers=headers)).json()["freeNumbers"]
    # Changing the number of a user who already has one takes no new licence.
    moved = await client.put(f"{path}/msteams/users/{users[1]['id']}/phone_number", headers=headers,
                             json={"phoneNumber": sub.numbers[3]})
    assert moved.status_code in (200, 204), moved.text
    # Bulk items follow the same rule.
    bulk = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": "Over quota", "data": [
        {"upn": users[2]["userPrincipalName"], "displayName": "Over Quota", "number": sub.numbers[4]}]})
    assert bulk.status_code == 400, bulk.text
    assert bulk.json()["errors"][0]["error"]["code"] == 2060
    named = (await client.get(f"{path}/msteams/user/{users[2]['id']}", headers=headers)).json()["msTeams"]
    assert named["displayName"] == users[2]["displayName"]
    # The quota cannot go below what is in use; 0 removes the limit.
    below = await client.put(f"{path}/licenses", headers=headers, json={"msTeamsUsers": {"assigned": 1}})
    assert below.status_code == 400 and below.json()["error"]["code"] == 2061
    for bad in ({}, {"msTeamsUsers": 3}, {"msTeamsUsers": {"assigned": -1}}, {"msTeamsUsers": {"assigned": "3"}},
                {"msTeamsUsers": {"assigned": True}}, {"voice": {"assigned": 1}}, {"msTeamsUsers": {"assigned": 1, "x": 1}}):
        refused = await client.put(f"{path}/licenses", headers=headers, json=bad)
        assert refused.status_code == 400 and refused.json()["error"]["reason"], bad
    unlimited = await client.put(f"{path}/licenses", headers=headers, json={"msTeamsUsers": {"assigned": 0}})
    assert unlimited.json()["msTeamsUsers"] == {"assigned": 0, "inUse": 2}
    third = await client.put(f"{path}/msteams/users/{users[2]['id']}", headers=headers, json={"phoneNumber": sub.numbers[2]})
    assert third.status_code in (200, 204), third.text


async def test_stock_catalogues_and_what_is_not_done(client, live, organisation) -> None:
    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant()
    subscription = await world.create_subscription(tenant["uuid"])
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"
    reseller, distributor = await world.as_("reseller"), await world.as_("distributor")
    added = await client.post(f"{path}/numbers", headers=reseller, json={"countryCode": "+32", "ranges": [[22100100, 22100101]]})
    assert added.status_code == 200, added.text
    free = await client.get(f"{path}/free_numbers", headers=reseller)
    assert free.json() == {"freeNumbers": ["+3222100100", "+3222100101"], "page": 1, "pages": 1, "results": 2}

    codes = (await client.get(f"{BASE}/public/country_codes", headers=reseller)).json()["countryCodes"]
    assert {"isoCode": "BE", "countryCode": "+32", "name": "Belgium"} in codes
    assert {"isoCode": "US", "countryCode": "+1", "name": "United States"} in codes
    owners = (await client.get(f"{BASE}/public/owners", headers=distributor, params={"level": "tenant"})).json()["owners"]
    assert [(o["type"], o["name"]) for o in owners] == [("distributor", "Demo Master Reseller"),
                                                         ("reseller", "Northwind Telecom"), ("reseller", "Tailspin Voice")]
    assert owners[1]["uuid"] == org_uuid(organisation.resellers[0].reseller_id)
    for_resellers = (await client.get(f"{BASE}/public/owners", headers=distributor, params={"level": "reseller"})).json()
    assert [o["type"] for o in for_resellers["owners"]] == ["distributor"]
    assert (await client.get(f"{BASE}/public/owners", headers=reseller, params={"level": "reseller"})).json() == {"owners": []}
    assert (await client.get(f"{BASE}/public/owners", headers=reseller, params={"level": "system"})).status_code == 400

    # No provider number stock, entitlements, rating or quarantine in teamsvoice: the truth, empty.
    truths = {f"{BASE}/public/rate_plans": {"ratePlans": []},
              f"{BASE}/public/entitlement_types": {"entitlementTypes": []},
              f"{BASE}/public/number_inventory/ranges": {"ranges": []},
              f"{BASE}/public/number_inventory/suggestion?numberType=geographic&countryCode=%2B32&rangeSize=10": {"suggestions": []},
              f"{path}/entitlements": {"entitlements": []},
              f"{path}/number_inventory?status=reserved": {"numbers": [], "page": 1, "pages": 1, "results": 0},
              f"{path}/number_inventory?status=disconnected": {"numbers": [], "page": 1, "pages": 1, "results": 0},
              f"{path}/msteams/oc/numbers": {"numbers": [], "page": 1, "pages": 1, "results": 0}}
    for url, expected in truths.items():
        answer = await client.get(url, headers=reseller)
        assert answer.status_code == 200 and answer.json() == expected, (url, answer.text)
    # Disconnected: the subscription's numbers in quarantine after offboarding (voice state, issue 11), each with
    # its own id, the one `.../numbers` shows (it had the quarantine's), null for a number in no inventory.
    async def quarantine(session) -> None:  # type: ignore[no-untyped-def]
        from teamsvoice.domain.fusion.models import FusionSubscription
        from teamsvoice.domain.voice_state.models import NumberQuarantine

        enterprise_id = (await session.get(FusionSubscription, subscription["id"])).enterprise_id
        session.add(NumberQuarantine(enterprise_id=enterprise_id, e164="+3222100199", previous_holder="gone@x.example",
                                     until=utcnow() + timedelta(days=30)))
        session.add(NumberQuarantine(enterprise_id=enterprise_id, e164="+3222100101", previous_holder="left@x.example",
                                     until=utcnow() + timedelta(days=30)))
        session.add(NumberQuarantine(enterprise_id=enterprise_id, e164="+3222100198", previous_holder="old@x.example",
                                     until=utcnow() - timedelta(days=1)))  # over: free again

    await world._with_session(quarantine)
    resting = (await client.get(f"{path}/number_inventory", headers=reseller, params={"status": "disconnected"})).json()
    items = resting["numbers"] if len(resting["numbers"]) == 2 else [{}, {}]
    assert resting == {"numbers": [
        {"id": number_id, "countryCode": "+32", "nsn": nsn, "numberType": "geographic", "region": None,
         "state": "disconnected", "stateUpdatedOn": item.get("stateUpdatedOn"), "freeOn": item.get("freeOn")}
        for item, nsn, number_id in zip(items, ("22100101", "22100199"), (added.json()["numbers"][1]["id"], None))],
        "page": 1, "pages": 1, "results": 2}, resting
    assert all(item["freeOn"] > item["stateUpdatedOn"] for item in items)
    assert (await client.get(f"{path}/number_inventory", headers=reseller,
                             params={"status": "disconnected", "search": "0198"})).json()["results"] == 0
    assert (await client.get(f"{path}/number_inventory", headers=reseller, params={"status": "reserved"})).json()["results"] == 0
    for url in (f"{path}/number_inventory", f"{path}/number_inventory?status=free",
                f"{BASE}/public/number_inventory/suggestion?countryCode=%2B999",
                f"{BASE}/public/number_inventory/suggestion?numberType=fancy"):
        assert (await client.get(url, headers=reseller)).status_code == 400, url
    assert (await client.put(f"{path}/entitlements/7", headers=reseller, json={"entitlement": 3})).status_code == 404
    # What teamsvoice does not do: 501 in Fusion's envelope, never a bare 404.
    for method, url in (("GET", f"{path}/porting/requests"), ("POST", f"{path}/porting/requests"),
                        ("POST", f"{path}/entitlements"), ("GET", f"{BASE}/public/postal_codes")):
        answer = await client.request(method, url, headers=reseller, json={})
        assert answer.status_code == 501, (url, answer.text)
        assert answer.json()["error"]["code"] == 1501 and "not implemented" in answer.json()["error"]["reason"]
    # The contract's auth routes teamsvoice has not (vendor-notes 2.2): 501 too, with or without a token (they
    # answered 404 code 1004).
    for method, url, body in (("POST", "/api/v01/auth/2fa", {"2fa_payload": "x", "code": "123456"}),
                              ("POST", "/api/v01/auth/reset-password", {"username": "reseller"}),
                              ("PUT", "/api/v01/auth/reset-password/some-token", {"password": "A-long-passw0rd"})):
        for token in (reseller, {}):
            answer = await client.request(method, url, headers=token, json=body)
            assert answer.status_code == 501, (url, answer.text)
            assert answer.json()["error"]["code"] == 1501 and "not implemented" in answer.json()["error"]["reason"]
    # Scope still applies first: another reseller's subscription does not exist for it.
    other = await world.as_("other-reseller")
    assert (await client.get(f"{path}/licenses", headers=other)).status_code == 404
    assert (await client.get(f"{path}/porting/requests", headers=other)).status_code == 404


async def test_adopt_and_restore_keep_to_the_licence_quota(sub: Onboarded) -> None:
    """Numbers of the inventory a Teams administrator assigned by hand are adopted into the records (teamsvoice's
    voice-state API, which a customer's own tenant login may call) only within the subscription's licences, and a
    reseller's restore of a voice-state document the same: the one that would voice-enable one user too many is
    refused naming the licence, and nothing of it is recorded. Both took licences past the quota (a probe: inUse 2,
    then 3, of 1)."""
    from teamsvoice.microsoft.connector import MicrosoftConnector

    client, path, headers, world = sub.world.client, sub.path, sub.headers, sub.world
    api, tenant_id = "/api/teamsvoice/v1", sub.tenant["tenantId"]
    users = [u["msTeams"] for u in await sub.users(4)]
    upns = [u["userPrincipalName"].lower() for u in users]
    assert (await client.put(f"{path}/licenses", headers=headers, json={"msTeamsUsers": {"assigned": 1}})).status_code == 200
    connector = MicrosoftConnector(world.live.settings)
    try:
        for user, number in zip(users[:2], sub.numbers[:2]):  # by hand, in Teams
            await connector.connect(tenant_id).cmdlets.run("Set-CsPhoneNumberAssignment", {
                "Identity": user["userPrincipalName"], "PhoneNumber": number, "PhoneNumberType": "DirectRouting"})
    finally:
        await connector.aclose()

    async def in_use() -> int:
        return (await client.get(f"{path}/licenses", headers=headers)).json()["msTeamsUsers"]["inUse"]

    customer = "quota-tenant-admin"
    await world.tenant_login(path.split("/tenants/")[1].split("/")[0], customer)
    adopt = [f"number:{number}" for number in sub.numbers[:2]]
    both = await client.post(f"{api}/tenants/{tenant_id}/apply", headers=await world.as_(customer),
                             json={"adopt": adopt, "converge": False})
    assert both.status_code == 400 and "msTeamsUsers licence exceeded" in both.json()["message"], both.text
    assert await in_use() == 0  # all or nothing: neither number recorded
    one = await client.post(f"{api}/tenants/{tenant_id}/apply", headers=await world.as_(customer),
                            json={"adopt": adopt[:1], "converge": False})
    assert one.status_code == 202, one.text
    assert await in_use() == 1

    exported = (await client.get(f"{api}/tenants/{tenant_id}/export", headers=headers)).json()
    assert [(u["userPrincipalName"], u["phoneNumber"]) for u in exported["users"]] == [(upns[0], sub.numbers[0])]
    more = [{"userPrincipalName": upn, "phoneNumber": number, "voiceRoutingPolicy": None, "callingEnabled": True}
            for upn, number in zip(upns[2:], sub.numbers[2:4])]
    restored = await client.post(f"{api}/tenants/{tenant_id}/restore", headers=headers,
                                 json=exported | {"users": [*exported["users"], *more]})
    assert restored.status_code == 400 and "msTeamsUsers licence exceeded" in restored.json()["message"], restored.text
    assert await in_use() == 1
    assert (await client.get(f"{api}/tenants/{tenant_id}/export", headers=headers)).json() == exported
    # Within the licences (the same user, another number: no new licence), the restore is taken.
    moved = exported | {"users": [exported["users"][0] | {"phoneNumber": sub.numbers[2]}]}
    assert (await client.post(f"{api}/tenants/{tenant_id}/restore", headers=headers, json=moved)).status_code == 200
    assert await in_use() == 1


async def test_user_limit_and_ms_teams_users_are_one_figure(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    """ConnecttoTeams' userLimit of the enterprise backing a subscription is its msTeamsUsers.assigned, whichever
    family sets it. editEnterprise set userLimit alone (Fusion went on enforcing the old figure, configureUser the
    new one), and below the users voice-enabled, which Fusion's own route refuses (2061)."""
    from teamsvoice.domain.fusion.models import FusionSubscription
    from teamsvoice.domain.provisioning.models import TeamsVoiceUser
    from tests.support.ctt import bearer, token_for
    from tests.support.database import in_session

    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant()
    subscription = await world.create_subscription(tenant["uuid"])
    path, reseller = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}", await world.as_("reseller")
    token = await token_for(client, organisation.resellers[0])

    async def two_voice_enabled(session) -> int:  # type: ignore[no-untyped-def]
        enterprise_id = (await session.get(FusionSubscription, subscription["id"])).enterprise_id
        session.add_all([TeamsVoiceUser(enterprise_id=enterprise_id, user_principal_name=f"u{i}@one.example",
                                        phone_number=f"+3222100{i:03d}") for i in range(2)])
        return enterprise_id

    enterprise_id = await in_session(live, two_voice_enabled)

    async def both() -> tuple[dict, int]:
        licences = (await client.get(f"{path}/licenses", headers=reseller)).json()["msTeamsUsers"]
        enterprises = (await client.get(f"/reseller/getEnterprisesForReseller/{organisation.resellers[0].reseller_id}",
                                        headers=bearer(token))).json()
        return licences, next(e["userLimit"] for e in enterprises if e["enterpriseId"] == enterprise_id)

    edited = await client.post("/reseller/editEnterprise", headers=bearer(token),
                               json={"enterpriseId": enterprise_id, "userLimit": 5})
    assert edited.status_code == 200, edited.text
    assert await both() == ({"assigned": 5, "inUse": 2}, 5)
    # Fusion's licences set userLimit too (the other direction).
    assert (await client.put(f"{path}/licenses", headers=reseller, json={"msTeamsUsers": {"assigned": 3}})).status_code == 200
    assert await both() == ({"assigned": 3, "inUse": 2}, 3)
    # Below the users voice-enabled: refused naming userLimit, neither figure changed.
    below = await client.post("/reseller/editEnterprise", headers=bearer(token),
                              json={"enterpriseId": enterprise_id, "userLimit": 1})
    assert below.status_code == 400 and "userLimit: 1 is below the 2 MS Teams users" in below.json()["message"], below.text
    assert await both() == ({"assigned": 3, "inUse": 2}, 3)
    unlimited = await client.post("/reseller/editEnterprise", headers=bearer(token),
                                  json={"enterpriseId": enterprise_id, "userLimit": 0})
    assert unlimited.status_code == 200, unlimited.text
    assert await both() == ({"assigned": 0, "inUse": 2}, 0)


async def test_numbers_in_quarantine_keep_their_subscription(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    """A subscription whose customer's numbers rest in quarantine is deleted only after the last end (2021 naming
    it). Its deletion took the quarantine rows with it: a number in no inventory was free for anyone at once."""
    from sqlalchemy import update

    from teamsvoice.domain.fusion.models import FusionSubscription
    from teamsvoice.domain.voice_state.models import NumberQuarantine
    from tests.support.database import in_session

    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant()
    subscription = await world.create_subscription(tenant["uuid"])
    path, reseller = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}", await world.as_("reseller")
    ends = [utcnow() + timedelta(days=3), utcnow() + timedelta(days=30)]

    async def quarantine(session) -> None:  # type: ignore[no-untyped-def]
        enterprise_id = (await session.get(FusionSubscription, subscription["id"])).enterprise_id
        session.add_all([NumberQuarantine(enterprise_id=enterprise_id, e164=f"+3222100{i}99", previous_holder="gone@x.example",
                                          until=until) for i, until in enumerate(ends)])
        session.add(NumberQuarantine(enterprise_id=enterprise_id, e164="+3222100298", previous_holder="old@x.example",
                                     until=utcnow() - timedelta(days=1)))  # over

    await in_session(live, quarantine)
    assert (await client.get(path, headers=reseller)).json()["isDeletable"] is False
    refused = await client.delete(path, headers=reseller)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 2021, refused.text
    assert f"2 of its number(s) are in quarantine, the last until {ends[1]:%Y-%m-%d %H:%M} UTC" in refused.json()["error"]["reason"]
    assert (await client.delete(f"{BASE}/tenants/{tenant['uuid']}", headers=reseller)).json()["error"]["code"] == 2020

    async def over(session) -> None:  # type: ignore[no-untyped-def]
        await session.execute(update(NumberQuarantine).values(until=utcnow() - timedelta(seconds=1)))

    await in_session(live, over)
    assert (await client.delete(path, headers=reseller)).status_code == 200
    assert (await client.delete(f"{BASE}/tenants/{tenant['uuid']}", headers=reseller)).status_code == 200
