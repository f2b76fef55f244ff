"""Routes whose statements once grew with the rows around them, on both backends: ConnecttoTeams' deletePBXUser
and deletePBXLocation read the caller's enterprises reseller by reseller (a master reseller with 200 resellers
sent 200 statements to delete one row), Fusion's `users` and `admins` lists read each login's profile (and its
node) in a statement of its own (1,000 a page). Each is counted in process, with its own engine (so that only its
statements are counted), before and after the rows around it grow: the count stays the same."""

import httpx
from sqlalchemy import select

from teamsvoice.domain.calling.models import PbxLocation, PbxUser
from teamsvoice.domain.fusion import tenants as fusion_tenants
from teamsvoice.domain.fusion.models import FusionTenant, FusionUserProfile
from teamsvoice.domain.fusion.scope import org_uuid
from teamsvoice.domain.orgs.models import Enterprise, PbxType, Reseller
from tests.api.fusion.support import BASE, PASSWORD, make_world
from tests.support.ctt import bearer, token_for
from tests.support.database import counted_app, in_session


async def statements(client: httpx.AsyncClient, sent: list[int], method: str, path: str,
                     headers: dict[str, str]) -> tuple[httpx.Response, int]:
    before = sent[0]
    response = await client.request(method, path, headers=headers)
    return response, sent[0] - before


# --- ConnecttoTeams: deleting a PBX user or location --------------------------------------------------------


async def _pbx_rows(session, reseller_id: int, name: str) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """An enterprise of the reseller with an empty location and a location with one PBX user: answers (the empty
    location's id, the user's id, the enterprise's id)."""
    enterprise = Enterprise(reseller_id=reseller_id, enterprise_name=name)
    session.add(enterprise)
    await session.flush()
    pbx_type = await session.scalar(select(PbxType.id).where(PbxType.reseller_id == reseller_id).limit(1))
    empty, used = (PbxLocation(enterprise_id=enterprise.id, pbx_type_id=pbx_type, pbx_location=n, pbx_label=n,
                               canonical_pbx_sip_domain="pbx.example.com") for n in (f"{name}-empty", f"{name}-used"))
    session.add_all([empty, used])
    await session.flush()
    user = PbxUser(enterprise_id=enterprise.id, kind="PBX", teams_user_id=f"ada@{name}.example", microsoft_user_id="m",
                   pbx_location_id=used.id, phone_number=f"+3250799{enterprise.id:04d}", pbx_user_id="100",
                   pbx_auth_user_id="100", sip_password_encrypted="x")
    session.add(user)
    await session.flush()
    return empty.id, user.id, enterprise.id


async def _more_resellers(session, parent_id: int, count: int) -> None:  # type: ignore[no-untyped-def]
    session.add_all(Reseller(name=f"scope-{parent_id}-{n}", level="RESELLER", parent_id=parent_id,
                             registered_redirect_urls=[]) for n in range(count))
    await session.flush()


async def test_a_pbx_row_is_deleted_in_as_many_statements_however_many_resellers_the_caller_sees(
        live, organisation) -> None:
    master, mine, theirs = organisation.master, organisation.resellers[0], organisation.resellers[1]
    first = await in_session(live, lambda s: _pbx_rows(s, mine.reseller_id, "scope-one"))
    second = await in_session(live, lambda s: _pbx_rows(s, mine.reseller_id, "scope-two"))
    async with counted_app(live, credential_cache_seconds=0) as (client, sent):
        master_token, their_token = bearer(await token_for(client, master)), bearer(await token_for(client, theirs))
        # Out of the caller's scope, or no such row: 404, nothing deleted.
        for path in (f"/pbx/deletePBXLocation/{first[0]}", f"/pbx/deletePBXUser/{first[1]}"):
            assert (await client.delete(path, headers=their_token)).status_code == 404
        for path in ("/pbx/deletePBXLocation/987654", "/pbx/deletePBXUser/987654"):
            assert (await client.delete(path, headers=master_token)).status_code == 404

        location, few = await statements(client, sent, "DELETE", f"/pbx/deletePBXLocation/{first[0]}", master_token)
        user, few_user = await statements(client, sent, "DELETE", f"/pbx/deletePBXUser/{first[1]}", master_token)
        assert (location.status_code, user.status_code) == (204, 204), (location.text, user.text)

        await in_session(live, lambda s: _more_resellers(s, master.reseller_id, 12))
        master_token = bearer(await token_for(client, master))  # (its scope is read with its token)
        location, many = await statements(client, sent, "DELETE", f"/pbx/deletePBXLocation/{second[0]}", master_token)
        user, many_user = await statements(client, sent, "DELETE", f"/pbx/deletePBXUser/{second[1]}", master_token)
        assert (location.status_code, user.status_code) == (204, 204), (location.text, user.text)
        assert (many, many_user) == (few, few_user), ((few, few_user), (many, many_user))
        for path in (f"/pbx/deletePBXLocation/{second[0]}", f"/pbx/deletePBXUser/{second[1]}"):
            assert (await client.delete(path, headers=master_token)).status_code == 404  # gone


