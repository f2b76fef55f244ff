"""No write can forget the audit log.

- Every table is classified (audited aggregate, sign-in, or a documented exemption), so a new table is either
  audited or consciously left out.
- Walking the app's routes: every non-GET route of both API families, of teamsvoice's own API and of the
  console runs inside the unit of work (which opens the audit scope, records a 'call' entry for a write that
  changed no row of ours, and commits the entries with the change), and names its caller through an auth
  dependency, unless it is a documented exemption (the sign-in routes, whose entries are the sign-ins, and the
  consent callback, whose caller is Microsoft's redirect of the customer's administrator).
- Calling them: a scenario of successful calls across both families; each call's own request id is on at least
  one entry, with its route as the source.
"""

import asyncio
import json

import httpx
import pytest
from sqlalchemy import select

from teamsvoice.api import connecttoteams, fusion
from teamsvoice.api import teamsvoice as teamsvoice_api
from teamsvoice.api.connecttoteams import deps as ctt_deps
from teamsvoice.api.deps import unit_of_work
from teamsvoice.api.fusion import deps as fusion_deps
from teamsvoice.console import pages
from teamsvoice.core.db import Base, create_engine, session_factory
from teamsvoice.domain.audit import context
from teamsvoice.domain.audit.models import AuditEntry
from teamsvoice.domain.audit.recorder import AGGREGATES, EXEMPT, SIGN_INS
from tests.api.fusion.support import BASE, make_world
from tests.support.browser import forms, submit
from tests.support.ctt import bearer
from tests.e2e.test_onboarding import some_user
from tests.support.onboarding import Onboarding

IDENTIFYING = {ctt_deps.current_principal, fusion_deps.current_principal, pages.current_staff}
# teamsvoice's own API resolves its caller with either family's token in one dependency, which calls the
# families' `current_principal` itself.
IDENTIFYING_MODULES = {"teamsvoice.api.teamsvoice.deps"}
# Write routes with no signed-in caller: sign-ins (recorded as the sign-in of the login they authenticate) and
# the consent callback (Microsoft's redirect of the customer's Global Administrator; its changes are recorded
# with the actor "anonymous" and their route).
NO_CALLER = context.SIGN_IN_ROUTES | {("POST", "/restricted/handleResponse")}


def not_implemented(route: object) -> bool:
    """A route declared to answer 501 (Fusion's documented not-implemented list, code 1501: 2fa, the password
    resets) writes nothing and may be public as the vendor's is: neither check concerns it."""
    return getattr(route, "status_code", None) == 501


def write_routes() -> list[tuple[str, str, object]]:
    found = []
    for routers in (connecttoteams.ROUTERS, fusion.ROUTERS, teamsvoice_api.ROUTERS, [pages.router]):
        for router in routers:
            for route in router.routes:
                for method in sorted(set(getattr(route, "methods", None) or ()) - {"GET", "HEAD", "OPTIONS"}):
                    found.append((method, route.path, route))
    return found


def location_body(enterprise_id: int) -> dict:
    return {"enterpriseId": enterprise_id, "pbxLocation": "Brussels HQ", "pbxType": "BroadWorks",
            "canonicalPbxSIPDomain": "pbx.contoso-voice.example", "proxyDomainPort": 5060, "presencePackageType": "call-info",
            "callPolicy": {"callPolicyName": "Global", "callPolicyCNAM": "TRANSPARENT", "forwardedCallsCallerId": "USER_CALLER_ID"},
            "topologyHiding": True, "regExpiresValue": 3600}


def calls(dependant) -> set:  # type: ignore[no-untyped-def]
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= calls(sub)
    return found


def test_every_table_is_classified() -> None:
    tables = set(Base.metadata.tables)
    classified = set(AGGREGATES) | set(SIGN_INS) | EXEMPT
    assert tables - classified == set(), "classify these tables in domain/audit/recorder.py"
    assert set(AGGREGATES) | set(SIGN_INS) <= tables, "these audited tables do not exist"
    assert not (set(AGGREGATES) & EXEMPT) and not (set(SIGN_INS) & EXEMPT)


