"""A number in quarantine (its user offboarded, or its tenant unlinked) is neither assigned nor free: free_numbers,
the subscription's counts and the numbers list say so (one rule, `inventory.repository.free_in_subscription`, the
one `ownership.require_free` applies), it cannot be deleted from its inventory before the end (so no other
customer adds it), and a quarantined number in no inventory is no other customer's to add either."""

from datetime import timedelta

from teamsvoice.core.clock import utcnow
from tests.api.fusion.support import BASE, make_world


async def test_a_number_in_quarantine_is_not_free_and_stays(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    world = await make_world(client, live, organisation)
    reseller, other = await world.as_("reseller"), await world.as_("other-reseller")
    tenant = await world.create_tenant()
    subscription = await world.create_subscription(tenant["uuid"])
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"
    added = await client.post(f"{path}/numbers", headers=reseller, json={"countryCode": "+32", "ranges": [[22100300, 22100302]]})
    assert added.status_code == 200, added.text
    other_tenant = await world.create_tenant("other-reseller", name="Globex")
    other_sub = await world.create_subscription(other_tenant["uuid"], "other-reseller")
    other_path = f"{BASE}/tenants/{other_tenant['uuid']}/subscriptions/{other_sub['id']}"
    ends = utcnow() + timedelta(days=30)

    async def quarantine(session) -> None:  # type: ignore[no-untyped-def]
        from teamsvoice.domain.fusion.models import FusionSubscription
        from teamsvoice.domain.voice_state.models import NumberQuarantine

        enterprise_id = (await session.get(FusionSubscription, subscription["id"])).enterprise_id
        for e164, until in (("+3222100301", ends), ("+3222100302", utcnow() - timedelta(days=1)),  # over: free again
                            ("+3222100399", ends)):  # a number in no inventory (a ConnecttoTeams user's, offboarded)
            session.add(NumberQuarantine(enterprise_id=enterprise_id, e164=e164, previous_holder="gone@x.example", until=until))

    await world._with_session(quarantine)
    free = await client.get(f"{path}/free_numbers", headers=reseller)
    assert free.json() == {"freeNumbers": ["+3222100300", "+3222100302"], "page": 1, "pages": 1, "results": 2}, free.text
    counts = (await client.get(path, headers=reseller)).json()["phoneNumbers"]
    assert (counts["total"], counts["free"], counts["linkedToUsers"]) == (3, 2, 0), counts
    listed = (await client.get(f"{path}/numbers", headers=reseller, params={"search": "0301"})).json()["numbers"]
    assert [(n["fullNumber"], n["assigned"], n["freeOn"][:10]) for n in listed] == [
        ("+3222100301", False, ends.date().isoformat())], listed
    assert "freeOn" not in (await client.get(f"{path}/numbers", headers=reseller, params={"search": "0302"})).json()["numbers"][0]

    # Its delete is refused, naming the quarantine and its end; all or nothing.
    for wanted in (["22100301"], ["22100300", "22100301"]):
        refused = await client.request("DELETE", f"{path}/numbers", headers=reseller,
                                       json={"numbers": [{"countryCode": "+32", "nsn": n} for n in wanted]})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == 1009, refused.text
        reason = refused.json()["error"]["reason"]
        assert "+3222100301 is in quarantine" in reason and f"until {ends:%Y-%m-%d}" in reason, reason
    assert (await client.get(f"{path}/numbers", headers=reseller)).json()["results"] == 3
    # So another customer cannot add it; nor the quarantined number in no inventory.
    for nsn in ("22100301", "22100399"):
        taken = await client.post(f"{other_path}/numbers", headers=other, json={"countryCode": "+32", "numbers": [nsn]})
        assert taken.status_code == 400 and "already belong" in taken.json()["error"]["reason"], (nsn, taken.text)
    # A number out of quarantine is deleted as before.
    deleted = await client.request("DELETE", f"{path}/numbers", headers=reseller,
                                   json={"numbers": [{"countryCode": "+32", "nsn": "22100302"}]})
    assert deleted.status_code == 200 and deleted.json() == {"deleted": ["+3222100302"]}, deleted.text
