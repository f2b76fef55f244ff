"""Fusion's `groups/{uuid}/licenses?detailed=bool` (06_licenses) and the `number_inventory_type` of a group or a
subscription (08.1_numbers): a group is a node of the organisation tree the login controls; one outside (above,
beside, unknown) is "not found"; a group's licences are those of the subscriptions under it; the inventory type,
undocumented in its body, answers 501 saying so. Migration 0020 grants the new roles to existing logins."""

import importlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from teamsvoice.domain.fusion.roles import PROFILES
from teamsvoice.domain.fusion.scope import org_uuid
from tests.api.fusion.support import BASE, make_world
from tests.conftest import BACKENDS
from tests.support.migrations import database_at

migration = importlib.import_module("teamsvoice.migrations.versions.0020_fusion_group_reads")


@pytest.fixture
async def world(client, live, organisation):  # type: ignore[no-untyped-def]
    return await make_world(client, live, organisation)


async def _subscription(world, tenant_uuid: str, who: str, name: str,  # type: ignore[no-untyped-def]
                        users: int, channels: int) -> dict:
    licenses = {"msTeamsUsers": users, "sipTrunkChannels": channels}
    created = await world.client.post(f"{BASE}/tenants/{tenant_uuid}/subscriptions", headers=await world.as_(who),
                                      json={"name": name, "licenses": licenses})
    assert created.status_code == 200, created.text
    return created.json()


async def _voice_users(world, subscription_id: int, numbers: list[str | None]) -> None:  # type: ignore[no-untyped-def]
    """Teams users of the subscription's enterprise, holding the numbers given (None: no number)."""
    async def add(session) -> None:  # type: ignore[no-untyped-def]
        from teamsvoice.domain.fusion.models import FusionSubscription
        from teamsvoice.domain.provisioning.models import TeamsVoiceUser

        enterprise_id = (await session.get(FusionSubscription, subscription_id)).enterprise_id
        for n, number in enumerate(numbers):
            session.add(TeamsVoiceUser(enterprise_id=enterprise_id, user_principal_name=f"u{n}@acme.example",
                                       phone_number=number))

    await world._with_session(add)


async def test_group_licences_sum_the_subscriptions_under_the_group(world) -> None:  # type: ignore[no-untyped-def]
    client, organisation = world.client, world.organisation
    reseller, distributor, system, other = [await world.as_(who) for who in ("reseller", "distributor", "system",
                                                                             "other-reseller")]
    northwind, tailspin = (org_uuid(r.reseller_id) for r in organisation.resellers)
    master = org_uuid(organisation.master.reseller_id)
    acme, globex = await world.create_tenant(name="Acme"), await world.create_tenant(name="Globex")
    initech = await world.create_tenant("other-reseller", name="Initech")
    teams = await _subscription(world, acme["uuid"], "reseller", "Teams", 10, 6)
    globex_teams = await _subscription(world, globex["uuid"], "reseller", "Globex Teams", 5, 4)
    initech_teams = await _subscription(world, initech["uuid"], "other-reseller", "Initech Teams", 7, 0)
    await _voice_users(world, teams["id"], ["+3222990001", "+3222990002", None])
    await _voice_users(world, initech_teams["id"], ["+3222990003"])

    got = await client.get(f"{BASE}/groups/{northwind}/licenses", headers=reseller)
    assert got.status_code == 200, got.text
    assert got.json() == {"msTeamsUsers": {"assigned": 15, "inUse": 2}, "sipTrunkChannels": {"assigned": 10},
                          "group": {"type": "reseller", "uuid": northwind, "name": "Northwind Telecom"}}
    detailed = await client.get(f"{BASE}/groups/{northwind}/licenses", headers=reseller, params={"detailed": "true"})
    assert detailed.status_code == 200, detailed.text
    assert detailed.json()["subscriptions"] == [
        {"id": teams["id"], "name": "Teams", "tenant": {"uuid": acme["uuid"], "name": "Acme"},
         "msTeamsUsers": {"assigned": 10, "inUse": 2}, "sipTrunkChannels": {"assigned": 6}},
        {"id": globex_teams["id"], "name": "Globex Teams", "tenant": {"uuid": globex["uuid"], "name": "Globex"},
         "msTeamsUsers": {"assigned": 5, "inUse": 0}, "sipTrunkChannels": {"assigned": 4}}]
    plain = await client.get(f"{BASE}/groups/{northwind}/licenses", headers=reseller, params={"detailed": "false"})
    assert plain.json() == got.json()
    # Above: the distributor's group holds both resellers' subscriptions; the system root the same (no tenant of
    # its own); channels: one subscription without a limit (0) makes the total no limit.
    whole = {"msTeamsUsers": {"assigned": 22, "inUse": 3}, "sipTrunkChannels": {"assigned": 0}}
    above = (await client.get(f"{BASE}/groups/{master}/licenses", headers=distributor)).json()
    assert above == {**whole, "group": {"type": "distributor", "uuid": master, "name": "Demo Master Reseller"}}
    root = (await client.get("/api/v01/system/users/local", headers=system)).json()["admin_of"][0]["reference"]
    assert {k: v for k, v in (await client.get(f"{BASE}/groups/{root}/licenses", headers=system)).json().items()
            if k != "group"} == whole
    assert (await client.get(f"{BASE}/groups/{northwind}/licenses", headers=distributor)).json() == got.json()
    # A subscription without a limit makes the group's total no limit (0), as on a subscription.
    unlimited = await client.put(f"{BASE}/tenants/{globex['uuid']}/subscriptions/{globex_teams['id']}/licenses",
                                 headers=reseller, json={"msTeamsUsers": {"assigned": 0}})
    assert unlimited.status_code == 200, unlimited.text
    after = (await client.get(f"{BASE}/groups/{northwind}/licenses", headers=reseller)).json()
    assert after["msTeamsUsers"] == {"assigned": 0, "inUse": 2}
    # The other reseller's group: its own subscription only.
    assert (await client.get(f"{BASE}/groups/{tailspin}/licenses", headers=other)).json()["msTeamsUsers"] == {
        "assigned": 7, "inUse": 1}

    # Outside the login's control (beside, above, unknown, another instance): 404, as for what does not exist.
    for url, headers in ((f"{BASE}/groups/{northwind}/licenses", other),
                         (f"{BASE}/groups/{master}/licenses", reseller),
                         (f"{BASE}/groups/{root}/licenses", distributor),
                         (f"{BASE}/groups/{acme['uuid']}/licenses", reseller),
                         (f"{BASE}/groups/not-a-uuid/licenses", system),
                         (f"/api/v01/draas/other/groups/{northwind}/licenses", reseller)):
        refused = await client.get(url, headers=headers)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == 1004, (url, refused.text)
    assert "not found" in (await client.get(f"{BASE}/groups/{northwind}/licenses", headers=other)).text
    # A tenant login holds no group role: 403 naming it.
    await world.tenant_login(acme["uuid"], "acme-admin")
    denied = await client.get(f"{BASE}/groups/{northwind}/licenses", headers=await world.as_("acme-admin"))
    assert denied.status_code == 403 and "groups.instance.licenses.list" in denied.json()["error"]["reason"]
    # A `detailed` that is no boolean: 400 naming it; out of scope it stays 404.
    for bad in ("maybe", "", "2"):
        refused = await client.get(f"{BASE}/groups/{northwind}/licenses", headers=reseller, params={"detailed": bad})
        assert refused.status_code == 400 and "detailed" in refused.json()["error"]["reason"], (bad, refused.text)
    hidden = await client.get(f"{BASE}/groups/{northwind}/licenses", headers=other, params={"detailed": "maybe"})
    assert hidden.status_code == 404, hidden.text


