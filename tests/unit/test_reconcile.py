"""Bringing Teams in line with the desired voice configuration, against an in-memory Teams."""

import logging
import re
from collections.abc import Awaitable, Callable

import pytest

from teamsvoice.core.errors import UpstreamError, ValidationFailed
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.provisioning.service import (
    Reconciled, find_msal_result, find_reseller_consent_object, normalise_phone_number, reconcile, undone_on_failure,
    voice_settings,
)
from teamsvoice.microsoft.ports import TenantConnection, VoiceState


class FakeTeams:
    def __init__(self) -> None:
        self.state = VoiceState("u1", "ada@contoso.example", enterprise_voice=False)
        self.calls: list[str] = []
        self.refuse: set[str] = set()
        self.failing: dict[str, UpstreamError] = {}  # a call's failure, by its entry in `calls`
        self.lands_anyway = False  # a failing assignment assigns its number first (it failed while Teams completed)

    def _fail(self, call: str) -> None:
        if call in self.failing:
            raise self.failing[call]

    async def voice_state(self, user_id: str) -> VoiceState:
        return self.state

    async def assign_number(self, upn: str, number: str, *, meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
        self.calls.append(f"assign {number}")
        if meanwhile is not None:
            await meanwhile()
        if number in self.refuse:
            raise UpstreamError(f"assignNumber failed: {number} is held by another user", retryable=False, status=400)
        if not self.lands_anyway:
            self._fail(f"assign {number}")
        self.state = VoiceState(self.state.user_id, upn, True, [number], self.state.voice_routing_policy)
        self._fail(f"assign {number}")

    async def remove_numbers(self, upn: str) -> None:
        self.calls.append("remove")
        self._fail("remove")
        self.state = VoiceState(self.state.user_id, upn, False, [], self.state.voice_routing_policy)

    async def set_enterprise_voice(self, upn: str, enabled: bool) -> None:
        self.calls.append(f"ev {enabled}")
        self._fail(f"ev {enabled}")
        self.state = VoiceState(self.state.user_id, upn, enabled, self.state.phone_numbers, self.state.voice_routing_policy)

    async def grant_voice_routing_policy(self, upn: str, policy: str | None) -> None:
        self.calls.append(f"vrp {policy}")
        self._fail(f"vrp {policy}")
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
    # (the user had no number: whatever Teams may have kept of the new one goes, `_take_back_number`)
    assert teams.calls == ["assign +14139301634", "vrp US-East", "remove", "vrp Old-Policy"]
    assert (teams.state.phone_numbers, teams.state.voice_routing_policy) == ([], "Old-Policy")


async def test_disabling_removes_numbers_and_enterprise_voice() -> None:
    teams = FakeTeams()
    teams.state = VoiceState("u1", "ada@contoso.example", True, ["+14139301634"], None)
    outcome = await reconcile(connection(teams), record(calling_enabled=False))
    assert outcome.status == "UPDATED" and teams.calls == ["remove"]
    assert teams.state.enterprise_voice is False and teams.state.phone_numbers == []


OLD, NEW = "+14139300001", "+14139301634"


def holding_old_number() -> FakeTeams:
    teams = FakeTeams()
    teams.state = VoiceState("u1", "ada@contoso.example", True, [OLD], "Old-Policy")
    return teams


async def test_a_refused_new_number_gives_the_user_back_the_number_removed_before_it() -> None:
    """reconcile removes the user's numbers, then assigns the new one. Teams refusing it (held by another user) left
    the user with no number at all in Teams, its own free there, while the record (undone_on_failure) said it held
    it. Now the removed number is given back, and the policy, and the refusal is what the caller gets."""
    teams = holding_old_number()
    teams.refuse.add(NEW)
    with pytest.raises(UpstreamError, match="held by another user"):
        await reconcile(connection(teams), record(phone_number=NEW, voice_routing_policy="US-East",
                                                  calling_enabled=True))
    assert teams.calls == ["remove", f"assign {NEW}", "vrp US-East", f"assign {OLD}", "vrp Old-Policy"]
    assert teams.state == holding_old_number().state


@pytest.mark.parametrize("landed", [False, True], ids=["not-assigned", "assigned-after-all"])
async def test_a_transient_failure_of_the_new_number_gives_the_old_one_back_too(landed: bool) -> None:
    """A transient failure (here a 503) does not say whether Teams assigned the new number: given back as the user's
    primary number, the old one replaces it should it have been, so Teams holds the old one either way (as the
    record undone_on_failure restores does). The new number is not tried again: the caller is told to retry."""
    teams = holding_old_number()
    teams.failing[f"assign {NEW}"] = UpstreamError("assignNumber: 503", retryable=True, status=503)
    teams.lands_anyway = landed
    with pytest.raises(UpstreamError, match="503"):
        await reconcile(connection(teams), record(phone_number=NEW, voice_routing_policy="Old-Policy",
                                                  calling_enabled=True))
    assert teams.calls == ["remove", f"assign {NEW}", f"assign {OLD}"]
    assert teams.state == holding_old_number().state


async def test_a_policy_refused_while_the_new_number_landed_gives_the_old_number_back() -> None:
    """The adapter completes the number's operation before raising the failure of what rode it (the policy's grant):
    the new number landed. The old one given back replaces it, as the record (undone_on_failure) says again."""
    teams = holding_old_number()
    teams.failing["vrp No-Such-Policy"] = UpstreamError("not a user policy", retryable=False, status=400)

    async def assign_number(upn: str, number: str, *, meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
        await FakeTeams.assign_number(teams, upn, number)
        if meanwhile is not None:
            await meanwhile()

    teams.assign_number = assign_number  # type: ignore[method-assign]
    with pytest.raises(UpstreamError, match="not a user policy"):
        await reconcile(connection(teams), record(phone_number=NEW, voice_routing_policy="No-Such-Policy",
                                                  calling_enabled=True))
    assert teams.calls == ["remove", f"assign {NEW}", "vrp No-Such-Policy", f"assign {OLD}"]
    assert teams.state == holding_old_number().state


async def test_a_disabling_that_fails_after_the_numbers_were_removed_gives_them_back() -> None:
    """Disabling calling removes the numbers, then turns Enterprise Voice off (here Teams left it on). That failing
    left the user with no number and calling on; now the number is given back (Enterprise Voice on with it)."""

    class KeepsVoice(FakeTeams):
        async def remove_numbers(self, upn: str) -> None:
            await super().remove_numbers(upn)
            self.state = VoiceState(self.state.user_id, upn, True, [], self.state.voice_routing_policy)

    teams = KeepsVoice()
    teams.state = holding_old_number().state
    teams.failing["ev False"] = UpstreamError("Set-CsPhoneNumberAssignment failed: try later", retryable=False,
                                              status=400)
    with pytest.raises(UpstreamError, match="try later"):
        await reconcile(connection(teams), record(phone_number=OLD, calling_enabled=False))
    assert teams.calls == ["remove", "ev False", f"assign {OLD}"]
    assert teams.state == holding_old_number().state


async def test_a_failed_give_back_is_logged_and_the_change_failure_is_raised(caplog: pytest.LogCaptureFixture) -> None:
    teams = holding_old_number()
    teams.refuse |= {NEW, OLD}  # the old number taken in Teams by someone else meanwhile
    with caplog.at_level(logging.WARNING, logger="teamsvoice.domain.provisioning.service"):
        with pytest.raises(UpstreamError, match=re.escape(NEW)):
            await reconcile(connection(teams), record(phone_number=NEW, voice_routing_policy="Old-Policy",
                                                      calling_enabled=True))
    assert teams.calls == ["remove", f"assign {NEW}", f"assign {OLD}"]
    assert f"could not give ada@contoso.example back its number {OLD}" in caplog.text


class Session:
    """What undone_on_failure asks of a session: ending the transaction (committing what it set)."""

    def __init__(self) -> None:
        self.commits = 0

    async def commit(self) -> None:
        self.commits += 1


async def test_a_failed_push_restores_only_the_settings_its_change_wrote() -> None:
    """undone_on_failure set all three voice settings back to `before`, the ones the change did not write too: one
    another request changed meanwhile (here: as the record reads once reloaded) was overwritten with the old value."""
    user = record(phone_number=NEW, voice_routing_policy="Old-Policy", calling_enabled=True)  # as the change wrote it
    session = Session()
    with pytest.raises(UpstreamError):
        async with undone_on_failure(session, user, (OLD, "Old-Policy", True)):  # type: ignore[arg-type]
            user.voice_routing_policy = "Theirs"  # another request's change of the policy, committed meanwhile
            raise UpstreamError("assignNumber failed: held", retryable=False, status=400)
    assert voice_settings(user) == (OLD, "Theirs", True) and session.commits == 1
    assert (user.last_sync_status, user.last_sync_detail) == ("FAILED", {"error": "assignNumber failed: held"})
    both = record(phone_number=NEW, voice_routing_policy="US-East", calling_enabled=True)
    with pytest.raises(UpstreamError):
        async with undone_on_failure(session, both, (None, None, False)):  # type: ignore[arg-type]
            raise UpstreamError("assignNumber: 503", retryable=True, status=503)
    assert voice_settings(both) == (None, None, False)


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
