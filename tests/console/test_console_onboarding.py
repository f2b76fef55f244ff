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
        card = await run_wizard(ms_username=admin["username"], ms_password=admin["password"])
        assert "wizard_1_ERROR" in card and "Consent link" in card, card
        [consent_url] = re.findall(r'class="wrap" href="([^"]+)"', card)
        callback = await asyncio.to_thread(demo.grant_admin_consent, html.unescape(consent_url), admin["username"],
                                           admin["password"], str(live.emulator.ca_cert_path))
        assert (await browser.get(callback)).status_code == 200
        card = await run_wizard(ms_username=admin["username"], ms_password="")  # the password stored is used
        assert 'data-testid="onboarding-state">onboarded<' in card, card
        page = await browser.get(base)
        assert 'href="' + base + '/users"' in page.text and microsoft["tenantId"] in page.text
    status = (await client.get(f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}/msteams/status",
                               headers=await world.as_("reseller"))).json()
    assert status["status"] == "onboarded" and status["msTenantId"] == microsoft["tenantId"]
