"""What a staff login whose Fusion rights were narrowed by hand sees of the records no Fusion route reads, over plain
HTTP. The console showed every staff login of the reseller the consent webhook deliveries, drift event deliveries and
Teams syncs on the Jobs page, a ConnecttoTeams enterprise's page (its consents, webhook deliveries and consent link
form) and the audit log, whatever its roles: a login narrowed to `users.list` read them all. Each now needs the
closest Fusion read role (README, "Provider console": who sees what); a login lacking it gets a 403 page naming the
role, or the section and its menu entry left out, saying which role it needs."""

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.api.fusion.support import BASE, PASSWORD, bearer
from tests.console.test_console_lists import _signed_in
from tests.support.database import customer_records, in_session

MST = "tenants.instance.subscriptions.instance.msteams"
WIZARD_READ, STATUS_READ, USERS_LIST = f"{MST}.wizard.read", f"{MST}.status.read", f"{MST}.users.list"
ENTERPRISE_READ, WIZARD_RUN = "tenants.instance.read", f"{MST}.wizard.run"
SUBSCRIPTION_READ, USERS_BULK, TENANTS_LIST = "tenants.instance.subscriptions.instance.read", f"{MST}.users.bulk", "tenants.list"
# The role each narrowed login lacks (all the others of its level held)
LACKING = {"webhook": WIZARD_READ, "drift-webhook": STATUS_READ, "sync": USERS_LIST, "enterprise": ENTERPRISE_READ,
           "link": WIZARD_RUN, "numbers": SUBSCRIPTION_READ, "bulk": USERS_BULK, "jobs": TENANTS_LIST}
NUMBERS = 3  # the customer's subscription's numbers, all free
NOWHERE = "http://127.0.0.1:9"  # (should a retry or a consent link slip through, its delivery goes nowhere)


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found is not None, text
    return found.group(1)


def _menu(text: str) -> list[str]:
    found = re.search(r'<nav aria-label="Main">(.*?)</nav>', text, re.S)
    assert found is not None, text
    return re.findall(r">([^<]+)</a>", found.group(1))


@dataclass
class World:
    mark: str
    tenant_page: str
    enterprise_page: str
    job_ids: dict[str, int]
    errors: dict[str, str]
    usernames: dict[str, str]  # a login lacking each role of LACKING, and one holding `users.list` only ("users")


async def _world(live: Any, staff: Any) -> World:
    """A linked customer of `staff`'s reseller with a refused consent webhook delivery, a refused drift event delivery
    and a failed Teams sync (records only, nothing the job engine picks up), and the narrowed logins."""
    from teamsvoice.domain.calling.models import CallingJob
    from teamsvoice.domain.consent.models import WebhookDelivery
    from teamsvoice.domain.fusion import tenants as fusion_tenants
    from teamsvoice.domain.fusion.models import FusionNumber
    from teamsvoice.domain.fusion.roles import default_permissions
    from teamsvoice.domain.orgs.models import Enterprise, Reseller
    from teamsvoice.domain.voice_state.models import DriftDelivery, DriftWebhook

    mark = uuid.uuid4().hex[:6]
    errors = {"webhook": f"consent delivery refused {mark}", "drift-webhook": f"drift delivery refused {mark}",
              "sync": f"sync failed {mark}"}
    usernames = {name: f"no-{name}-{mark}" for name in LACKING} | {"users": f"users-only-{mark}"}

    async def make(session: Any) -> World:
        enterprise_id, tenant_uuid, subscription_id = await customer_records(session, staff.reseller_id, f"Rights {mark}",
                                                                            services=["DIRECT_ROUTING"])
        enterprise = await session.get(Enterprise, enterprise_id)
        enterprise.tenant_id, enterprise.registered = str(uuid.uuid4()), True  # linked (the Tenant page's cards)
        (await session.get(Reseller, staff.reseller_id)).registered_redirect_urls = [f"{NOWHERE}/"]
        hook = DriftWebhook(reseller_id=staff.reseller_id, url=f"{NOWHERE}/drift", secret_encrypted="x")
        session.add(hook)
        await session.flush()
        consent = WebhookDelivery(enterprise_id=enterprise_id, url=f"{NOWHERE}/hook", payload_encrypted="x",
                                  status="refused", attempts=1, last_error=errors["webhook"])
        drift = DriftDelivery(webhook_id=hook.id, body=json.dumps({"type": "drift.detected", "enterpriseId": enterprise_id}),
                              status="refused", attempts=1, last_error=errors["drift-webhook"])
        sync = CallingJob(enterprise_id=enterprise_id, kind="SYNC_TEAMS_USERS", status="FAILED", error=errors["sync"])
        session.add_all([consent, drift, sync])
        session.add_all(FusionNumber(subscription_id=subscription_id, e164=e164, iso_code="BE", country_code="32",
                                     nsn=e164[3:], number_type="geographic", source="numbers")
                        for e164 in (f"+3258{int(mark, 16) % 10**6:06d}{k}" for k in range(NUMBERS)))
        for name, role in LACKING.items():
            await fusion_tenants.create_login(session, username=usernames[name], password=PASSWORD, level="reseller",
                                              reseller_id=staff.reseller_id,
                                              permissions=[p for p in default_permissions("reseller") if p != role])
        await fusion_tenants.create_login(session, username=usernames["users"], password=PASSWORD, level="reseller",
                                          reseller_id=staff.reseller_id, permissions=["users.list"])
        await session.flush()
        return World(mark, f"/console/tenants/{tenant_uuid}/subscriptions/{subscription_id}",
                     f"/console/enterprises/{enterprise_id}",
                     {"webhook": consent.id, "drift-webhook": drift.id, "sync": sync.id}, errors, usernames)

    return await in_session(live, make)


