"""A customer created in the console is onboarded from the console: the staff member names the customer's Teams
administrator and runs the wizard; the tenant page follows its steps, shows the consent link the customer's
Global Administrator must open, and after the consent the wizard links the tenant (a console-created customer
reached a dead end: the Users tab answered "run the onboarding wizard first", which only the API could)."""

import asyncio
import html
import re
import uuid

import httpx

from teamsvoice import demo
from tests.api.fusion.support import BASE, PASSWORD, make_world
from tests.support.browser import forms, submit
from tests.support.emulated import emulated_tenant


async def test_a_customer_is_onboarded_from_the_console(client: httpx.AsyncClient, live, organisation) -> None:  # type: ignore[no-untyped-def]
    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant("reseller", name="Console Onboarded")
    subscription = await world.create_subscription(tenant["uuid"])
    microsoft = await emulated_tenant(live, f"console-{uuid.uuid4().hex[:8]}.example", 2)
    admin = microsoft["globalAdmin"]
    base = f"/console/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"

    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        form_page = await browser.get("/console/login")
        [form] = forms(form_page.text)
        assert (await submit(browser, str(form_page.url), form, username="reseller", password=PASSWORD)).status_code == 303

        async def submit_onboarding(**values: str) -> httpx.Response:
            page = await browser.get(base)
            assert 'href="' + base + '/users"' not in page.text  # no Users tab before the tenant is linked
            [onboard] = [f for f in forms(page.text) if f.action == f"{base}/onboarding"]
            return await submit(browser, str(page.url), onboard, **values)

        async def run_wizard(**values: str) -> str:
            """Submits the onboarding form; answers the onboarding card once the wizard has stopped."""
            assert (await submit_onboarding(**values)).status_code == 303
            for _ in range(300):
                card = (await browser.get(f"{base}/onboarding")).text
                if "every 1s" not in card:  # polled while it runs
                    return card
                await asyncio.sleep(0.1)
            raise AssertionError("the wizard did not stop")

        missing = await submit_onboarding(ms_username=admin["username"], ms_password="")  # none stored yet
        assert missing.status_code == 400 and "administrator" in missing.text and "password" in missing.text
        too_long = await submit_onboarding(ms_username=admin["username"], ms_password="p" * 257)  # the API's limit too
        assert too_long.status_code == 400 and "msPassword: 1 to 256 characters" in too_long.text
        card = await run_wizard(ms_username=admin["username"], ms_password=admin["password"])
        assert "wizard_1_ERROR" in card and "Consent link" in card, card
        [consent_url] = re.findall(r'class="wrap" href="([^"]+)"', card)
        callback = await asyncio.to_thread(demo.grant_admin_consent, html.unescape(consent_url), admin["username"],
                                           admin["password"], str(live.emulator.ca_cert_path))
        assert (await browser.get(callback)).status_code == 200
        card = await run_wizard(ms_username=admin["username"], ms_password="")  # the password stored is used
        assert 'data-testid="onboarding-state">onboarded<' in card, card
        # The card's poll that sees the tenant linked reloads the page (its Users and Bulk CSV tabs, its readiness).
        polled = await browser.get(f"{base}/onboarding", headers={"HX-Request": "true"})
        assert polled.status_code == 204 and polled.headers["HX-Refresh"] == "true"
        page = await browser.get(base)
        assert 'href="' + base + '/users"' in page.text and microsoft["tenantId"] in page.text
    status = (await client.get(f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}/msteams/status",
                               headers=await world.as_("reseller"))).json()
    assert status["status"] == "onboarded" and status["msTenantId"] == microsoft["tenantId"]


async def test_onboarding_shows_to_staff_with_the_wizard_roles_only(client: httpx.AsyncClient, live, organisation) -> None:  # type: ignore[no-untyped-def]
    """A staff login without the Fusion API's wizard roles sees the customer's onboarding state, not the wizard's
    steps, errors and consent link, nor the form (its POST and the card answered 403 while the page showed them)."""
    from teamsvoice.domain.fusion import tenants as fusion_tenants
    from teamsvoice.domain.fusion.roles import default_permissions

    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant("reseller", name="Console Limited")
    subscription = await world.create_subscription(tenant["uuid"])
    base = f"/console/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"
    username = f"no-wizard-{uuid.uuid4().hex[:6]}"
    permissions = [p for p in default_permissions("reseller") if ".wizard." not in p and ".admins." not in p]

    async def limited(session) -> None:  # type: ignore[no-untyped-def]
        await fusion_tenants.create_login(session, username=username, password=PASSWORD, level="reseller",
                                          reseller_id=organisation.resellers[0].reseller_id, permissions=permissions)

    await world._with_session(limited)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        form_page = await browser.get("/console/login")
        [form] = forms(form_page.text)
        assert (await submit(browser, str(form_page.url), form, username=username, password=PASSWORD)).status_code == 303
        page = await browser.get(base)
        assert page.status_code == 200 and 'data-testid="onboarding-state">not_initiated<' in page.text
        assert not [f for f in forms(page.text) if f.action == f"{base}/onboarding"] and "Wizard steps" not in page.text
