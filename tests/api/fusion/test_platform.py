"""Issue 10 section 1: the Fusion platform API the vendor's portal calls around the MS Teams section: the
logged-in user's profile and api_rules (one role vocabulary), organisation lists, staff, logout without a
token, CORS, and what teamsvoice does not do."""

import re

import httpx
import pytest
from fastapi.routing import APIRoute

from teamsvoice.api import fusion
from teamsvoice.app import create_app
from teamsvoice.domain.fusion.roles import ALL_ROLES, PROFILES
from teamsvoice.domain.fusion.scope import org_uuid
from tests.api.fusion.support import BASE, PASSWORD, bearer, make_world
from tests.support.browser import forms, submit

# Login/logout, the caller's own profile, and the consent redirect Microsoft sends a browser to: no role.
PUBLIC_PATHS = ("/api/v01/auth/", "/api/v01/system/users/", "/api/v01/msteams/consent")


@pytest.fixture
async def world(client, live, organisation):
    return await make_world(client, live, organisation)


def _required_roles(dependant) -> set[str]:  # type: ignore[no-untyped-def]
    roles = set(getattr(dependant.call, "required_roles", ()))
    for sub in dependant.dependencies:
        roles |= _required_roles(sub)
    return roles


def fusion_routes() -> list[tuple[str, str, set[str]]]:
    found = []
    for router in fusion.ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                for method in sorted(route.methods):
                    found.append((method, route.path, _required_roles(route.dependant)))
    return found


async def test_logout_without_a_token_is_not_an_error(world) -> None:
    response = await world.client.get("/api/v01/auth/logout")
    assert response.status_code == 200 and response.json() == {}
    # A token that is sent must still be valid.
    assert (await world.client.get("/api/v01/auth/logout", headers=bearer("garbage"))).status_code == 401


async def test_local_user_profile_and_password(world) -> None:
    client = world.client
    reseller = await world.as_("reseller")
    node = world.organisation.resellers[0].reseller_id
    got = await client.get("/api/v01/system/users/local", headers=reseller)
    assert got.status_code == 200, got.text
    body = got.json()
    rules = body.pop("profile")
    assert body == {"id": body["id"], "username": "reseller", "status": "active", "first_name": None, "last_name": None,
                    "email": None, "mobile_number": None, "ui_profile": "reseller",
                    "admin_of": [{"level": "reseller", "reference": org_uuid(node), "name": "Northwind Telecom"}]}
    assert rules["name"] == "reseller"
    allowed = {r["name"]: r["allowed"] for r in rules["api_rules"]}
    assert set(allowed) == ALL_ROLES and {n for n, a in allowed.items() if a} == PROFILES["reseller"]
    assert allowed["tenants.instance.read"] and allowed["tenants.instance.subscriptions.create"]
    assert not allowed["distributors.list"]
    assert "password" not in got.text and "hash" not in got.text

    updated = await client.put("/api/v01/system/users/local", headers=reseller,
                               json={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})
    assert updated.status_code == 200, updated.text
    assert {k: updated.json()[k] for k in ("first_name", "last_name", "email", "mobile_number")} == {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "mobile_number": None}
    mine = await client.put(f"/api/v01/system/users/{body['id']}", headers=reseller, json={"mobile_number": "+32 470 12 34 56"})
    assert mine.status_code == 200 and mine.json()["mobile_number"] == "+32 470 12 34 56"
    assert (await client.put(f"/api/v01/system/users/{body['id'] + 1000}", headers=reseller,
                             json={"first_name": "x"})).status_code == 404
    for bad, named in (({"email": "not-an-address"}, "email"), ({"nickname": "x"}, "nickname"), ({}, "Nothing"),
                       ({"old_password": "wrong-password", "password": "New-Passw0rd!"}, "old_password"),
                       ({"old_password": PASSWORD, "password": "short"}, "password")):
        refused = await client.put("/api/v01/system/users/local", headers=reseller, json=bad)
        assert refused.status_code == 400 and named in refused.json()["error"]["reason"], (bad, refused.text)
    elsewhere = bearer(await world.login("reseller", PASSWORD))  # the same login signed in elsewhere
    changed = await client.put("/api/v01/system/users/local", headers=reseller,
                               json={"old_password": PASSWORD, "password": "New-Passw0rd!"})
    assert changed.status_code == 200, changed.text
    # Its other sessions end (one opened with the old password, by whoever knew it); the caller's goes on.
    assert (await client.get("/api/v01/system/users/local", headers=elsewhere)).status_code == 401
    assert (await client.get("/api/v01/system/users/local", headers=reseller)).status_code == 200
    assert (await client.post("/api/v01/auth/login", json={"username": "reseller", "password": PASSWORD})).status_code == 401
    await world.login("reseller", "New-Passw0rd!")
    assert (await client.get("/api/v01/system/users/local")).status_code == 401


