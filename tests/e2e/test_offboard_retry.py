"""Offboarding when Microsoft fails midway (found by a probe): the records' side is committed first (the number
goes to quarantine), so the offboarding sent again found no number on the record and answered `numberFreed: null`,
and the audit entry of the change said USER_DELETED for what was a disable. The retry now answers what the first
attempt would have, and the audit names the offboarding."""

import json

import httpx
import pytest
from sqlalchemy import create_engine, text

from teamsvoice.core.db import sync_url
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.users_support import Onboarded, onboard

API = "/api/teamsvoice/v1"


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation, count=2)


async def _faults(sub: Onboarded, method: str, body: dict | None = None) -> None:
    emulator = sub.world.live.emulator
    async with httpx.AsyncClient(verify=str(emulator.ca_cert_path)) as admin:
        response = await admin.request(method, f"{emulator.url}/_admin/faults", json=body)
        assert response.status_code == 200, response.text


def _audited_statuses(sub: Onboarded, upn: str) -> list[str]:
    """The last_sync_status each audit entry of the user's record gives it."""
    engine = create_engine(sync_url(sub.world.live.settings.effective_database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT after FROM audit_log WHERE aggregate = 'teams_user' "
                                           "AND object_label = :upn ORDER BY id"), {"upn": upn}).scalars().all()
    finally:
        engine.dispose()
    afters = [json.loads(r) if isinstance(r, str) else r for r in rows]
    return [a["last_sync_status"] for a in afters if a and "last_sync_status" in a]


async def test_an_offboarding_sent_again_after_microsoft_failed_answers_the_number_it_freed(sub: Onboarded) -> None:
    client, headers, tenant_id = sub.world.client, sub.headers, sub.tenant["tenantId"]
    user = next(u["msTeams"] for u in await sub.users(5) if not u["msTeams"]["userPrincipalName"].startswith("admin@"))
    upn, number = user["userPrincipalName"], sub.numbers[0]
    put = await client.put(f"{sub.path}/msteams/users/{user['id']}/phone_number", headers=headers,
                           json={"phoneNumber": number})
    assert put.status_code == 204, put.text
    offboard = f"{API}/tenants/{tenant_id}/users/{upn}/offboard"
    connector = MicrosoftConnector(sub.world.live.settings)
    try:
        # Microsoft is down for every try of the first call (a 429 storm answered at once: no waiting here).
        await _faults(sub, "PUT", {"storm429": {"count": 200, "retryAfterSeconds": 0}})
        try:
            failed = await client.post(offboard, headers=headers, json={})
        finally:
            await _faults(sub, "DELETE")
        assert failed.status_code >= 500, failed.text
        again = await client.post(offboard, headers=headers, json={})
        assert again.status_code == 200, again.text
        assert again.json()["numberFreed"] == number and again.json()["account"] == "disabled", again.text
        assert again.json()["quarantineSeconds"] > 0
        third = await client.post(offboard, headers=headers, json={})  # and again: the same answer
        assert third.status_code == 200 and third.json()["numberFreed"] == number, third.text
        account = await connector.connect(tenant_id).graph.get(f"/users/{user['id']}",
                                                               **{"$select": "accountEnabled"})
        assert account["accountEnabled"] is False
        assert "USER_DELETED" not in _audited_statuses(sub, upn)
        assert _audited_statuses(sub, upn)[-1] == "OFFBOARDED"
    finally:
        await _faults(sub, "DELETE")
        await connector.connect(tenant_id).directory_admin.update_user(user["id"], account_enabled=True)
        await connector.aclose()
