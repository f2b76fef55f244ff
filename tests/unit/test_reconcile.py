"""Bringing Teams in line with the desired voice configuration, against an in-memory Teams."""

from collections.abc import Awaitable, Callable

import pytest

from teamsvoice.core.errors import UpstreamError, ValidationFailed
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.provisioning.service import (
    Reconciled, find_msal_result, find_reseller_consent_object, normalise_phone_number, reconcile,
)
from teamsvoice.microsoft.ports import TenantConnection, VoiceState


class FakeTeams:
    def __init__(self) -> None:
        self.state = VoiceState("u1", "ada@contoso.example", enterprise_voice=False)
        self.calls: list[str] = []
        self.refuse: set[str] = set()

    async def voice_state(self, user_id: str) -> VoiceState:
        return self.state

    async def assign_number(self, upn: str, number: str, *, meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
        self.calls.append(f"assign {number}")
        if meanwhile is not None:
            await meanwhile()
        if number in self.refuse:
            raise UpstreamError(f"assignNumber failed: {number} is held by another user", retryable=False, status=400)
        self.state = VoiceState(self.state.user_id, upn, True, [number], self.state.voice_routing_policy)

    async def remove_numbers(self, upn: str) -> None:
        self.calls.append("remove")
        self.state = VoiceState(self.state.user_id, upn, False, [], self.state.voice_routing_policy)

    async def set_enterprise_voice(self, upn: str, enabled: bool) -> None:
        self.calls.append(f"ev {enabled}")
        self.state = VoiceState(self.state.user_id, upn, enabled, self.state.phone_numbers, self.state.voice_routing_policy)

    async def grant_voice_routing_policy(self, upn: str, policy: str | None) -> None:
        self.calls.append(f"vrp {policy}")
        self.state = VoiceState(self.state.user_id, upn, self.state.enterprise_voice, self.state.phone_numbers, policy)


def connection(teams: FakeTeams) -> TenantConnection:
    return TenantConnection("t", directory=None, voice=teams, graph=None, cmdlets=None)  # type: ignore[arg-type]


def record(**fields) -> TeamsVoiceUser:
    return TeamsVoiceUser(enterprise_id=1, user_principal_name="ada@contoso.example", microsoft_user_id="u1", **fields)


async def test_reconcile_applies_then_leaves_matching_users_alone() -> None:
    teams = FakeTeams()
    wanted = record(phone_number="+14139301634", voice_routing_policy="US-East", calling_enabled=True)
    first = await reconcile(connection(teams), wanted)
    assert first.status == "UPDATED" and teams.calls == ["assign +14139301634", "vrp US-East"]
    teams.calls.clear()
    second = await reconcile(connection(teams), wanted)
    assert second == Reconciled("ada@contoso.example", "UNCHANGED", [])
    assert teams.calls == []


async def test_the_policy_rides_the_number_operation_and_is_restored_when_the_number_is_refused() -> None:
    """The policy is granted while Teams completes the number (FakeTeams runs `meanwhile` between accepting and
    completing); when Teams then refuses the number, the user gets back the policy it had and the refusal is raised."""
    teams = FakeTeams()
    teams.state = VoiceState("u1", "ada@contoso.example", False, [], "Old-Policy")
    teams.refuse.add("+14139301634")
    with pytest.raises(UpstreamError, match="held by another user"):
        await reconcile(connection(teams), record(phone_number="+14139301634", voice_routing_policy="US-East",
                                                  calling_enabled=True))
    assert teams.calls == ["assign +14139301634", "vrp US-East", "vrp Old-Policy"]
    assert (teams.state.phone_numbers, teams.state.voice_routing_policy) == ([], "Old-Policy")


async def test_disabling_removes_numbers_and_enterprise_voice() -> None:
    teams = FakeTeams()
    teams.state = VoiceState("u1", "ada@contoso.example", True, ["+14139301634"], None)
    outcome = await reconcile(connection(teams), record(calling_enabled=False))
    assert outcome.status == "UPDATED" and teams.calls == ["remove"]
    assert teams.state.enterprise_voice is False and teams.state.phone_numbers == []


def test_phone_numbers_are_normalised_to_e164_or_refused() -> None:
    assert normalise_phone_number("14139301634") == "+14139301634"
    assert normalise_phone_number(" +32 2 555 12 12 ") == "+3225551212"
    for bad in ("+1555", "hello", "+999123"):
        with pytest.raises(ValidationFailed, match="phoneNumber"):
            normalise_phone_number(bad)


def test_authorisation_objects_are_found_in_every_wrapper() -> None:
    inner = {"accessToken": "t", "userInfo": {"tenantId": "x"}}
    assert find_msal_result({"authenticationResult": {"authenticationResult": inner}}) is inner
    assert find_msal_result({"msalAuthenticationResult": {"authenticationResult": inner}}) is inner
    assert find_msal_result({"authenticationResult": inner}) is inner
    assert find_msal_result({"tenantId": "x", "resellerId": 1}) is None
    assert find_reseller_consent_object({"tenantId": "x", "resellerId": 1}) == {"tenantId": "x", "resellerId": 1}
    assert find_reseller_consent_object({"authenticationResult": {"tenantId": "x", "resellerId": 1}, "x": 1}) is not None
    assert find_reseller_consent_object({"authenticationResult": {"authenticationResult": inner}}) is None


async def test_a_user_gone_from_microsoft_is_told_apart_from_a_missing_voice_configuration() -> None:
    """A sync frees the record of a user deleted in Microsoft 365 (`MicrosoftUserGone`); a user the directory still
    knows, whose Teams configuration is not found (yet), is only a NotFound: that user fails and keeps its record."""
    from teamsvoice.core.errors import NotFound
    from teamsvoice.domain.provisioning.service import MicrosoftUserGone

    class NoVoice(FakeTeams):
        async def voice_state(self, user_id: str) -> VoiceState:
            raise NotFound("no such user configuration")

    class Directory:
        def __init__(self, known: bool) -> None:
            self.known = known

        async def user(self, id_or_upn: str) -> dict:
            if not self.known:
                raise NotFound("no such user")
            return {"id": id_or_upn}

    wanted = record(phone_number="+14139301634", calling_enabled=True)
    gone = TenantConnection("t", directory=Directory(False), voice=NoVoice(), graph=None, cmdlets=None)  # type: ignore[arg-type]
    with pytest.raises(MicrosoftUserGone, match="no longer exists in Microsoft 365"):
        await reconcile(gone, wanted)
    known = TenantConnection("t", directory=Directory(True), voice=NoVoice(), graph=None, cmdlets=None)  # type: ignore[arg-type]
    with pytest.raises(NotFound) as raised:
        await reconcile(known, wanted)
    assert not isinstance(raised.value, MicrosoftUserGone)