async def test_one_role_vocabulary(world) -> None:
    """Every Fusion route names a Required role of the vocabulary (api_rules lists them all), and a login
    without it gets 403 whatever the path."""
    client = world.client
    routes = fusion_routes()
    system = await world.as_("system")
    local = (await client.get("/api/v01/system/users/local", headers=system)).json()
    assert local["ui_profile"] == "admin" and local["admin_of"][0]["level"] == "system"  # the portal's profile names
    rules = local["profile"]["api_rules"]
    listed = {r["name"] for r in rules}
    assert all(r["allowed"] for r in rules) and listed == ALL_ROLES
    used: set[str] = set()
    for method, path, roles in routes:
        if path.startswith(PUBLIC_PATHS):
            assert not roles, (method, path)
            continue
        assert roles, f"{method} {path} checks no Required role"
        assert roles <= listed, (method, path, roles - listed)
        used |= roles
    assert used == ALL_ROLES, f"roles no route checks: {sorted(ALL_ROLES - used)}"

    tenant = await world.create_tenant()
    await world.tenant_login(tenant["uuid"], "nobody", permissions=[])
    nobody = await world.as_("nobody")
    for method, path, _roles in routes:
        if path.startswith(PUBLIC_PATHS):
            continue
        url = path.replace("{draas_instance}", "draas_v1").replace("{uuid}", tenant["uuid"]).replace("{level}", "tenants")
        url = re.sub(r"\{[a-z_]+\}", "1", url)  # ids: the role is checked before any of them is resolved
        denied = await client.request(method, url, headers=nobody, json={})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == 1003, (method, url, denied.text)


async def test_organisation_lists_and_scope(world) -> None:
    client = world.client
    organisation = world.organisation
    master, northwind, tailspin = (org_uuid(organisation.master.reseller_id),
                                   org_uuid(organisation.resellers[0].reseller_id),
                                   org_uuid(organisation.resellers[1].reseller_id))
    system, distributor, reseller = [await world.as_(w) for w in ("system", "distributor", "reseller")]
    listed = await client.get(f"{BASE}/distributors", headers=system)
    assert listed.status_code == 200, listed.text
    owner = listed.json()["distributors"][0]["owner"]
    assert listed.json() == {"distributors": [{"uuid": master, "name": "Demo Master Reseller", "owner": owner}],
                             "page": 1, "pages": 1, "results": 1}
    assert owner["type"] == "system" and owner["name"] == "Demo Partner"
    assert (await client.get(f"{BASE}/distributors/{master}", headers=distributor)).json()["name"] == "Demo Master Reseller"
    assert (await client.get(f"{BASE}/distributors", headers=reseller)).status_code == 403
    resellers = (await client.get(f"{BASE}/resellers", headers=distributor, params={"page_size": 1})).json()
    assert [r["name"] for r in resellers["resellers"]] == ["Northwind Telecom"] and resellers["results"] == 2
    assert resellers["resellers"][0]["owner"] == {"type": "distributor", "uuid": master, "name": "Demo Master Reseller"}
    rest = (await client.get(f"{BASE}/resellers", headers=distributor, params={"page_size": 1, "next": resellers["next"]})).json()
    assert [r["uuid"] for r in rest["resellers"]] == [tailspin] and "next" not in rest
    searched = (await client.get(f"{BASE}/resellers", headers=system, params={"search": "TAIL"})).json()
    assert [r["uuid"] for r in searched["resellers"]] == [tailspin]
    narrowed = (await client.get(f"{BASE}/resellers", headers=system, params={"parent": master})).json()
    assert narrowed["results"] == 2
    own = (await client.get(f"{BASE}/resellers", headers=reseller)).json()
    assert [r["uuid"] for r in own["resellers"]] == [northwind]
    assert (await client.get(f"{BASE}/resellers/{tailspin}", headers=reseller)).status_code == 404
    assert (await client.get(f"{BASE}/resellers", headers=reseller, params={"parent": master})).status_code == 404

    # Tenants: a system login lists everything under it without `parent`; `parent` narrows.
    await world.create_tenant(name="North A")
    await world.create_tenant(who="other-reseller", name="Tail B")
    everything = (await client.get(f"{BASE}/tenants", headers=system)).json()
    assert [t["name"] for t in everything["tenants"]] == ["North A", "Tail B"]
    only = (await client.get(f"{BASE}/tenants", headers=system, params={"parent": tailspin})).json()
    assert [t["name"] for t in only["tenants"]] == ["Tail B"]
    assert [t["name"] for t in (await client.get(f"{BASE}/tenants", headers=reseller)).json()["tenants"]] == ["North A"]