# --- Fusion: the logins and admins lists ----------------------------------------------------------------------


async def _logins(session, reseller_id: int, tenant_uuid: str | None,  # type: ignore[no-untyped-def]
                  names: list[str]) -> None:
    """Reseller admins (or, with `tenant_uuid`, tenant admins) named `names`, every other one with a profile."""
    tenant_id = (await session.scalar(select(FusionTenant.id).where(FusionTenant.uuid == tenant_uuid))
                 if tenant_uuid else None)
    for n, name in enumerate(names):
        user = await fusion_tenants.create_login(
            session, username=name, password=PASSWORD, level="tenant" if tenant_id else "reseller",
            reseller_id=None if tenant_id else reseller_id, fusion_tenant_id=tenant_id)
        if n % 2 == 0:
            session.add(FusionUserProfile(user_id=user.id, first_name=f"First {name}", email=f"{name}@example.com"))
    await session.flush()


async def test_the_logins_and_admins_lists_read_as_many_statements_for_many_rows_as_for_few(
        live, organisation, client) -> None:
    world = await make_world(client, live, organisation)
    mine, theirs = organisation.resellers[0].reseller_id, organisation.resellers[1].reseller_id
    tenant = await world.create_tenant(name="Per-row")
    admins_path = f"{BASE}/resellers/{org_uuid(mine)}/admins"
    async with counted_app(live, credential_cache_seconds=0) as (app_client, sent):
        distributor = await world.as_("distributor")
        _, few_users = await statements(app_client, sent, "GET", f"{BASE}/users?page_size=1000", distributor)
        _, few_admins = await statements(app_client, sent, "GET", admins_path, distributor)

        await in_session(live, lambda s: _logins(s, mine, None, [f"per-row-a{n}" for n in range(4)]))
        await in_session(live, lambda s: _logins(s, theirs, None, [f"per-row-b{n}" for n in range(3)]))
        await in_session(live, lambda s: _logins(s, mine, tenant["uuid"], [f"per-row-t{n}" for n in range(3)]))
        users, many_users = await statements(app_client, sent, "GET", f"{BASE}/users?page_size=1000", distributor)
        admins, many_admins = await statements(app_client, sent, "GET", admins_path, distributor)
        assert (users.status_code, admins.status_code) == (200, 200), (users.text, admins.text)
        assert (many_users, many_admins) == (few_users, few_admins), (
            (few_users, few_admins), (many_users, many_admins))

    listed = {u["username"]: u for u in users.json()["users"]}
    assert {"per-row-a3", "per-row-b2", "per-row-t2", "reseller", "other-reseller"} <= set(listed)
    assert listed["per-row-a0"] == {
        "id": listed["per-row-a0"]["id"], "username": "per-row-a0", "status": "active",
        "first_name": "First per-row-a0", "last_name": None, "email": "per-row-a0@example.com", "mobile_number": None,
        "ui_profile": "reseller",
        "admin_of": [{"level": "reseller", "reference": org_uuid(mine), "name": "Northwind Telecom"}]}
    assert [listed["per-row-a1"][k] for k in ("first_name", "email")] == [None, None]
    assert listed["per-row-t0"]["admin_of"] == [{"level": "tenant", "reference": tenant["uuid"], "name": "Per-row"}]
    assert listed["per-row-t0"]["ui_profile"] == "customer" and listed["per-row-t1"]["first_name"] is None
    assert listed["per-row-b0"]["admin_of"][0]["reference"] == org_uuid(theirs)
    assert [a["username"] for a in admins.json()["admins"]] == ["per-row-a0", "per-row-a1", "per-row-a2", "per-row-a3",
                                                                "reseller"]
    assert admins.json()["admins"][0] == listed["per-row-a0"]