def test_every_write_route_is_inside_the_audit_scope_and_names_its_caller() -> None:
    routes = write_routes()
    assert len(routes) > 80  # both families, teamsvoice's own API and the console
    outside, anonymous = [], []
    for method, path, route in routes:
        if not_implemented(route):
            continue
        needed = calls(route.dependant)  # type: ignore[attr-defined]
        if unit_of_work not in needed:
            outside.append(f"{method} {path}")
        if (method, path) not in NO_CALLER and not needed & IDENTIFYING and not any(
                getattr(c, "__module__", None) in IDENTIFYING_MODULES for c in needed):
            anonymous.append(f"{method} {path}")
    assert outside == [], "write routes outside the unit of work (no audit scope)"
    assert anonymous == [], "write routes that never name their caller"
    assert {(m, p) for m, p, _ in routes} >= NO_CALLER  # the exemptions are real routes, not stale names


@pytest.fixture
async def entries_of(live):  # type: ignore[no-untyped-def]
    engine = create_engine(live.settings.effective_database_url)
    sessions = session_factory(engine)

    async def read(response: httpx.Response) -> list[AuditEntry]:
        async with sessions() as session:
            return list(await session.scalars(select(AuditEntry).where(
                AuditEntry.request_id == response.headers["x-request-id"]).order_by(AuditEntry.id)))

    read.sessions = sessions  # type: ignore[attr-defined]
    yield read
    await engine.dispose()


