"""A Teams user's voice assignment converged by `provisioning.reconcile` (both families use it), against an
in-memory tenant behind the TeamsVoice port (tests/unit/voice_fakes.py): only what differs is changed."""

from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.provisioning.service import Reconciled, per_user_policy, reconcile
from teamsvoice.microsoft.calling_ports import VoiceRoutingPolicy
from teamsvoice.microsoft.ports import TenantConnection, VoiceState
from tests.unit.voice_fakes import FakeTenantVoice

UPN = "ada@contoso.com"


class FakeTeamsVoice(FakeTenantVoice):
    """The same in-memory tenant behind the per-user TeamsVoice port."""

    async def voice_state(self, user_id: str) -> VoiceState:
        self._call("voice_state")
        return next(u for u in self.users.values() if u.user_id == user_id)

    async def remove_numbers(self, user_principal_name: str) -> None:
        for number in list(self._user(user_principal_name).phone_numbers):
            await self.remove_number(user_principal_name, number)


def tenant(number: str | None = None, policy: str | None = None) -> FakeTeamsVoice:
    fake = FakeTeamsVoice()
    fake.policies["eu"] = VoiceRoutingPolicy("eu", ["eu"])
    fake.add_user(UPN, number, policy)
    return fake


def record(number: str | None, policy: str | None = "eu", calling: bool = True) -> TeamsVoiceUser:
    return TeamsVoiceUser(enterprise_id=1, user_principal_name=UPN, microsoft_user_id=f"id-{UPN}", phone_number=number,
                          voice_routing_policy=policy, calling_enabled=calling)


def connect(fake: FakeTeamsVoice) -> TenantConnection:
    return TenantConnection("tid", directory=None, voice=fake, graph=None, cmdlets=None)  # type: ignore[arg-type]


def writes(fake: FakeTeamsVoice) -> list[str]:
    return [c for c in fake.calls if c != "voice_state"]


async def test_a_user_that_matches_is_only_read() -> None:
    fake = tenant("+3222100001", "eu")
    result = await reconcile(connect(fake), wanted := record("+3222100001"))
    assert result == Reconciled(UPN, "UNCHANGED", [])
    assert writes(fake) == [] and wanted.last_sync_status == "UNCHANGED"


async def test_a_new_number_replaces_the_old_and_the_policy_is_granted() -> None:
    fake = tenant("+3222100001")
    result = await reconcile(connect(fake), record("+3222100002"))
    assert result.changes == ["number set to +3222100002", "voice routing policy set to eu"]
    assert writes(fake) == [f"remove_number {UPN} +3222100001", f"assign_number {UPN} +3222100002", f"grant {UPN} eu"]
    assert fake.users[UPN].phone_numbers == ["+3222100002"] and fake.users[UPN].enterprise_voice


async def test_calling_disabled_removes_numbers_and_enterprise_voice_but_leaves_the_policy() -> None:
    fake = tenant("+3222100001", "eu")
    result = await reconcile(connect(fake), record("+3222100001", calling=False))
    assert result.status == "UPDATED" and result.changes == ["numbers removed"]
    assert fake.users[UPN].phone_numbers == [] and not fake.users[UPN].enterprise_voice
    assert fake.users[UPN].voice_routing_policy == "eu"


async def test_enterprise_voice_without_a_number() -> None:
    fake = tenant()
    result = await reconcile(connect(fake), record(None, None))
    assert result.changes == ["enterprise voice enabled"] and fake.users[UPN].enterprise_voice


async def test_global_means_no_per_user_grant() -> None:
    assert [per_user_policy(p) for p in ("Global", "tag:global", " ", None, "eu")] == [None, None, None, None, "eu"]
    fake = tenant("+3222100001", "eu")
    result = await reconcile(connect(fake), record("+3222100001", "Global"))
    assert result.changes == ["voice routing policy set to Global"]
    assert writes(fake) == [f"grant {UPN} None"] and fake.users[UPN].voice_routing_policy is None


async def test_a_refusal_from_teams_surfaces_and_nothing_else_is_changed() -> None:
    fake = tenant()
    fake.add_user("bob@contoso.com", "+3222100009")
    try:
        await reconcile(connect(fake), record("+3222100009"))
    except Exception as exc:  # noqa: BLE001 - the fake's UpstreamError refusal
        assert "already been assigned" in str(exc)
    else:
        raise AssertionError("a number held by another user must be refused")
    assert fake.users[UPN].phone_numbers == [] and fake.users["bob@contoso.com"].phone_numbers == ["+3222100009"]
    assert fake.users[UPN].voice_routing_policy is None
