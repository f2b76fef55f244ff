"""What Microsoft would refuse (or what could never be applied) is refused when asked, with a 400 naming it, and
nothing is recorded or changed: a number for a user without Teams Phone, a resource account on a domain the tenant
has not verified, a template naming groups, licences or a voice routing policy the linked tenant lacks."""

import pytest

from tests.api.fusion.support import BASE
from tests.api.fusion.users_support import Onboarded, onboard

MCOEV = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation)


async def test_a_user_without_teams_phone_gets_no_number_unless_the_request_gives_the_licence(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    user = next(u["msTeams"] for u in await sub.users(20, teams_phone=False) if u["msTeams"]["voiceEnabled"] == "no")
    assert user["licenses"] == []
    check = await client.get(f"{path}/msteams/users/{user['id']}/check", headers=headers)
    assert check.json() == {"voiceEnabled": False}
    for url in (f"{path}/msteams/users/{user['id']}", f"{path}/msteams/users/{user['id']}/phone_number"):
        refused = await client.put(url, headers=headers, json={"phoneNumber": sub.numbers[0]})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == 2088
        assert "Teams Phone" in refused.json()["error"]["reason"] and "MCOEV" in refused.json()["error"]["reason"]
    # Nothing recorded nor changed: no number in teamsvoice, in the subscription's stock or in Teams.
    got = (await client.get(f"{path}/msteams/user/{user['id']}", headers=headers)).json()
    assert (got.get("draas") or {}).get("phoneNumber") is None and got["msTeams"]["licenses"] == []
    assert await sub.teams_numbers(user["id"]) == []
    # A licence taken away in the same request counts too (null: remove them all).
    licensed = (await sub.users(1))[0]["msTeams"]
    dropped = await client.put(f"{path}/msteams/users/{licensed['id']}", headers=headers,
                               json={"phoneNumber": sub.numbers[1], "licenses": None})
    assert dropped.status_code == 400 and dropped.json()["error"]["code"] == 2088, dropped.text

    # With Teams Phone in the same request, the licence is assigned first and the number follows.
    given = await client.put(f"{path}/msteams/users/{user['id']}", headers=headers,
                             json={"phoneNumber": sub.numbers[0], "licenses": [MCOEV]})
    assert given.status_code == 200, given.text
    got = (await client.get(f"{path}/msteams/user/{user['id']}", headers=headers)).json()
    assert got["draas"]["phoneNumber"] == sub.numbers[0] and got["draas"]["status"] == "active"
    assert got["msTeams"]["voiceEnabled"] == "yes" and await sub.teams_numbers(user["id"]) == [sub.numbers[0]]
    await _leave_as_found(sub, user["id"])

    # A bulk item the same: refused alone, taken with a template that gives Teams Phone (the default one).
    item = {"upn": user["userPrincipalName"], "displayName": user["displayName"], "number": sub.numbers[2]}
    bulk = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": "No licence", "data": [item]})
    assert bulk.status_code == 400, bulk.text
    assert bulk.json()["errors"][0]["error"]["code"] == 2088 and await sub.teams_numbers(user["id"]) == []
    bulk = await client.put(f"{path}/msteams/users/bulk", headers=headers,
                            json={"name": "Default template", "data": [item | {"template": "Default"}]})
    assert bulk.status_code == 200, bulk.text
    assert await sub.teams_numbers(user["id"]) == [sub.numbers[2]]
    await _leave_as_found(sub, user["id"])


async def _leave_as_found(sub: Onboarded, user_id: str) -> None:
    """The emulated tenant serves both backends: the unlicensed user is left as it was found."""
    client, path, headers = sub.world.client, sub.path, sub.headers
    assert (await client.put(f"{path}/msteams/users/{user_id}", headers=headers, json={"phoneNumber": None})).status_code == 204
    assert (await client.put(f"{path}/msteams/users/{user_id}/licenses", headers=headers,
                             json={"licenses": []})).status_code == 204


async def test_a_resource_account_on_an_unverified_domain_is_refused_at_once(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    body = {"accountType": "auto-attendant", "userPrincipalName": "probe_aa@notmine.example", "displayName": "Probe AA",
            "location": "BE"}
    refused = await client.post(f"{path}/msteams/resource_accounts", headers=headers, json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["reason"] == (
        "userPrincipalName: notmine.example is not a verified domain of the MS Teams tenant")
    listed = (await client.get(f"{path}/msteams/resource_accounts", headers=headers)).json()["resourceAccounts"]
    assert not [a for a in listed if a["msTeams"].get("userPrincipalName", "").startswith("probe_aa")]
    accepted = await client.post(f"{path}/msteams/resource_accounts", headers=headers,
                                 json={**body, "userPrincipalName": f"probe_aa@{sub.tenant['domain']}"})
    assert accepted.status_code == 200, accepted.text


async def test_template_names_are_checked_against_the_linked_tenant(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    url = f"{path}/msteams/templates"
    bad = {"name": "Probe", "productKey": "probe", "groups": ["NoSuchGroup"], "licenses": ["NOPE"], "vrp": "NoSuchVrp"}
    refused = await client.post(url, headers=headers, json=bad)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["reason"] == (
        "Not in the MS Teams tenant: group NoSuchGroup, license NOPE, voice routing policy NoSuchVrp")
    assert [t["name"] for t in (await client.get(url, headers=headers)).json()["templates"]] == ["Default"]
    group = (await client.get(f"{path}/msteams/groups", headers=headers)).json()["groups"][0]
    good = {"name": "Probe", "productKey": "probe", "groups": [group["displayName"]], "licenses": ["MCOEV"],
            "vrp": "Global"}
    created = await client.post(url, headers=headers, json=good)
    assert created.status_code == 201, created.text
    changed = await client.put(f"{url}/{created.json()['id']}", headers=headers, json={"licenses": [MCOEV, "NOPE"]})
    assert changed.status_code == 400 and changed.json()["error"]["reason"] == "Not in the MS Teams tenant: license NOPE"
    assert (await client.get(f"{url}/{created.json()['id']}", headers=headers)).json()["licenses"] == ["MCOEV"]

    # A subscription not linked to a tenant has nothing to check them against: they are checked when applied.
    tenant = await sub.world.create_tenant()
    unlinked = await sub.world.create_subscription(tenant["uuid"])
    kept = await client.post(f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{unlinked['id']}/msteams/templates",
                             headers=headers, json=bad)
    assert kept.status_code == 201, kept.text