async def test_staff_management(world) -> None:
    client = world.client
    organisation = world.organisation
    northwind, tailspin = (org_uuid(organisation.resellers[0].reseller_id), org_uuid(organisation.resellers[1].reseller_id))
    distributor, reseller = await world.as_("distributor"), await world.as_("reseller")
    tenant = await world.create_tenant(name="Staffed")
    admins = f"{BASE}/tenants/{tenant['uuid']}/admins"
    created = await client.post(admins, headers=reseller, json={
        "username": "alice@staffed.example", "password": "Alice-Passw0rd", "first_name": "Alice", "email": "alice@staffed.example"})
    assert created.status_code == 200, created.text
    alice = created.json()
    assert alice == {"id": alice["id"], "username": "alice@staffed.example", "status": "active", "first_name": "Alice",
                     "last_name": None, "email": "alice@staffed.example", "mobile_number": None, "ui_profile": "customer",
                     "admin_of": [{"level": "tenant", "reference": tenant["uuid"], "name": "Staffed"}]}
    assert "Passw0rd" not in created.text
    token = await world.login("alice@staffed.example", "Alice-Passw0rd")
    me = (await client.get("/api/v01/system/users/local", headers=bearer(token))).json()
    assert me["ui_profile"] == "customer" and me["admin_of"][0]["reference"] == tenant["uuid"]
    duplicate = await client.post(admins, headers=reseller, json={"username": "ALICE@staffed.example", "password": "Other-Passw0rd"})
    assert duplicate.status_code == 400 and duplicate.json()["error"]["code"] == 2064, duplicate.text
    for bad in ({"username": "x"}, {"username": "bob@x.example", "password": "short"}, {"username": "bob@x.example",
                "password": "Bob-Passw0rd", "role": "god"}):
        assert (await client.post(admins, headers=reseller, json=bad)).status_code == 400, bad
    listed = (await client.get(admins, headers=reseller)).json()
    assert [a["username"] for a in listed["admins"]] == ["alice@staffed.example"]
    # The tenant's own admin manages its tenant's admins, and sees only its tenant's logins.
    bob = await client.post(admins, headers=bearer(token), json={"username": "bob@staffed.example", "password": "Bob-Passw0rd!"})
    assert bob.status_code == 200, bob.text
    users = (await client.get(f"{BASE}/users", headers=bearer(token))).json()
    assert [u["username"] for u in users["users"]] == ["alice@staffed.example", "bob@staffed.example"]
    assert (await client.get(f"{BASE}/resellers/{northwind}/admins", headers=bearer(token))).status_code == 403
    # A reseller sees its own logins and its tenants' ones; the distributor sees both resellers' too.
    mine = {u["username"] for u in (await client.get(f"{BASE}/users", headers=reseller)).json()["users"]}
    assert mine == {"reseller", "alice@staffed.example", "bob@staffed.example"}
    above = {u["username"] for u in (await client.get(f"{BASE}/users", headers=distributor, params={"page_size": 100})).json()["users"]}
    assert above == mine | {"distributor", "other-reseller"}
    # Another reseller's staff do not exist for this one.
    assert (await client.get(f"{BASE}/resellers/{tailspin}/admins", headers=reseller)).status_code == 404
    other = await world.as_("other-reseller")
    assert (await client.get(admins, headers=other)).status_code == 404
    assert (await client.delete(f"{admins}/{alice['id']}", headers=other)).status_code == 404
    # Update: profile fields, password reset (ends its sessions), status.
    bob_id = bob.json()["id"]
    bob_token = await world.login("bob@staffed.example", "Bob-Passw0rd!")
    changed = await client.put(f"{admins}/{bob_id}", headers=reseller, json={"last_name": "Builder", "status": "disabled"})
    assert changed.status_code == 200 and changed.json()["last_name"] == "Builder" and changed.json()["status"] == "disabled"
    assert (await client.post("/api/v01/auth/login", json={"username": "bob@staffed.example", "password": "Bob-Passw0rd!"})).status_code == 401
    # Disabling ends its sessions: enabled again, it signs in anew; the token of before stays dead.
    assert (await client.put(f"{admins}/{bob_id}", headers=reseller, json={"status": "active"})).status_code == 200
    assert (await client.get("/api/v01/system/users/local", headers=bearer(bob_token))).status_code == 401
    assert (await client.get("/api/v01/system/users/local", headers=bearer(await world.login("bob@staffed.example",
                                                                                             "Bob-Passw0rd!")))).status_code == 200
    reset = await client.put(f"{admins}/{alice['id']}", headers=reseller, json={"password": "Alice-Reset-1"})
    assert reset.status_code == 200
    assert (await client.get("/api/v01/system/users/local", headers=bearer(token))).status_code == 401
    assert (await client.put(f"{admins}/{alice['id']}", headers=reseller, json={"status": "gone"})).status_code == 400
    # Distributor-level staff: created by the distributor for its own node.
    master = org_uuid(organisation.master.reseller_id)
    made = await client.post(f"{BASE}/distributors/{master}/admins", headers=distributor,
                             json={"username": "dora", "password": "Dora-Passw0rd"})
    assert made.status_code == 200 and made.json()["admin_of"][0] == {"level": "distributor", "reference": master,
                                                                      "name": "Demo Master Reseller"}
    assert (await client.get(f"{BASE}/distributors/{master}/admins", headers=reseller)).status_code == 403
    # Delete: not yourself; then the login is gone.
    own_id = (await client.get("/api/v01/system/users/local", headers=reseller)).json()["id"]
    assert (await client.delete(f"{BASE}/resellers/{northwind}/admins/{own_id}", headers=reseller)).status_code == 400
    # Nor disable yourself (a probe's login did, and its own session ended with it).
    disabled = await client.put(f"{BASE}/resellers/{northwind}/admins/{own_id}", headers=reseller, json={"status": "disabled"})
    assert disabled.status_code == 400 and disabled.json()["error"] == {"code": 2065, "reason": "You cannot disable your own login"}
    assert (await client.get("/api/v01/system/users/local", headers=reseller)).status_code == 200
    assert (await client.delete(f"{admins}/{bob_id}", headers=reseller)).status_code == 204
    assert (await client.delete(f"{admins}/{bob_id}", headers=reseller)).status_code == 404
    assert (await client.get(f"{BASE}/nowhere/{tenant['uuid']}/admins", headers=reseller)).status_code == 404