async def test_jobs_no_fusion_route_reads_show_to_a_login_holding_their_closest_role(  # type: ignore[no-untyped-def]
        live, organisation) -> None:
    """Consent webhook deliveries, drift event deliveries and Teams syncs on the Jobs page (listed, asked for by kind,
    retried): each only with its role, the others still shown; a ConnecttoTeams login sees them all."""
    staff = organisation.resellers[0]
    world = await _world(live, staff)
    labels = {"webhook": "webhook delivery", "drift-webhook": "drift event delivery", "sync": "Teams sync"}
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)
        listed = await browser.get("/console/jobs")
        assert listed.status_code == 200 and all(e in listed.text for e in world.errors.values()), listed.text
        assert "lacks the right" not in listed.text
    for kind, label in labels.items():
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
            await _signed_in(browser, world.usernames[kind], PASSWORD)
            role = LACKING[kind]
            for path in ("/console/jobs", f"/console/jobs?kind={kind}"):
                listed = await browser.get(path)
                assert listed.status_code == 200 and world.errors[kind] not in listed.text, (kind, listed.text)
                assert f"Your login lacks the right to see {label} jobs (role {role})." in listed.text, listed.text
                assert f'<option value="{kind}"' not in listed.text
            every = (await browser.get("/console/jobs")).text
            assert all(world.errors[other] in every for other in labels if other != kind), (kind, every)
            retried = await browser.post(f"/console/jobs/{kind}/{world.job_ids[kind]}/retry",
                                         data={"csrf_token": _csrf(every)})
            assert retried.status_code == 403 and role in retried.text, (kind, retried.text)


