"""Tenant readiness (domain/tenant_voice/readiness.py) against the emulator."""

from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.domain.tenant_voice.readiness import check_tenant_readiness
from tests.microsoft.support import MsEmulator, RegisteredApp, SeededTenant, admin_consent, seed_tenant


async def test_a_consented_licensed_tenant_is_ready(connector: MicrosoftConnector, tenant: SeededTenant) -> None:
    readiness = await check_tenant_readiness(connector, tenant.tenant_id)
    assert [(c.name, c.ok) for c in readiness.checks] == [
        ("graph_consent", True), ("teams_admin_consent", True), ("verified_domains", True),
        ("voice_licences", True), ("teams_admin_api", True),
    ], readiness.wire()
    assert readiness.ready
    assert readiness.check("verified_domains").data["custom"] == ["northwind.example"]
    assert readiness.check("voice_licences").data["phoneSystem"][0]["sku"] == "MCOEV"
    assert readiness.wire()["ready"] is True


async def test_missing_consent_and_seats_are_reported_per_check(
    connector: MicrosoftConnector, ms_emulator: MsEmulator, app: RegisteredApp
) -> None:
    bare = seed_tenant(ms_emulator, "unready.example", users=2, licences=[{"skuPartNumber": "MCOEV", "units": 0}])
    before = await check_tenant_readiness(connector, bare.tenant_id)
    assert not before.ready
    consent = before.check("graph_consent")
    assert not consent.ok and "No app-only access to tenant" in consent.detail
    assert before.check("voice_licences").detail.startswith("skipped")
    admin_consent(ms_emulator, bare, app)
    # msal answers a just-refused request again from its own short-lived error cache: ask afresh.
    fresh = MicrosoftConnector(connector.settings)
    try:
        after = await check_tenant_readiness(fresh, bare.tenant_id)
    finally:
        await fresh.aclose()
    assert after.check("graph_consent").ok and after.check("verified_domains").ok
    licences = after.check("voice_licences")
    assert not licences.ok and licences.detail == "every Teams Phone (MCOEV) seat is in use"
    assert not after.ready