async def test_a_login_gives_no_admin_more_rights_than_it_holds(world) -> None:
    """A tenant login whose rights were narrowed by hand, holding the admins roles, neither creates an admin of its
    tenant's full default profile nor changes one (its password, its status, its profile) nor deletes one: 403 in Fusion's body naming a
    role it lacks, nothing written. Its own login, and admins within its rights, it still manages; a full profile
    (the reseller's, the tenant's default) creates admins as before."""
    client, reseller = world.client, await world.as_("reseller")
    tenant = await world.create_tenant(name="Narrowed")
    admins = f"{BASE}/tenants/{tenant['uuid']}/admins"
    staff = [f"tenants.instance.admins.{verb}" for verb in ("list", "create", "update", "delete")]
    await world.tenant_login(tenant["uuid"], "narrow", permissions=staff)
    narrow = await world.as_("narrow")
    full = await client.post(admins, headers=reseller,
                             json={"username": "full@narrowed.example", "password": "Full-Passw0rd"})
    assert full.status_code == 200, full.text
    created = await client.post(admins, headers=narrow, json={"username": "mint@narrowed.example",
                                                              "password": "Mint-Passw0rd"})
    assert created.status_code == 403, created.text
    assert created.json()["error"]["code"] == 1003, created.text
    assert created.json()["error"]["reason"].startswith("The new admin would hold rights your login does not hold: ")
    for change in ({"password": "Taken-0ver-1"}, {"status": "disabled"}, {"first_name": "Mallory"}):
        taken = await client.put(f"{admins}/{full.json()['id']}", headers=narrow, json=change)
        assert taken.status_code == 403 and taken.json()["error"]["code"] == 1003, (change, taken.text)
        assert taken.json()["error"]["reason"].startswith(f"Admin {full.json()['id']} holds rights your login does not")
    removed = await client.delete(f"{admins}/{full.json()['id']}", headers=narrow)
    assert removed.status_code == 403 and removed.json()["error"]["code"] == 1003, removed.text
    assert removed.json()["error"]["reason"].startswith(f"Admin {full.json()['id']} holds rights your login does not")
    listed = (await client.get(admins, headers=reseller)).json()["admins"]
    assert sorted((a["username"], a["status"], a["first_name"]) for a in listed) == [
        ("full@narrowed.example", "active", None), ("narrow", "active", None)]
    full_token = bearer(await world.login("full@narrowed.example", "Full-Passw0rd"))  # its password unchanged
    assert (await client.get("/api/v01/system/users/local", headers=full_token)).status_code == 200
    own_id = next(a["id"] for a in listed if a["username"] == "narrow")
    own = await client.put(f"{admins}/{own_id}", headers=narrow, json={"first_name": "Nora"})
    assert own.status_code == 200 and own.json()["first_name"] == "Nora", own.text
    minted = await client.post(admins, headers=full_token,
                               json={"username": "second@narrowed.example", "password": "Second-Passw0rd"})
    assert minted.status_code == 200, minted.text


