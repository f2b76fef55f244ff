"""Sync Teams Users compares each record with the user's state in the tenant's read (`calling/workflows._unchanged`):
a user that matches is UNCHANGED without a request; for any other, whatever reconcile would ask of Microsoft (a
change, a read) is refused before it is sent, and the user is synced as before, its state read again."""

from teamsvoice.domain.calling import workflows
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.microsoft.ports import VoiceState


def _record(**values: object) -> TeamsVoiceUser:
    wanted = {"microsoft_user_id": "u1", "phone_number": None, "voice_routing_policy": None, "calling_enabled": True}
    return TeamsVoiceUser(enterprise_id=1, user_principal_name="ada@contoso.example", **(wanted | values))


async def test_a_user_that_matches_the_tenants_read_is_unchanged_and_recorded_so() -> None:
    record = _record(phone_number="+3222000001", voice_routing_policy="Tag:Brussels")
    state = VoiceState("u1", "ada@contoso.example", enterprise_voice=True, phone_numbers=["+3222000001"],
                       voice_routing_policy="Tag:Brussels")
    outcome = await workflows._unchanged(record, state)
    assert outcome is not None and (outcome.status, outcome.changes) == ("UNCHANGED", [])
    assert (record.last_sync_status, record.last_sync_detail) == ("UNCHANGED", {"changes": []})
    off = _record(calling_enabled=False)
    assert (await workflows._unchanged(off, VoiceState("u1", "ada@contoso.example", enterprise_voice=False))) is not None


async def test_a_user_that_differs_is_left_to_the_sync_as_before_with_nothing_recorded() -> None:
    matching = VoiceState("u1", "ada@contoso.example", enterprise_voice=True, phone_numbers=["+3222000001"])
    for record, state in (
        (_record(phone_number="+3222000002"), matching),  # another number
        (_record(phone_number="+3222000001", voice_routing_policy="Tag:Brussels"), matching),  # a policy to grant
        (_record(calling_enabled=False), matching),  # calling off: numbers removed, read back
        (_record(), VoiceState("u1", "ada@contoso.example", enterprise_voice=False)),  # Enterprise Voice to turn on
        (_record(microsoft_user_id=None), matching),  # deleted at offboarding: the sync says so
    ):
        assert await workflows._unchanged(record, state) is None, (record.phone_number, record.calling_enabled)
        assert record.last_sync_status is None and record.last_synced_at is None
