"""One rule for a licence count wherever it is set (`licences.check_count`: 0, no limit, to MAX_LICENCES): a probe
found POST .../subscriptions accepting msTeamsUsers 2**40 and sipTrunkChannels 2**40 (PostgreSQL's 32-bit column
then answered a generic out-of-range 400) while PUT .../licenses refused above 1,000,000 naming the rule."""

from teamsvoice.domain.fusion.licences import MAX_LICENCES
from tests.api.fusion.support import BASE, make_world


async def test_licence_counts_keep_one_rule(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    world = await make_world(client, live, organisation)
    reseller = await world.as_("reseller")
    tenant = await world.create_tenant()
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions"
    rule = f"must be an integer from 0 (no limit) to {MAX_LICENCES}"
    for key in ("msTeamsUsers", "sipTrunkChannels"):
        for count in (2**40, MAX_LICENCES + 1):
            refused = await client.post(path, headers=reseller, json={"name": "Big", "licenses": {key: count}})
            assert refused.status_code == 400 and refused.json()["error"]["reason"] == f"licenses.{key}: {rule}", refused.text
        refused = await client.put(f"{path}/{(await world.create_subscription(tenant['uuid'], name=key))['id']}/licenses",
                                   headers=reseller, json={key: {"assigned": 2**40}})
        assert refused.status_code == 400 and refused.json()["error"]["reason"] == f"{key}.assigned: {rule}", refused.text
    assert [s["name"] for s in (await client.get(path, headers=reseller)).json()["subscriptions"]] == [
        "msTeamsUsers", "sipTrunkChannels"]  # nothing recorded by the refusals
    largest = await client.post(path, headers=reseller, json={
        "name": "Largest", "licenses": {"msTeamsUsers": MAX_LICENCES, "sipTrunkChannels": MAX_LICENCES}})
    assert largest.status_code == 200, largest.text
    assert largest.json()["licenses"] == {"msTeamsUsers": MAX_LICENCES, "sipTrunkChannels": MAX_LICENCES}
