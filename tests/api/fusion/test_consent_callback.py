"""Fusion's consent callback (`/api/v01/msteams/consent`) when Microsoft fails or the administrator's browser loads
the answer again: nothing final comes of Microsoft not answering, and every answer that granted nothing, while the
consent link can still be used, links the consent URL to sign in again."""

import asyncio
import html
import re
import uuid

import pytest

from teamsvoice import demo
from tests.api.fusion.support import BASE, make_world
from tests.support.emulated import emulated_tenant
from tests.support.live import emulator_faults
from tests.support.token_endpoint import failing_code_redemption


@pytest.fixture
async def world(client, live, organisation):
    return await make_world(client, live, organisation)


async def _waiting_for_consent(world, live) -> tuple[str, str, dict, dict]:  # type: ignore[no-untyped-def]
    """A subscription whose wizard stopped for want of consent, in a tenant of its own: its path, the consent URL,
    the tenant's Global Administrator, the login's headers."""
    microsoft = await emulated_tenant(live, f"consent-{uuid.uuid4().hex[:8]}.example", 2)
    headers = await world.as_("reseller")
    tenant = await world.create_tenant()
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{(await world.create_subscription(tenant['uuid']))['id']}"
    admin = microsoft["globalAdmin"]
    assert (await world.client.post(f"{path}/msteams/admins", headers=headers, json={
        "msUsername": admin["username"], "msPassword": admin["password"]})).status_code == 200
    wizard = await world.run_wizard(path, headers)
    assert wizard["status"] == "wizard_1_ERROR" and wizard["consentUrl"], wizard
    return path, wizard["consentUrl"], admin, headers


def _sign_in_link(page: str) -> str | None:
    found = re.search(r"<a href='([^']+)'>Sign in again</a>", page)
    return html.unescape(found.group(1)) if found else None


async def _consent(live, consent_url: str, admin: dict) -> str:  # type: ignore[no-untyped-def]
    """The administrator signs in at the consent URL and accepts: where Microsoft sends the browser (the callback)."""
    return await asyncio.to_thread(demo.grant_admin_consent, consent_url, admin["username"], admin["password"],
                                   str(live.emulator.ca_cert_path))


async def test_a_token_endpoint_not_answering_the_code_is_not_final(world, live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Microsoft's token endpoint answers the code's redemption 503: the page says Microsoft did not answer (503) and
    links the consent URL, nothing is recorded (the wizard still lacks the consent). The code was never spent: the
    page loaded again once Microsoft answers grants the consent. (It was a 500: MSAL's own error for a 5xx.)"""
    client = world.client
    path, consent_url, admin, headers = await _waiting_for_consent(world, live)
    callback = await _consent(live, consent_url, admin)
    with failing_code_redemption(monkeypatch) as failed:
        answered = await client.get(callback)
    assert failed, "the code's redemption was not asked"
    assert answered.status_code == 503 and "Microsoft did not answer" in answered.text, answered.text
    assert _sign_in_link(answered.text) == consent_url
    assert (await world.run_wizard(path, headers))["status"] == "wizard_1_ERROR"  # no consent recorded

    reloaded = await client.get(callback)
    assert reloaded.status_code == 200 and "Consent granted" in reloaded.text, reloaded.text


async def test_an_answer_loaded_again_links_a_new_sign_in(world, live) -> None:  # type: ignore[no-untyped-def]
    """Graph answers the callback's reads 429 once the code is redeemed: the page links a new sign-in (503). The
    browser loads that answer again (its code is spent): Microsoft refuses the code, and the page says so and links
    the consent URL again (it answered "Consent not effective" with no way forward). An administrator who declined
    gets the link too; signed in again there, the consent is granted."""
    client = world.client
    _, consent_url, admin, _ = await _waiting_for_consent(world, live)
    callback = await _consent(live, consent_url, admin)
    await emulator_faults(live.emulator, "PUT", storm429={"count": 1000, "retryAfterSeconds": 0})
    try:
        answered = await client.get(callback)
    finally:
        await emulator_faults(live.emulator, "DELETE")
    assert answered.status_code == 503 and "Microsoft did not answer" in answered.text, answered.text
    assert _sign_in_link(answered.text) == consent_url

    reloaded = await client.get(callback)
    assert reloaded.status_code == 400 and "cannot be used again" in reloaded.text, reloaded.text
    assert _sign_in_link(reloaded.text) == consent_url

    state = re.search(r"[?&]state=([^&]+)", callback).group(1)
    declined = await client.get(f"/api/v01/msteams/consent?state={state}&error=access_denied"
                                "&error_description=The+user+declined")
    assert declined.status_code == 400 and "Consent not granted" in declined.text, declined.text
    assert _sign_in_link(declined.text) == consent_url

    granted = await client.get(await _consent(live, _sign_in_link(reloaded.text) or "", admin))
    assert granted.status_code == 200 and "Consent granted" in granted.text, granted.text