async def test_an_enterprise_its_webhook_deliveries_and_consent_link_need_their_roles(  # type: ignore[no-untyped-def]
        live, organisation) -> None:
    """A ConnecttoTeams enterprise's page is read as a Fusion tenant is (tenants.instance.read), its consent webhook
    deliveries as the wizard is (wizard.read), its consent link made as the wizard makes one (wizard.run)."""
    staff = organisation.resellers[0]
    world = await _world(live, staff)
    delivery_error = world.errors["webhook"]
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)
        shown = await browser.get(world.enterprise_page)
        assert shown.status_code == 200 and delivery_error in shown.text and "Get link" in shown.text, shown.text
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, world.usernames["enterprise"], PASSWORD)
        refused = await browser.get(world.enterprise_page)
        assert refused.status_code == 403 and f"role {ENTERPRISE_READ}" in refused.text, refused.text
        assert delivery_error not in refused.text and f"Rights {world.mark}" not in refused.text
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, world.usernames["webhook"], PASSWORD)
        shown = await browser.get(world.enterprise_page)
        assert shown.status_code == 200 and delivery_error not in shown.text, shown.text
        assert f"Your login lacks the right to see webhook delivery jobs (role {WIZARD_READ})." in shown.text
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, world.usernames["link"], PASSWORD)
        shown = await browser.get(world.enterprise_page)
        assert shown.status_code == 200 and "Get link" not in shown.text, shown.text
        assert f"Your login lacks the right to make consent links (role {WIZARD_RUN})." in shown.text
        made = await browser.post(f"{world.enterprise_page}/consent-link", data={
            "csrf_token": _csrf(shown.text), "action_type": "TEAMS_CALLING", "redirect_url": f"{NOWHERE}/"})
        assert made.status_code == 403 and WIZARD_RUN in made.text, made.text


async def test_the_audit_log_and_the_tenant_cards_need_the_status_read_role(  # type: ignore[no-untyped-def]
        live, organisation) -> None:
    """The audit log (page, CSV, an entry) as teamsvoice's API reads it, and its menu entry; the Tenant page's
    readiness and drift cards as their routes read them (the page showed them, and they answered 403)."""
    staff = organisation.resellers[0]
    world = await _world(live, staff)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)
        audit_page = await browser.get("/console/audit")
        assert audit_page.status_code == 200 and _menu(audit_page.text) == ["Customers", "Jobs", "Audit log"]
        entry = re.search(r'href="(/console/audit/\d+)"', audit_page.text)
        assert entry is not None, audit_page.text
        tenant = await browser.get(world.tenant_page)
        assert tenant.status_code == 200 and 'id="ready-h">Readiness<' in tenant.text, tenant.text
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, world.usernames["drift-webhook"], PASSWORD)
        listed = await browser.get("/console/jobs")
        assert listed.status_code == 200 and _menu(listed.text) == ["Customers", "Jobs"], listed.text
        for path in ("/console/audit", "/console/audit.csv", entry.group(1)):
            refused = await browser.get(path)
            assert refused.status_code == 403 and f"role {STATUS_READ}" in refused.text, (path, refused.text)
        tenant = await browser.get(world.tenant_page)
        assert tenant.status_code == 200 and "Readiness" not in tenant.text and "Drift and plan" not in tenant.text
        assert f"lacks the right to see the tenant's readiness and drift (role {STATUS_READ})" in tenant.text


async def test_a_login_narrowed_to_users_list_reads_none_of_them(live, organisation) -> None:  # type: ignore[no-untyped-def]
    staff = organisation.resellers[0]
    world = await _world(live, staff)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, world.usernames["users"], PASSWORD)
        for path in ("/console/jobs", "/console/audit", "/console/audit.csv", world.enterprise_page):
            refused = await browser.get(path)
            assert refused.status_code == 403, (path, refused.text)
            assert not any(e in refused.text for e in world.errors.values()), (path, refused.text)
        assert _menu(refused.text) == [], refused.text


def _tabs(text: str) -> list[str]:
    found = re.search(r'<nav aria-label="Tenant" class="tabs">(.*?)</nav>', text, re.S)
    assert found is not None, text
    return re.findall(r">([^<]+)</a>", found.group(1))


