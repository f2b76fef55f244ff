"""The change pending on a voice record (`provisioning.service.record_wish`): a change sent again after its first
attempt died (its wish committed, Teams never answered) undoes to the settings before that attempt, setting by
setting; a setting another request changed since stays as read; the outcome clears it."""

import pytest

from teamsvoice.core.errors import UpstreamError
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.provisioning.service import record_wish, undone_on_failure, voice_settings

OWN, REFUSED = "+14139301634", "+14139301699"


def record(**fields) -> TeamsVoiceUser:  # type: ignore[no-untyped-def]
    return TeamsVoiceUser(enterprise_id=1, user_principal_name="ada@contoso.example", microsoft_user_id="u1", **fields)


class Session:
    async def commit(self) -> None:
        pass


async def test_a_change_sent_again_undoes_to_the_settings_before_its_dead_attempt() -> None:
    user = record(phone_number=OWN, voice_routing_policy="US-East", calling_enabled=True)
    assert record_wish(user, (REFUSED, "US-East", True)) == (OWN, "US-East", True)  # the attempt that dies
    assert user.pending_change == {"before": [OWN, "US-East", True], "wish": [REFUSED, "US-East", True]}
    user.voice_routing_policy = "Theirs"  # another request's change of the policy, committed meanwhile
    before = record_wish(user, (REFUSED, "Theirs", True))  # sent again: the number goes back to the user's own
    assert before == (OWN, "Theirs", True)
    with pytest.raises(UpstreamError):
        async with undone_on_failure(Session(), user, before):  # type: ignore[arg-type]
            raise UpstreamError("assignNumber failed: held", retryable=False, status=400)
    assert voice_settings(user) == (OWN, "Theirs", True) and user.pending_change is None


async def test_a_change_that_succeeds_is_no_longer_pending() -> None:
    user = record(phone_number=None, voice_routing_policy=None, calling_enabled=False)
    before = record_wish(user, (OWN, None, True))
    async with undone_on_failure(Session(), user, before):  # type: ignore[arg-type]
        pass
    assert user.pending_change is None
    assert record_wish(user, (REFUSED, None, True)) == (OWN, None, True)  # the record as read, not None
    assert record_wish(user, (REFUSED, None, True)) == (OWN, None, True)  # (sent again: the same)


def test_a_change_of_nothing_or_an_unreadable_pending_change_is_the_record_as_read() -> None:
    user = record(phone_number=OWN, voice_routing_policy=None, calling_enabled=True, pending_change={"before": "x"})
    assert record_wish(user, (OWN, None, True)) == (OWN, None, True) and user.pending_change is None
