"""Number reconciliation: the inventory and records against what Teams holds."""

from teamsvoice.domain.voice_state.numbers import reconcile_numbers
from teamsvoice.domain.voice_state.state import Assignment, DesiredState
from teamsvoice.microsoft.ports import VoiceState


def teams(upn: str, *numbers: str) -> VoiceState:
    return VoiceState(f"id-{upn}", upn, bool(numbers), list(numbers))


def state(*users: Assignment, inventory: tuple[str, ...] = ()) -> DesiredState:
    return DesiredState("tid", users=list(users), inventory=frozenset(inventory))


def record(upn: str, number: str | None, enabled: bool = True) -> Assignment:
    return Assignment(upn, None, number, None, enabled)


def findings(desired: DesiredState, held: list[VoiceState]) -> dict[str, str]:
    return {f.number: f.finding for f in reconcile_numbers(desired, held)}


def test_matching_numbers_are_no_finding() -> None:
    assert findings(state(record("a@c", "+1"), inventory=("+1", "+2")), [teams("a@c", "+1")]) == {}


def test_a_free_inventory_number_assigned_in_teams() -> None:
    assert findings(state(inventory=("+1",)), [teams("b@c", "+1")]) == {"+1": "free_in_inventory_assigned_in_teams"}


def test_a_number_held_by_different_users() -> None:
    (f,) = reconcile_numbers(state(record("a@c", "+1"), inventory=("+1",)), [teams("b@c", "+1")])
    assert (f.finding, f.records_holder, f.teams_holder, f.in_inventory) == ("assigned_to_different_users", "a@c", "b@c", True)


def test_a_number_unknown_to_the_inventory() -> None:
    assert findings(state(), [teams("b@c", "+9")]) == {"+9": "assigned_in_teams_unknown_to_inventory"}


def test_a_recorded_number_missing_in_teams() -> None:
    assert findings(state(record("a@c", "+1")), [teams("a@c")]) == {"+1": "assigned_in_records_missing_in_teams"}


def test_a_disabled_record_does_not_hold_its_number() -> None:
    assert findings(state(record("a@c", "+1", enabled=False), inventory=("+1",)), [teams("a@c", "+1")]) == {
        "+1": "free_in_inventory_assigned_in_teams"}


def test_upn_case_does_not_matter() -> None:
    assert findings(state(record("Ada@C", "+1")), [teams("ada@c", "+1")]) == {}