async def test_ending_a_logins_sessions_ends_its_console_sessions_for_good(world) -> None:
    """A reseller's staff login signed in to the console: disabled, its cookie stops working, and enabling the
    login again does not bring that cookie back (it signs in anew); a password reset ends its cookie too, and so
    does signing out, for every copy of the cookie."""
    client, reseller = world.client, await world.as_("reseller")
    admins = f"{BASE}/resellers/{org_uuid(world.organisation.resellers[0].reseller_id)}/admins"
    made = await client.post(admins, headers=reseller, json={"username": "carol@staff.example", "password": "Carol-Passw0rd"})
    assert made.status_code == 200, made.text
    carol = f"{admins}/{made.json()['id']}"

    async def console(password: str) -> httpx.AsyncClient:
        browser = httpx.AsyncClient(base_url=str(client.base_url), timeout=60)
        form_page = await browser.get("/console/login")
        [form] = forms(form_page.text)
        signed = await submit(browser, str(form_page.url), form, username="carol@staff.example", password=password)
        assert signed.status_code == 303 and signed.headers["location"] == "/console/customers", signed.text
        return browser

    async def signed_in(browser: httpx.AsyncClient) -> bool:
        answer = await browser.get("/console/customers")
        assert answer.status_code in (200, 303), answer.text
        return answer.status_code == 200

    before = await console("Carol-Passw0rd")
    assert await signed_in(before)
    assert (await client.put(carol, headers=reseller, json={"status": "disabled"})).status_code == 200
    assert not await signed_in(before)
    assert (await client.put(carol, headers=reseller, json={"status": "active"})).status_code == 200
    assert not await signed_in(before)  # enabled again: the cookie of before stays dead
    again = await console("Carol-Passw0rd")
    assert await signed_in(again)
    assert (await client.put(carol, headers=reseller, json={"password": "Carol-Reset-1"})).status_code == 200
    assert not await signed_in(again)
    latest = await console("Carol-Reset-1")
    assert await signed_in(latest)
    # Signing out ends the session on the server: a copy of the cookie (another browser, a stolen one) is refused.
    copy = httpx.AsyncClient(base_url=str(client.base_url), timeout=60, cookies={"tv_console": latest.cookies["tv_console"]})
    assert await signed_in(copy)
    page = await latest.get("/console/customers")
    [sign_out] = [f for f in forms(page.text) if f.action == "/console/logout"]
    assert (await submit(latest, str(page.url), sign_out)).status_code == 303
    assert not await signed_in(copy)
    # The sign-out is an audit entry, as the sign-in is.
    from sqlalchemy import select

    from teamsvoice.domain.audit.models import AuditEntry
    from tests.support.database import in_session

    signed_out = await in_session(world.live, lambda s: s.scalar(select(AuditEntry).where(
        AuditEntry.action == "login.sign_out", AuditEntry.object_label == "carol@staff.example")))
    assert signed_out is not None and signed_out.actor == "fusion:carol@staff.example", signed_out
    for browser in (before, again, latest, copy):
        await browser.aclose()