async def test_successful_write_calls_leave_entries(client: httpx.AsyncClient, live, organisation, receiver, entries_of) -> None:
    exercised: dict[tuple[str, str], list[AuditEntry]] = {}
    sessions = entries_of.sessions

    async def call(method: str, route: str, url: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
        response = await client.request(method, url, **kwargs)
        assert 200 <= response.status_code < 300, f"{method} {url}: {response.status_code} {response.text}"
        entries = await entries_of(response)
        assert entries, f"{method} {route}: no audit entry"
        assert {e.source for e in entries} == {f"{method} {route}"}, [e.source for e in entries]
        exercised[(method, route)] = entries
        return response

    # ConnecttoTeams: an enterprise registered through the consent flow (token, newEnterprise, getActionItemUrl,
    # the consent callback, completeEnterpriseRegistration), then edited and its API credentials regenerated.
    receiver.reset()
    onboarding = Onboarding(client, live, organisation, receiver, live.emulator.tenants[1])
    await onboarding.register()
    token = onboarding.token
    response = await call("POST", "/oauth/token", "/oauth/token", auth=(onboarding.login.client_id, onboarding.login.client_secret),
                          data={"username": onboarding.login.username, "password": onboarding.login.password, "grant_type": "password"})
    assert [e.action for e in exercised[("POST", "/oauth/token")]] == ["login.sign_in"]
    regenerated = await call("POST", "/enterprise/regenerateAPICredentials", "/enterprise/regenerateAPICredentials",
                             content=onboarding.tenant["tenantId"], headers=bearer(token) | {"Content-Type": "text/plain"})
    clients = [e for e in exercised[("POST", "/enterprise/regenerateAPICredentials")] if e.aggregate == "api_client"]
    assert clients and all((d or {}).get("secret_hash", "***") == "***" for e in clients for d in (e.before, e.after))
    secrets = [regenerated.json()["entAdminSecret"], regenerated.json()["clientSecret"]]
    dumped = json.dumps([[e.before, e.after] for e in exercised[("POST", "/enterprise/regenerateAPICredentials")]])
    assert all(secret and secret not in dumped for secret in secrets)
    # An edit of the enterprise (the vendor's editEnterprise body is the newEnterprise one plus its id).
    from tests.support.ctt import enterprise_body, reseller_catalogue

    pbx, sbc = await reseller_catalogue(client, token, onboarding.login.reseller_id)
    await call("POST", "/reseller/editEnterprise", "/reseller/editEnterprise", headers=bearer(token),
               json=enterprise_body(onboarding.login.reseller_id, onboarding.name, pbx=pbx[:1], sbc=sbc[:1])
               | {"enterpriseId": onboarding.enterprise_id, "userLimit": 321})
    [edited] = [e for e in exercised[("POST", "/reseller/editEnterprise")] if e.action == "enterprise.update"]
    assert edited.after["user_limit"] == 321 and edited.family == "connecttoteams"

    # Provisioning as the consented reseller: a user's number (Microsoft and our record), then a sync as a durable
    # job, whose writes are the job's, on behalf of the reseller's login that submitted it.
    await onboarding.consent("GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT")
    consent_object = {"tenantId": onboarding.tenant["tenantId"], "resellerId": onboarding.login.reseller_id}
    upn = some_user(live, onboarding.tenant)
    await call("POST", "/provisioning/updateUserDetails", "/provisioning/updateUserDetails", headers=bearer(token),
               json=consent_object | {"userPrincipalName": upn, "phoneNumber": "+14139301688"})
    [user_change] = [e for e in exercised[("POST", "/provisioning/updateUserDetails")] if "phone_number" in (e.after or {})
                     and e.action == "teams_user.update"]
    assert (user_change.before["phone_number"], user_change.after["phone_number"]) == (None, "+14139301688")
    assert user_change.object_label == upn and user_change.customer == onboarding.name
    accepted = await call("POST", "/provisioning/syncTeamsRegistrations", "/provisioning/syncTeamsRegistrations",
                          params={"async": "true"}, headers=bearer(token), json=consent_object)
    job_id = accepted.json()["jobId"]
    for _ in range(600):
        status = (await client.get(f"/provisioning/getSyncJobStatus/{job_id}", headers=bearer(token))).json()["status"]
        if status not in ("QUEUED", "RUNNING", "PENDING"):
            break
        await asyncio.sleep(0.1)
    async with sessions() as session:
        by_job = list(await session.scalars(select(AuditEntry).where(AuditEntry.family == "job", AuditEntry.aggregate == "calling_job")))
    assert by_job, "the sync job's writes are not in the audit log"
    assert {e.on_behalf_of for e in by_job} == {f"connecttoteams connecttoteams:{onboarding.login.username}"}
    assert all(e.actor.startswith("job ") and e.customer == onboarding.name for e in by_job)

    # A PBX location configured then deleted; teamsvoice's own API: drift settings and the drift webhook.
    location = (await call("POST", "/pbx/configurePBX", "/pbx/configurePBX", headers=bearer(token), json=location_body(onboarding.enterprise_id))).json()
    await call("DELETE", "/pbx/deletePBXLocation/{pbxLocationId}", f"/pbx/deletePBXLocation/{location['id']}", headers=bearer(token))
    [gone] = [e for e in exercised[("DELETE", "/pbx/deletePBXLocation/{pbxLocationId}")] if e.action == "pbx_location.delete"]
    assert gone.before["pbx_location"] == "Brussels HQ" and gone.after is None and gone.customer == onboarding.name
    tenant_id = onboarding.tenant["tenantId"]
    await call("PUT", "/api/teamsvoice/v1/tenants/{tenant_id}/drift-settings", f"/api/teamsvoice/v1/tenants/{tenant_id}/drift-settings",
               headers=bearer(token), json={"autoApply": True})
    await call("PUT", "/api/teamsvoice/v1/webhook", "/api/teamsvoice/v1/webhook", headers=bearer(token), json={"url": f"{receiver.url}/drift"})
    [hook] = [e for e in exercised[("PUT", "/api/teamsvoice/v1/webhook")] if e.aggregate == "drift_webhook"]
    assert hook.after["secret_encrypted"] == "***"

    # Fusion: tenant, subscription, numbers, Teams admin credentials, templates, staff logins, own profile; then
    # everything deleted again.
    world = await make_world(client, live, organisation)
    reseller = await world.as_("reseller")
    tenants = f"{BASE}/tenants"
    tenant = (await call("POST", "/api/v01/draas/{draas_instance}/tenants", tenants, headers=reseller, json={"name": "Audited"})).json()
    t = f"{tenants}/{tenant['uuid']}"
    await call("PUT", "/api/v01/draas/{draas_instance}/tenants/{uuid}", t, headers=reseller, json={"name": "Audited SA"})
    sub = (await call("POST", "/api/v01/draas/{draas_instance}/tenants/{uuid}/subscriptions", f"{t}/subscriptions",
                      headers=reseller, json={"name": "Teams", "billingId": "B-1"})).json()
    s = f"{t}/subscriptions/{sub['id']}"
    sub_route = "/api/v01/draas/{draas_instance}/tenants/{uuid}/subscriptions/{subscription_id}"
    await call("POST", f"{sub_route}/numbers", f"{s}/numbers", headers=reseller, json={"countryCode": "+32", "numbers": ["22100100"]})
    await call("DELETE", f"{sub_route}/numbers", f"{s}/numbers", headers=reseller,
               json={"numbers": [{"countryCode": "+32", "nsn": "22100100"}]})
    await call("POST", f"{sub_route}/msteams/admins", f"{s}/msteams/admins", headers=reseller,
               json={"msUsername": "admin@audited.example", "msPassword": "Very-Secret-Passw0rd"})
    [admin] = exercised[("POST", f"{sub_route}/msteams/admins")]
    assert admin.after["ms_password_encrypted"] == "***" and "Very-Secret" not in json.dumps(admin.after)
    await call("DELETE", f"{sub_route}/msteams/admins", f"{s}/msteams/admins", headers=reseller)
    template = (await call("POST", f"{sub_route}/msteams/templates", f"{s}/msteams/templates", headers=reseller,
                           json={"name": "BE", "productKey": "be", "location": "BE", "vrp": "teamsvoice"})).json()
    await call("PUT", f"{sub_route}/msteams/templates/{{template_id}}", f"{s}/msteams/templates/{template['id']}",
               headers=reseller, json={"vrp": None})
    [changed] = exercised[("PUT", f"{sub_route}/msteams/templates/{{template_id}}")]
    assert (changed.before["vrp"], changed.after["vrp"]) == ("teamsvoice", None)
    await call("DELETE", f"{sub_route}/msteams/templates/{{template_id}}", f"{s}/msteams/templates/{template['id']}",
               headers=reseller)
    admins = "/api/v01/draas/{draas_instance}/{level}/{uuid}/admins"
    alice = (await call("POST", admins, f"{t}/admins", headers=reseller, json={
        "username": "alice@audited.example", "password": "Alice-Passw0rd", "first_name": "Alice"})).json()
    assert not [e for e in exercised[("POST", admins)] if "Alice-Passw0rd" in json.dumps(e.after)]
    await call("PUT", f"{admins}/{{admin_id}}", f"{t}/admins/{alice['id']}", headers=reseller, json={"first_name": "Alicia"})
    await call("DELETE", f"{admins}/{{admin_id}}", f"{t}/admins/{alice['id']}", headers=reseller)
    await call("PUT", "/api/v01/system/users/local", "/api/v01/system/users/local", headers=reseller,
               json={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})
    await call("DELETE", sub_route, s, headers=reseller)
    await call("DELETE", "/api/v01/draas/{draas_instance}/tenants/{uuid}", t, headers=reseller)
    await call("POST", "/api/v01/auth/login", "/api/v01/auth/login", json={"username": "reseller", "password": world_password()})

    # The console: a sign-in through its form is an entry of its own.
    form_page = await client.get("/console/login")
    [form] = forms(form_page.text)
    signed = await submit(client, str(form_page.url), form, username="reseller", password=world_password())
    assert signed.status_code == 303 and signed.headers["location"] == "/console/customers"
    [console_sign_in] = await entries_of(signed)
    assert (console_sign_in.family, console_sign_in.action, console_sign_in.actor) == ("console", "login.sign_in", "fusion:reseller")
    assert console_sign_in.source == "POST /console/login" and console_sign_in.owner_reseller_id == organisation.resellers[0].reseller_id

    for (method, route), entries in exercised.items():
        family = "fusion" if route.startswith("/api/v01/") else "teamsvoice" if route.startswith("/api/teamsvoice/") else "connecttoteams"
        assert {e.family for e in entries} == {family}, (method, route)
        signed_in = ("POST", route) in context.SIGN_IN_ROUTES
        login_family = "fusion" if family == "fusion" else "connecttoteams"  # teamsvoice's API: a ConnecttoTeams token here
        assert all(e.actor.startswith(f"{login_family}:") for e in entries if not signed_in or e.action == "login.sign_in"), (method, route)
    assert len(exercised) >= 20


def world_password() -> str:
    from tests.api.fusion.support import PASSWORD

    return PASSWORD
