"""Which differences a refresh from Teams adopts (Fusion's lists' `refresh`, domain/voice_state/refresh.py)."""

from teamsvoice.domain.voice_state.planner import plan
from teamsvoice.domain.voice_state.refresh import refreshable
from teamsvoice.domain.voice_state.state import Assignment, DesiredState, ObservedState
from teamsvoice.microsoft.calling_ports import RoutingInventory, VoiceRoutingPolicy
from teamsvoice.microsoft.ports import VoiceState

POLICY = VoiceRoutingPolicy("teamsvoice-eu", ["teamsvoice-eu"])


def _voice(upn: str, *numbers: str, policy: str | None = None) -> VoiceState:
    return VoiceState(f"id-{upn}", upn, bool(numbers), list(numbers), policy)


def test_a_refresh_adopts_what_teams_holds_user_by_user() -> None:
    read = DesiredState("tid", RoutingInventory([], [], [], [POLICY]), [
        Assignment("ada@c.com", "id-ada@c.com", "+3221000001", None, True),  # Teams: another number
        Assignment("bob@c.com", "id-bob@c.com", "+3221000002", None, True),  # Teams: a policy by hand
        Assignment("cy@c.com", "id-cy@c.com", "+3221000003", "gone-policy", True),  # a policy Teams lacks: left
        Assignment("dee@c.com", "id-dee@c.com", "+3221000004", None, True),  # disabled in Entra ID: apply's
        Assignment("queue@c.com", "id-queue@c.com", "+3221000005", None, True, resource_account=True),
    ], frozenset({"+3221000001", "+3221000006", "+3221000007"}))
    observed = ObservedState(RoutingInventory([], [], [], [POLICY]), [
        _voice("ada@c.com", "+3221000006"), _voice("bob@c.com", "+3221000002", policy="teamsvoice-eu"),
        _voice("cy@c.com", "+3221000003"), _voice("dee@c.com", "+3221000004"), _voice("queue@c.com"),
        _voice("Eve@c.com", "+3221000007"),  # no record: a number of the inventory given in Teams
        _voice("fay@c.com", "+3229999999"),  # no record, a number of no inventory: none of teamsvoice's
    ], frozenset({"id-dee@c.com", "id-queue@c.com"}))
    current = plan(read, observed)

    users = {u.user_principal_name: u for u in refreshable(read, current)}
    assert {upn: [d.id for d in u.differences] for upn, u in users.items()} == {
        "ada@c.com": ["user:ada@c.com:phoneNumber"], "bob@c.com": ["user:bob@c.com:voiceRoutingPolicy"],
        "eve@c.com": ["number:+3221000007"], "queue@c.com": ["user:queue@c.com:phoneNumber"]}
    assert users["ada@c.com"].recorded == ("+3221000001", None, True) and users["eve@c.com"].recorded is None
    assert users["ada@c.com"].holders == (("+3221000006", None),)
    assert users["eve@c.com"].holders == (("+3221000007", None),)

    only = {u.user_principal_name: u for u in refreshable(read, current, {"queue@c.com"})}  # a resource accounts list's
    assert list(only) == ["queue@c.com"]