async def test_number_counts_need_the_role_fusion_reads_them_with(live, organisation) -> None:  # type: ignore[no-untyped-def]
    """A subscription's number counts (Customers page, Tenant page) as the Fusion API's GET subscription answers them
    (subscriptions.instance.read): a login lacking it saw them on both pages."""
    from tests.console.test_console_lists import _rows

    staff = organisation.resellers[0]
    world = await _world(live, staff)
    customers = f"/console/customers?q=Rights+{world.mark}"
    table = "Customers (Fusion tenants and subscriptions)"
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)
        listed = await browser.get(customers)
        assert listed.status_code == 200 and "Numbers (free / assigned)" in listed.text, listed.text
        assert [row[-1] for row in _rows(listed.text, table)] == [f"{NUMBERS} / 0"], listed.text
        tenant = await browser.get(world.tenant_page)
        assert tenant.status_code == 200 and f'data-testid="free-count">{NUMBERS}<' in tenant.text, tenant.text
        assert 'data-testid="numbers-hidden"' not in listed.text + tenant.text
    lacking = f"lacks the right to see the subscription's number counts (role {SUBSCRIPTION_READ})"
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, world.usernames["numbers"], PASSWORD)
        listed = await browser.get(customers)
        assert listed.status_code == 200 and "Numbers (free / assigned)" not in listed.text, listed.text
        rows = _rows(listed.text, table)
        assert len(rows) == 1 and rows[0][1] == "voice" and f"{NUMBERS} / 0" not in rows[0], listed.text
        assert f"lacks the right to see the subscriptions' number counts (role {SUBSCRIPTION_READ})" in listed.text
        tenant = await browser.get(world.tenant_page)
        assert tenant.status_code == 200 and "free-count" not in tenant.text and lacking in tenant.text, tenant.text


async def test_the_users_and_bulk_tabs_show_to_a_login_their_pages_open_to(  # type: ignore[no-untyped-def]
        live, organisation) -> None:
    """The Tenant page's Users and Bulk CSV tabs (on the Tenant page and the bulk page) only to a login holding the
    role their pages ask for: a login lacking it was offered the tab, and the page answered 403."""
    staff = organisation.resellers[0]
    world = await _world(live, staff)
    users, bulk = f"{world.tenant_page}/users", f"{world.tenant_page}/bulk"
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)
        for path in (world.tenant_page, bulk):
            shown = await browser.get(path)
            assert shown.status_code == 200 and _tabs(shown.text) == ["Tenant", "Users", "Bulk CSV"], (path, shown.text)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, world.usernames["sync"], PASSWORD)  # lacks users.list
        for path in (world.tenant_page, bulk):
            shown = await browser.get(path)
            assert shown.status_code == 200 and _tabs(shown.text) == ["Tenant", "Bulk CSV"], (path, shown.text)
        refused = await browser.get(users)
        assert refused.status_code == 403 and USERS_LIST in refused.text, refused.text
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, world.usernames["bulk"], PASSWORD)  # lacks users.bulk
        shown = await browser.get(world.tenant_page)
        assert shown.status_code == 200 and _tabs(shown.text) == ["Tenant", "Users"], shown.text
        refused = await browser.get(bulk)
        assert refused.status_code == 403 and USERS_BULK in refused.text, refused.text


async def test_a_job_is_retried_or_cancelled_only_by_a_login_the_jobs_page_opens_to(  # type: ignore[no-untyped-def]
        live, organisation, receiver) -> None:
    """POST /console/jobs/{kind}/{id}/{action} asks for the Jobs page's role (tenants.list) too: a login lacking it,
    refused the page, retried a refused consent webhook delivery (holding the wizard's roles). A full login still
    retries it, and the receiver gets it."""
    from teamsvoice.core.security import Keyring, load_or_create_master_key
    from teamsvoice.domain.consent.models import WebhookDelivery
    from teamsvoice.domain.consent.service import WEBHOOK_PURPOSE
    from teamsvoice.domain.orgs.models import Reseller

    staff = organisation.resellers[0]
    world = await _world(live, staff)
    keyring = Keyring(load_or_create_master_key(live.settings.secret_key, live.settings.data_dir))
    path, name = f"/rights-{world.mark}", f"Rights {world.mark}"

    async def make(session: Any) -> int:
        (await session.get(Reseller, staff.reseller_id)).registered_redirect_urls = [f"{receiver.url}/"]
        enterprise_id = int(world.enterprise_page.rsplit("/", 1)[1])
        delivery = WebhookDelivery(enterprise_id=enterprise_id, url=f"{receiver.url}{path}", status="refused",
                                   payload_encrypted=keyring.encrypt(json.dumps({"enterpriseName": name}),
                                                                     purpose=WEBHOOK_PURPOSE),
                                   attempts=1, last_error=f"HTTP 503 {world.mark}")
        session.add(delivery)
        await session.flush()
        return int(delivery.id)

    delivery_id = await in_session(live, make)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, world.usernames["jobs"], PASSWORD)
        page_refused = await browser.get("/console/jobs")
        assert page_refused.status_code == 403 and TENANTS_LIST in page_refused.text, page_refused.text
        for action in ("retry", "cancel"):
            refused = await browser.post(f"/console/jobs/webhook/{delivery_id}/{action}",
                                         data={"csrf_token": _csrf(page_refused.text)})
            assert refused.status_code == 403 and f"role {TENANTS_LIST}" in refused.text, (action, refused.text)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)
        listed = await browser.get("/console/jobs", params={"kind": "webhook"})
        row = re.search(rf'<tr id="job-webhook-{delivery_id}">.*?data-testid="status">([^<]+)<', listed.text, re.S)
        assert row is not None and row.group(1) == "refused", listed.text  # untouched by the refused retry
        retried = await browser.post(f"/console/jobs/webhook/{delivery_id}/retry", data={"csrf_token": _csrf(listed.text)})
        assert retried.status_code == 303, retried.text
    received = await asyncio.to_thread(receiver.at, path)
    assert [r["body"] for r in received] == [{"enterpriseName": name}], received



