"""A user renamed in Entra ID (a new user principal name, the same object id) keeps its voice record: teamsvoice's
records were found by name only, so a change after the rename added a second record without the number, reconcile
took the number off the user in Teams, and the old record kept it (held, not free, shown nowhere)."""

import uuid

import pytest

from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.users_support import Onboarded, onboard


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation)


async def _rename(sub: Onboarded, user_id: str, upn: str) -> None:
    connector = MicrosoftConnector(sub.world.live.settings)
    try:
        await connector.connect(sub.tenant["tenantId"]).graph.patch(f"/users/{user_id}", {"userPrincipalName": upn})
    finally:
        await connector.aclose()


async def test_a_user_renamed_in_microsoft_keeps_its_number_and_record(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    users = await sub.users(3)
    alice, bob = users[1]["msTeams"], users[2]["msTeams"]
    number = sub.numbers[0]
    given = await client.put(f"{path}/msteams/users/{alice['id']}/phone_number", headers=headers, json={"phoneNumber": number})
    assert given.status_code == 204, given.text
    renamed = f"renamed-{uuid.uuid4().hex[:8]}@{alice['userPrincipalName'].split('@')[1]}"
    await _rename(sub, alice["id"], renamed)
    try:
        changed = await client.put(f"{path}/msteams/users/{alice['id']}/vrp", headers=headers, json={"vrp": "teamsvoice"})
        assert changed.status_code == 204, changed.text
        assert await sub.teams_numbers(alice["id"]) == [number]  # still the user's in Teams
        got = (await client.get(f"{path}/msteams/user/{alice['id']}", headers=headers)).json()
        assert got["msTeams"]["userPrincipalName"] == renamed
        assert got["draas"]["phoneNumber"] == number and got["msTeams"]["vrp"] == "teamsvoice"
        held = await client.put(f"{path}/msteams/users/{bob['id']}/phone_number", headers=headers, json={"phoneNumber": number})
        assert held.status_code == 400 and held.json()["error"]["code"] == 2011  # alice's, not a stale record's
        freed = await client.put(f"{path}/msteams/users/{alice['id']}", headers=headers, json={"phoneNumber": None})
        assert freed.status_code == 204, freed.text
        taken = await client.put(f"{path}/msteams/users/{bob['id']}/phone_number", headers=headers, json={"phoneNumber": number})
        assert taken.status_code == 204, taken.text  # free again: no record kept it under the old name
        assert await sub.teams_numbers(bob["id"]) == [number]
        assert (await client.put(f"{path}/msteams/users/{bob['id']}", headers=headers, json={"phoneNumber": None})).status_code == 204
    finally:
        await _rename(sub, alice["id"], alice["userPrincipalName"])  # the emulated tenant is shared by the tests