async def test_number_inventory_type_is_not_implemented_after_the_checks(world) -> None:  # type: ignore[no-untyped-def]
    client = world.client
    reseller, other = await world.as_("reseller"), await world.as_("other-reseller")
    northwind = org_uuid(world.organisation.resellers[0].reseller_id)
    tenant = await world.create_tenant(name="Acme")
    subscription = await world.create_subscription(tenant["uuid"])
    group_url = f"{BASE}/groups/{northwind}/number_inventory_type"
    sub_url = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}/number_inventory_type"
    await world.tenant_login(tenant["uuid"], "acme-admin")
    tenant_admin = await world.as_("acme-admin")
    for url, headers in ((group_url, reseller), (sub_url, reseller), (sub_url, tenant_admin)):
        answer = await client.get(url, headers=headers)
        assert answer.status_code == 501, (url, answer.text)
        error = answer.json()["error"]
        assert error["code"] == 1501 and "number inventory type" in error["reason"], error
        assert "not implemented by teamsvoice" in error["reason"]
    unknown_sub = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id'] + 999}/number_inventory_type"
    for url, headers in ((group_url, other), (sub_url, other), (unknown_sub, reseller)):
        refused = await client.get(url, headers=headers)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == 1004, (url, refused.text)
    denied = await client.get(group_url, headers=tenant_admin)
    assert denied.status_code == 403
    assert "groups.instance.number_inventory_type.read" in denied.json()["error"]["reason"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_grants_the_new_roles_to_full_profiles(backend: str, request: pytest.FixtureRequest,
                                                        tmp_path: Path) -> None:
    config, engine = database_at(migration.down_revision, backend, request, tmp_path)
    metadata = sa.MetaData()
    resellers = sa.Table("resellers", metadata, autoload_with=engine)
    users = sa.Table("fusion_users", metadata, autoload_with=engine)
    before = {"reseller": sorted(PROFILES["reseller"] - set(migration._ORG_NEW)),
              "restricted": ["tenants.list", "tenants.instance.read"]}
    try:
        with engine.begin() as connection:
            connection.execute(resellers.insert().values(id=1, name="r", level="RESELLER",
                                                         registered_redirect_urls=[], created_at=sa.func.now()))
            for n, (username, held) in enumerate(before.items(), start=1):
                connection.execute(users.insert().values(
                    id=n, username=username, password_hash="x", level="reseller", reseller_id=1, permissions=held,
                    active=True, session_epoch=0, created_at=sa.func.now()))
        command.upgrade(config, "heads")
        with engine.connect() as connection:
            rows = connection.execute(sa.select(users.c.username, users.c.permissions))
            after = {r.username: r.permissions for r in rows}
    finally:
        engine.dispose()
    assert after["reseller"] == sorted(PROFILES["reseller"])  # the full profile of today
    assert after["restricted"] == before["restricted"]  # restricted by hand: nothing it was not given