CUSTOMERS_TABLE = "Customers (Fusion tenants and subscriptions)"
HIDDEN = {"subscriptions": "Your login lacks the right to see the customers' subscriptions (role "
                           "tenants.instance.subscriptions.list).",
          "status": "Your login lacks the right to see the subscriptions' onboarding state and Microsoft tenant "
                    f"(role {STATUS_READ}).",
          "enterprises": f"Your login lacks the right to see the ConnecttoTeams enterprises (role {ENTERPRISE_READ})."}


@dataclass
class Customers:
    """`_world`'s customer as the Customers page lists it, and a ConnecttoTeams enterprise found by the same search."""
    world: World
    ms_tenant: str  # the subscription's Microsoft tenant
    enterprise: str  # the enterprise's name
    enterprise_tenant: str  # its Microsoft tenant (a consent, Presence, granted)
    tenants_only: str  # a login holding tenants.list only


async def _customers(live: Any, staff: Any) -> Customers:
    from teamsvoice.domain.consent.models import EnterpriseConsent
    from teamsvoice.domain.fusion import tenants as fusion_tenants
    from teamsvoice.domain.orgs.models import Enterprise

    world = await _world(live, staff)
    mark = world.mark
    name, tenant, tenants_only = f"Rights {mark} enterprise", f"ctt-tenant-{mark}", f"tenants-only-{mark}"

    async def make(session: Any) -> str:
        enterprise = Enterprise(reseller_id=staff.reseller_id, enterprise_name=name, tenant_id=tenant, registered=True)
        session.add(enterprise)
        await session.flush()
        session.add(EnterpriseConsent(enterprise_id=enterprise.id, consent_name="Presence", tenant_id=tenant,
                                      granted_by=f"admin@{mark}.example"))
        await fusion_tenants.create_login(session, username=tenants_only, password=PASSWORD, level="reseller",
                                          reseller_id=staff.reseller_id, permissions=[TENANTS_LIST])
        await session.flush()
        linked = await session.get(Enterprise, int(world.enterprise_page.rsplit("/", 1)[1]))
        return str(linked.tenant_id)

    return Customers(world, await in_session(live, make), name, tenant, tenants_only)


async def _customers_seen(live: Any, customers: Customers, username: str, password: str = PASSWORD) -> list[str]:
    """The Customers page searched for the customer, and the same search's live results (the partial alone)."""
    path = f"/console/customers?q=Rights+{customers.world.mark}"
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, username, password)
        shown = [await browser.get(path),
                 await browser.get(path, headers={"HX-Request": "true", "HX-Target": "customer-results"})]
    assert all(p.status_code == 200 for p in shown), [p.text for p in shown]
    assert "<html" not in shown[1].text, shown[1].text
    return [p.text for p in shown]


