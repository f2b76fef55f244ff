"""Number reconciliation across a provider's tenants: the inventory and teamsvoice's records against
what Teams holds. Pure; the caller reads each tenant.

Findings, per number:
- `free_in_inventory_assigned_in_teams`: in the inventory, held by no voice user in the records, yet
  assigned to someone in Teams;
- `assigned_to_different_users`: the records give it to one user, Teams to another;
- `assigned_in_teams_unknown_to_inventory`: assigned in Teams, in neither the inventory nor the records;
- `assigned_in_records_missing_in_teams`: the records give it to a user with calling on; Teams to nobody.
"""

from dataclasses import dataclass
from typing import Any

from teamsvoice.domain.voice_state.state import DesiredState
from teamsvoice.microsoft.ports import VoiceState

FINDINGS = ("free_in_inventory_assigned_in_teams", "assigned_to_different_users",
            "assigned_in_teams_unknown_to_inventory", "assigned_in_records_missing_in_teams")


@dataclass(frozen=True)
class NumberFinding:
    tenant_id: str
    number: str
    finding: str
    records_holder: str | None
    teams_holder: str | None
    in_inventory: bool

    def wire(self) -> dict[str, Any]:
        return {"tenantId": self.tenant_id, "number": self.number, "finding": self.finding,
                "recordsHolder": self.records_holder, "teamsHolder": self.teams_holder, "inInventory": self.in_inventory}


def reconcile_numbers(desired: DesiredState, teams_users: list[VoiceState]) -> list[NumberFinding]:
    records = {u.phone_number: u.user_principal_name for u in desired.users if u.phone_number and u.calling_enabled}
    teams = {n: u.user_principal_name.lower() for u in teams_users for n in u.phone_numbers}
    found: list[NumberFinding] = []
    for number in sorted(set(records) | set(teams) | set(desired.inventory)):
        mine, theirs, listed = records.get(number), teams.get(number), number in desired.inventory
        if theirs is not None and mine is None:
            finding = "free_in_inventory_assigned_in_teams" if listed else "assigned_in_teams_unknown_to_inventory"
        elif theirs is not None and mine is not None and theirs != mine.lower():
            finding = "assigned_to_different_users"
        elif mine is not None and theirs is None:
            finding = "assigned_in_records_missing_in_teams"
        else:
            continue
        found.append(NumberFinding(desired.tenant_id, number, finding, mine, theirs, listed))
    return found
