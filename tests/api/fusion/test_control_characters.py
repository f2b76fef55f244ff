"""Control characters in the Fusion family's stored texts (the hostile-input audit): a tenant's and a subscription's
`billingId`, a login's profile fields and username, the MS Teams administrator's `msPassword`. Each was taken and
stored (SQLite kept "a\\u0000b"; PostgreSQL answered a 400 naming no field); each is now a 400 naming the field,
on both backends, and nothing is written (read back through the API)."""

import pytest

from tests.api.fusion.support import BASE, bearer, make_world

# NUL, a line break, a terminal escape (colours), a C1 control (CSI), DEL.
HOSTILE = ("a\u0000b", "a\r\nb", "a\nb", "a\u001b[31mb", "a\u009bb", "a\u007fb")


@pytest.fixture
async def world(client, live, organisation):  # type: ignore[no-untyped-def]
    return await make_world(client, live, organisation)


def _refused(answer, field: str) -> str:  # type: ignore[no-untyped-def]
    assert answer.status_code == 400, answer.text
    reason = answer.json()["error"]["reason"]
    assert reason.startswith(f"{field}: ") and "control characters" in reason, reason
    return reason


async def test_a_billing_id_holding_control_characters_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    client, reseller = world.client, await world.as_("reseller")
    tenant = await world.create_tenant(name="Acme", billingId="B-1")
    url = f"{BASE}/tenants/{tenant['uuid']}"
    for bad in HOSTILE:
        _refused(await client.post(f"{BASE}/tenants", headers=reseller, json={"name": "Other", "billingId": bad}),
                 "billingId")
        _refused(await client.put(url, headers=reseller, json={"name": "Renamed", "billingId": bad}), "billingId")
        _refused(await client.post(f"{url}/subscriptions", headers=reseller, json={"name": "Teams", "billingId": bad}),
                 "billingId")
    listed = (await client.get(f"{BASE}/tenants", headers=reseller)).json()["tenants"]
    assert [(t["name"], t["billingId"]) for t in listed] == [("Acme", "B-1")]
    assert (await client.get(f"{url}/subscriptions", headers=reseller)).json()["subscriptions"] == []
    # Its column's length (200) is the limit; a billing id of printable text, spaces included, is taken as ever.
    assert (await client.put(url, headers=reseller, json={"name": "Acme", "billingId": "x" * 201})).status_code == 400
    taken = await client.post(f"{url}/subscriptions", headers=reseller, json={"name": "Teams", "billingId": "B 2/é" + "x" * 195})
    assert taken.status_code == 200 and taken.json()["billingId"] == "B 2/é" + "x" * 195, taken.text


PROFILE = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "mobile_number": "+32 470 12 34 56"}


def _hostile_profile(field: str) -> list[str]:
    """Control characters within, and at either end, of a value otherwise good for `field`."""
    good = PROFILE[field]
    return [good[:2] + bad[1:-1] + good[2:] for bad in HOSTILE] + [good + "\n", "\u0000" + good, good + "\r"]


async def test_a_profile_field_holding_control_characters_or_blank_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    client, reseller = world.client, await world.as_("reseller")
    me = "/api/v01/system/users/local"
    assert (await client.put(me, headers=reseller, json=PROFILE)).status_code == 200
    own_id = (await client.get(me, headers=reseller)).json()["id"]
    for field in PROFILE:
        for url in (me, f"/api/v01/system/users/{own_id}"):
            for bad in _hostile_profile(field):
                _refused(await client.put(url, headers=reseller, json={field: bad}), field)
            blank = await client.put(url, headers=reseller, json={field: "   "})
            assert blank.status_code == 400 and blank.json()["error"]["reason"].startswith(
                f"{field}: must not be blank"), blank.text
    stored = (await client.get(me, headers=reseller)).json()
    assert {k: stored[k] for k in PROFILE} == PROFILE
    # Trimmed as ever; "" clears a field.
    trimmed = await client.put(me, headers=reseller, json={"first_name": "  Ada  ", "last_name": ""})
    assert trimmed.status_code == 200 and (trimmed.json()["first_name"], trimmed.json()["last_name"]) == ("Ada", None)