async def _full_login_sees_it_all(live: Any, staff: Any, customers: Customers) -> None:
    from tests.console.test_console_lists import _rows

    mark = customers.world.mark
    for text in await _customers_seen(live, customers, staff.username, staff.password):
        assert _rows(text, CUSTOMERS_TABLE) == [[f"Rights {mark}", "voice", "onboarded", customers.ms_tenant,
                                                 f"{NUMBERS} / 0"]], text
        assert [row[:4] for row in _rows(text, "ConnecttoTeams enterprises")] == [
            [customers.enterprise, "yes", customers.enterprise_tenant, "Presence"]], text
        assert "lacks the right" not in text


async def test_a_customers_subscriptions_need_the_role_fusion_lists_them_with(  # type: ignore[no-untyped-def]
        live, organisation) -> None:
    """A login narrowed to tenants.list saw each customer's subscriptions (their names, onboarding state, Microsoft
    tenant) and the ConnecttoTeams enterprises (their Microsoft tenants, consents) on the Customers page, while the
    Fusion API refused it the subscriptions (403): now the customers' names alone, saying which roles the rest needs."""
    from tests.console.test_console_lists import _rows

    staff = organisation.resellers[0]
    customers = await _customers(live, staff)
    await _full_login_sees_it_all(live, staff, customers)
    for text in await _customers_seen(live, customers, customers.tenants_only):
        assert _rows(text, CUSTOMERS_TABLE) == [[f"Rights {customers.world.mark}"]], text
        assert all(hidden not in text for hidden in (">voice<", "onboarded", customers.ms_tenant, customers.enterprise,
                                                     customers.enterprise_tenant, "Presence")), text
        assert HIDDEN["subscriptions"] in text and HIDDEN["enterprises"] in text, text
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as api:  # the same login through the Fusion API
        signed = await api.post("/api/v01/auth/login", json={"username": customers.tenants_only, "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        tenant_uuid = customers.world.tenant_page.split("/")[3]
        listed = await api.get(f"{BASE}/tenants/{tenant_uuid}/subscriptions", headers=bearer(signed.json()["access_token"]))
        assert listed.status_code == 403, listed.text


async def test_a_subscriptions_onboarding_state_and_tenant_need_the_status_read_role(  # type: ignore[no-untyped-def]
        live, organisation) -> None:
    """Their onboarding state and Microsoft tenant as the Fusion API's GET msteams/status answers them (status.read):
    a login lacking it saw both on the Customers page. (Holding wizard.read, it keeps a column for the wizard's consent
    links, as GET msteams/wizard answers them: test_console_lists; this subscription is linked, so none.)"""
    from tests.console.test_console_lists import _rows

    staff = organisation.resellers[0]
    customers = await _customers(live, staff)
    for text in await _customers_seen(live, customers, customers.world.usernames["drift-webhook"]):  # no status.read
        assert _rows(text, CUSTOMERS_TABLE) == [[f"Rights {customers.world.mark}", "voice", "", f"{NUMBERS} / 0"]], text
        assert "onboarded" not in text and customers.ms_tenant not in text and ">Onboarding<" not in text, text
        assert HIDDEN["status"] in text and customers.enterprise_tenant in text, text


async def test_the_customers_pages_enterprises_need_their_pages_role(live, organisation) -> None:  # type: ignore[no-untyped-def]
    """The ConnecttoTeams enterprises (their Microsoft tenants, consents granted and missing) as their own page reads
    them (tenants.instance.read): a login lacking it, refused that page, saw them listed on the Customers page."""
    from tests.console.test_console_lists import _rows

    staff = organisation.resellers[0]
    customers = await _customers(live, staff)
    for text in await _customers_seen(live, customers, customers.world.usernames["enterprise"]):
        assert _rows(text, CUSTOMERS_TABLE) == [[f"Rights {customers.world.mark}", "voice", "onboarded",
                                                 customers.ms_tenant, f"{NUMBERS} / 0"]], text
        assert all(hidden not in text for hidden in (customers.enterprise, customers.enterprise_tenant, "Presence"))
        assert HIDDEN["enterprises"] in text and HIDDEN["status"] not in text, text
