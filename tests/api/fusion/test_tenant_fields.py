"""A Fusion tenant's fields as vendor-notes 2.3 gives them (`{name, billingId?, owner?, markup?}`): what a create or
an update refuses, before anything is written (probes of the Fusion API)."""

import pytest

from tests.api.fusion.support import BASE, make_world


@pytest.fixture
async def world(client, live, organisation):  # type: ignore[no-untyped-def]
    return await make_world(client, live, organisation)


async def test_a_blank_name_and_a_markup_out_of_range_are_refused(world) -> None:  # type: ignore[no-untyped-def]
    """A name of spaces only and a markup of 1e308 were accepted (200). The name must hold something; the markup is a
    percentage from 0 to 1000 (a finite number; JSON's 1e400 is refused as infinity before it gets here)."""
    client, reseller = world.client, await world.as_("reseller")
    tenant = await world.create_tenant(name="Acme", billingId="B-1", markup=12.5)
    url = f"{BASE}/tenants/{tenant['uuid']}"
    refusals = [({"name": "   "}, "name: must not be blank"), ({"name": "\t \u3000"}, "name: ")]
    refusals += [({"name": "Acme", "markup": markup}, "markup: must be a number from 0 to 1000")
                 for markup in (1e308, 1000.5, -1, -0.01)]
    for body, reason in refusals:
        for method, target in (("POST", f"{BASE}/tenants"), ("PUT", url)):
            refused = await client.request(method, target, headers=reseller, json=body)
            assert refused.status_code == 400, (method, body, refused.text)
            assert refused.json()["error"]["reason"].startswith(reason), (method, body, refused.text)
    listed = (await client.get(f"{BASE}/tenants", headers=reseller)).json()
    assert [(t["name"], t["billingId"], t["markup"]) for t in listed["tenants"]] == [("Acme", "B-1", 12.5)]
    # The bounds themselves are taken, and read back as given (a double-precision column on both backends).
    for markup in (0, 1000, 0.125, 999.99):
        taken = await client.put(url, headers=reseller, json={"name": "Acme", "billingId": "B-1", "markup": markup})
        assert taken.status_code == 200 and taken.json()["markup"] == markup, taken.text
        assert (await client.get(url, headers=reseller)).json()["markup"] == markup
    # A subscription's name is held to the same rule (spaces only were taken).
    for name in ("   ", "\t \u3000"):
        refused = await client.post(f"{url}/subscriptions", headers=reseller, json={"name": name})
        assert refused.status_code == 400 and refused.json()["error"]["reason"].startswith("name: "), refused.text
    assert (await client.get(f"{url}/subscriptions", headers=reseller)).json()["subscriptions"] == []


async def test_an_update_keeps_the_fields_it_leaves_out(world) -> None:  # type: ignore[no-untyped-def]
    """PUT .../tenants/{uuid} `{"name": ...}` cleared billingId and markup. Vendor-notes 2.3 gives the portal's PUT body
    `{name, billingId, markup: number}` (it sends them all) and no full-replace rule: a field left out is kept; null
    clears it."""
    client, reseller = world.client, await world.as_("reseller")
    tenant = await world.create_tenant(name="Acme", billingId="B-1", markup=12.5)
    url = f"{BASE}/tenants/{tenant['uuid']}"

    async def put(body: dict) -> dict:  # type: ignore[type-arg]
        answer = await client.put(url, headers=reseller, json=body)
        assert answer.status_code == 200, answer.text
        stored = (await client.get(url, headers=reseller)).json()
        assert {k: answer.json()[k] for k in ("name", "billingId", "markup")} == {
            k: stored[k] for k in ("name", "billingId", "markup")}
        return stored

    renamed = await put({"name": "Acme Europe"})
    assert (renamed["name"], renamed["billingId"], renamed["markup"]) == ("Acme Europe", "B-1", 12.5)
    marked = await put({"name": "Acme Europe", "markup": 20})
    assert (marked["billingId"], marked["markup"]) == ("B-1", 20)
    billed = await put({"name": "Acme Europe", "billingId": "B-2"})
    assert (billed["billingId"], billed["markup"]) == ("B-2", 20)
    cleared = await put({"name": "Acme Europe", "billingId": None, "markup": None})
    assert (cleared["billingId"], cleared["markup"]) == (None, None)