async def test_cors_preflight_only_for_configured_origins(live) -> None:
    allowed = "https://portal.example"
    app = create_app(live.settings.model_copy(update={"cors_allowed_origins": [allowed]}), jobs_role=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://teamsvoice.test") as http:
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
        ok = await http.options("/api/v01/auth/login", headers={"Origin": allowed, **preflight})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == allowed
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        # Fusion bulk's `Prefer: respond-async` from a portal: its preflight asks for Prefer.
        bulk = await http.options("/api/v01/auth/login", headers={
            "Origin": allowed, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "prefer"})
        assert bulk.status_code == 200, bulk.text
        assert "prefer" in bulk.headers["access-control-allow-headers"].lower()
        refused = await http.options("/api/v01/auth/login", headers={"Origin": "https://evil.example", **preflight})
        assert refused.status_code >= 400 and "access-control-allow-origin" not in refused.headers
        simple = await http.post("/api/v01/auth/login", headers={"Origin": allowed}, json={"username": "x", "password": "y"})
        assert simple.headers["access-control-allow-origin"] == allowed
        # What a portal's script may read: a 202's job is at its Location (a 503's wait: Retry-After).
        exposed = {h.strip().lower() for h in simple.headers["access-control-expose-headers"].split(",")}
        assert {"location", "retry-after", "x-request-id"} <= exposed, exposed
        other = await http.post("/api/v01/auth/login", headers={"Origin": "https://evil.example"}, json={"username": "x", "password": "y"})
        assert "access-control-allow-origin" not in other.headers
    # Not configured (the default): no cross-origin access at all.
    plain = create_app(live.settings, jobs_role=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plain), base_url="http://teamsvoice.test") as http:
        answer = await http.options("/api/v01/auth/login", headers={"Origin": allowed, **preflight})
        assert answer.status_code >= 400 and "access-control-allow-origin" not in answer.headers


async def test_the_draas_instance_is_the_one_configured(world) -> None:
    """A provider's scripts name the Fusion instance Netaxis gave it (`TEAMSVOICE_FUSION_DRAAS_INSTANCE`): its paths
    answer under that name, and under any other (the default draas_v1 included) as for what does not exist."""
    tenant = await world.create_tenant()
    subscription = await world.create_subscription(tenant["uuid"])
    headers = await world.as_("reseller")
    app = create_app(world.live.settings.model_copy(update={"fusion_draas_instance": "copaco_v2"}), jobs_role=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://teamsvoice.test") as http:
        for instance, status in (("copaco_v2", 200), ("draas_v1", 404)):
            base = f"/api/v01/draas/{instance}"
            listed = await http.get(f"{base}/tenants", headers=headers)
            assert listed.status_code == status, listed.text
            assert status != 200 or tenant["uuid"] in listed.text
            one = await http.get(f"{base}/tenants/{tenant['uuid']}", headers=headers)
            licences = await http.get(f"{base}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}/licenses",
                                      headers=headers)
            assert (one.status_code, licences.status_code) == (status, status), (one.text, licences.text)
    assert (await world.client.get(f"{BASE}/tenants", headers=headers)).status_code == 200  # the default elsewhere
