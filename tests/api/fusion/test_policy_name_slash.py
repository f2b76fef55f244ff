"""A voice routing policy whose name holds '/' (found by a probe): Graph's getPolicyId takes the name in its URL and
reads '/' (even as %2F) as a path separator, so the grant failed with Graph's raw text ("Resource not found for the
segment ..."). tenant_voice/rules.check_policy_name now refuses such a name up front, a 400 naming the field, for
both API families, the console (Fusion's parse_changes), resource accounts and a restored voice state."""

import uuid

import pytest

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.provisioning.service import per_user_policy
from teamsvoice.domain.teams_users import service
from teamsvoice.domain.voice_state.state import parse_document
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.users_support import Onboarded, onboard


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation, count=1)


async def test_a_policy_name_with_a_slash_is_a_400_naming_the_field(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    policy = f"Intl/Out-{uuid.uuid4().hex[:6]}"  # Teams takes the name (PowerShell); Graph cannot grant it
    connector = MicrosoftConnector(sub.world.live.settings)
    try:
        await connector.connect(sub.tenant["tenantId"]).cmdlets.run("New-CsOnlineVoiceRoutingPolicy", {"Identity": policy})
    finally:
        await connector.aclose()
    user = next(u["msTeams"] for u in await sub.users(5) if not u["msTeams"]["userPrincipalName"].startswith("admin@"))
    refused = await client.put(f"{path}/msteams/users/{user['id']}/vrp", headers=headers, json={"vrp": policy})
    assert refused.status_code == 400, refused.text
    reason = refused.json()["error"]["reason"]
    assert reason.startswith(f"vrp: '{policy}' contains '/'") and "Graph" in reason and "segment" not in reason, reason
    got = (await client.get(f"{path}/msteams/user/{user['id']}", headers=headers)).json()
    assert got["msTeams"]["vrp"] != policy


def test_every_entry_point_names_its_field() -> None:
    cases = [
        (lambda: per_user_policy("A/B", "voiceRoutingPolicy"), "voiceRoutingPolicy: 'A/B' contains '/'"),  # ConnecttoTeams
        (lambda: service.parse_changes({"vrp": "A/B"}), "vrp: 'A/B' contains '/'"),  # Fusion and the console
        (lambda: parse_document({"version": 1, "users": [{"userPrincipalName": "a@x.example", "voiceRoutingPolicy": "A/B",
                                                          "callingEnabled": True}]}),
         "users[0].voiceRoutingPolicy: 'A/B' contains '/'"),  # a restored voice state
    ]
    for call, message in cases:
        with pytest.raises(ValidationFailed) as refused:
            call()
        assert refused.value.message.startswith(message), refused.value.message
    assert per_user_policy("Tag:Intl-Out", "voiceRoutingPolicy") == "Tag:Intl-Out"
    assert service.parse_changes({"vrp": "Intl\\Out"}).vrp == "Intl\\Out"  # the emulator grants it (Graph as well)
