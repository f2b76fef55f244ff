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


async def _detail(sub: Onboarded, upn: str) -> dict:
    """The user's voice record's `last_sync_detail`."""
    from teamsvoice.domain.fusion.models import FusionSubscription
    from teamsvoice.domain.provisioning import voice_users

    found: list[dict] = []

    async def read(session):  # type: ignore[no-untyped-def]
        subscription = await session.get(FusionSubscription, int(sub.path.rsplit("/", 1)[1]))
        found.append((await voice_users.find(session, subscription.enterprise_id, upn)).last_sync_detail)
    await sub.world._with_session(read)
    return found[0]


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
        assert failed.status_code == 503, failed.text
        # The answer says what is recorded and that sending it again finishes it; the record claims no account
        # disabled before Microsoft disabled it.
        said = f"Offboarding of {upn} recorded (number {number} freed, calling off), not finished in Microsoft: "
        assert failed.json()["message"].startswith(f"{said}send the request again to finish it."), failed.text
        assert "account" not in await _detail(sub, upn)
        again = await client.post(offboard, headers=headers, json={})
        assert again.status_code == 200, again.text
        assert again.json()["numberFreed"] == number and again.json()["account"] == "disabled", again.text
        assert (await _detail(sub, upn))["account"] == "disabled"
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


async def test_an_offboarding_microsoft_refuses_claims_no_account_and_says_so(
        sub: Onboarded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Microsoft refusing the account's disable (403: an app may not disable an account with an admin role) left the
    record saying the account was disabled, and the answer did not say whether to send the request again."""
    from teamsvoice.core.errors import UpstreamError
    from teamsvoice.microsoft.voice_state import UserAccountsAdapter

    client, headers, tenant_id = sub.world.client, sub.headers, sub.tenant["tenantId"]
    user = [u["msTeams"] for u in await sub.users(5) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][1]
    upn, number = user["userPrincipalName"], sub.numbers[1]
    put = await client.put(f"{sub.path}/msteams/users/{user['id']}/phone_number", headers=headers,
                           json={"phoneNumber": number})
    assert put.status_code == 204, put.text
    disable = UserAccountsAdapter.disable

    async def refused(self, id_or_upn: str) -> None:  # type: ignore[no-untyped-def]
        raise UpstreamError(f"Microsoft Graph PATCH /v1.0/users/{id_or_upn} failed (403 Authorization_RequestDenied): "
                            "Insufficient privileges to complete the operation.", retryable=False, status=403,
                            upstream_code="Authorization_RequestDenied")

    offboard = f"{API}/tenants/{tenant_id}/users/{upn}/offboard"
    monkeypatch.setattr(UserAccountsAdapter, "disable", refused)
    failed = await client.post(offboard, headers=headers, json={})
    assert failed.status_code == 502, failed.text
    message = failed.json()["message"]
    assert message.startswith(f"Offboarding of {upn} recorded (number {number} freed, calling off), not finished in "
                              "Microsoft: sending the request again fails the same way"), message
    assert "failed to disable the account: Microsoft Graph PATCH" in message, message
    assert "account" not in await _detail(sub, upn) and number not in await sub.teams_numbers(user["id"])
    # Resolved in Microsoft, the offboarding sent again finishes, and only then does the record name the account.
    monkeypatch.setattr(UserAccountsAdapter, "disable", disable)
    connector = MicrosoftConnector(sub.world.live.settings)
    try:
        again = await client.post(offboard, headers=headers, json={})
        assert again.status_code == 200 and again.json()["numberFreed"] == number, again.text
        assert (await _detail(sub, upn))["account"] == "disabled"
    finally:
        await connector.connect(tenant_id).directory_admin.update_user(user["id"], account_enabled=True)
        await connector.aclose()
