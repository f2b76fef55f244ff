"""A drift scan that Microsoft fails transiently (5xx, throttling) waits and scans the tenant once Microsoft
answers: the failure is never the scan's outcome (it was: the tenant's scan recorded as failed, detection and
auto-apply waiting for the next scheduled scan, an hour by default)."""

import time

import anyio

from tests.support.ctt import bearer
from tests.support.live import emulator_faults
from tests.support.onboarding import Onboarding

API = "/api/teamsvoice/v1"


async def test_a_scan_microsoft_fails_transiently_waits_and_scans_once_it_answers(client, live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    onboarding = Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])
    await onboarding.register()
    token, tenant_id = onboarding.token, live.emulator.tenants[0]["tenantId"]

    async def tenant() -> dict:
        listed = await client.get(f"{API}/tenants", headers=bearer(token))
        assert listed.status_code == 200, listed.text
        [row] = [t for t in listed.json() if t["tenantId"] == tenant_id]
        return row

    async def until(done) -> dict:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 60
        while not done(row := await tenant()):
            assert time.monotonic() < deadline, row
            await anyio.sleep(0.1)
        return row

    assert (await tenant())["lastScanAt"] is None
    await emulator_faults(live.emulator, "PUT", errorRate5xx=1)  # every Graph and Teams request answers 503
    try:
        scan = await client.post(f"{API}/drift/scan", headers=bearer(token))
        assert scan.status_code == 202, scan.text
        waiting = await until(lambda row: row["lastScanError"] is not None)
    finally:
        await emulator_faults(live.emulator, "DELETE")
    # While it waits the tenant says why, and no scan is recorded as done.
    assert waiting["lastScanAt"] is None and "Microsoft failed transiently" in waiting["lastScanError"], waiting
    scanned = await until(lambda row: row["lastScanAt"] is not None)
    assert scanned["lastScanError"] is None, scanned