async def test_an_admin_holding_control_characters_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    client, reseller = world.client, await world.as_("reseller")
    tenant = await world.create_tenant(name="Staffed")
    admins = f"{BASE}/tenants/{tenant['uuid']}/admins"
    new = {"username": "alice@staffed.example", "password": "Alice-Passw0rd", "first_name": "Alice"}
    for field in PROFILE:
        for bad in _hostile_profile(field):
            _refused(await client.post(admins, headers=reseller, json=new | {field: bad}), field)
    # A username's final line break passed its pattern (`$` matches before one) and was stored with it.
    for username in ("bob@staffed.example\n", "bob\u0000@staffed.example", "bob@staffed.example\r\n"):
        refused = await client.post(admins, headers=reseller, json=new | {"username": username})
        assert refused.status_code == 400 and refused.json()["error"]["reason"].startswith("username: "), refused.text
    assert (await client.get(admins, headers=reseller)).json()["admins"] == []
    created = await client.post(admins, headers=reseller, json=new)
    assert created.status_code == 200, created.text
    alice = f"{admins}/{created.json()['id']}"
    for field in PROFILE:
        for bad in _hostile_profile(field):
            _refused(await client.put(alice, headers=reseller, json={field: bad}), field)

    async def stored() -> dict:  # type: ignore[type-arg]
        [only] = (await client.get(admins, headers=reseller)).json()["admins"]
        return {k: only[k] for k in ("username", *PROFILE)}

    expected = {"username": "alice@staffed.example", "first_name": "Alice", "last_name": None, "email": None,
                "mobile_number": None}
    assert await stored() == expected
    # Alice herself (PUT system/users/{id}) is held to the same rule.
    token = bearer(await world.login("alice@staffed.example", "Alice-Passw0rd"))
    _refused(await client.put(f"/api/v01/system/users/{created.json()['id']}", headers=token,
                              json={"last_name": "Li\u0000ddell"}), "last_name")
    assert await stored() == expected


async def test_an_ms_teams_admin_password_holding_control_characters_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    client, reseller = world.client, await world.as_("reseller")
    tenant = await world.create_tenant(name="Acme")
    subscription = await world.create_subscription(tenant["uuid"])
    admin = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}/msteams/admins"
    for bad in ("Secret\u0000Passw0rd", "Secret-Passw0rd\r\n", "Secret\u001b[2JPassw0rd", "\u0085Secret"):
        reason = _refused(await client.post(admin, headers=reseller, json={
            "msUsername": "first@contoso.onmicrosoft.com", "msPassword": bad}), "msPassword")
        assert "Secret" not in reason and "Passw0rd" not in reason, reason  # the password is never quoted
    assert (await client.get(admin, headers=reseller)).status_code == 404
    set_ = await client.post(admin, headers=reseller, json={"msUsername": "first@contoso.onmicrosoft.com",
                                                            "msPassword": "Secret Passw0rd ok"})
    assert set_.status_code == 200, set_.text
    _refused(await client.post(admin, headers=reseller, json={"msUsername": "second@contoso.onmicrosoft.com",
                                                              "msPassword": "Secret\nPassw0rd"}), "msPassword")
    assert (await client.get(admin, headers=reseller)).json()["msUsername"] == "first@contoso.onmicrosoft.com"


async def test_a_username_or_tenant_uuid_holding_a_nul_is_one_that_does_not_exist(world) -> None:  # type: ignore[no-untyped-def]
    """A login with a NUL in its username fails as an unknown username does (401), a tenant uuid holding one is the
    404 of a tenant that does not exist, quoting it printably: on both backends (PostgreSQL refused the NUL in the
    lookup, a 400 naming nothing; SQLite's 404 echoed the raw NUL)."""
    client, reseller = world.client, await world.as_("reseller")
    login = await client.post("/api/v01/auth/login", json={"username": "a\u0000b", "password": "Whatever-1"})
    assert login.status_code == 401, login.text
    missing = await client.get(f"{BASE}/tenants/a%00b", headers=reseller)
    assert missing.status_code == 404, missing.text
    assert "a<U+0000>b" in missing.json()["error"]["reason"], missing.text
