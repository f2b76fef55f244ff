"""Number reconciliation across a provider's tenants: the inventory and teamsvoice's records against
what Teams holds. `reconcile_numbers` is the rule (pure: one tenant's records and what Teams holds); `findings_page`
reads the tenants of one page of findings (in tenant, then number order; a page reads Microsoft only for its own
tenants, at most TENANTS_PER_PAGE of them, each read at once within a round of READ_AT_ONCE).

Findings, per number:
- `free_in_inventory_assigned_in_teams`: in the inventory, held by no voice user in the records, yet
  assigned to someone in Teams;
- `assigned_to_different_users`: the records give it to one user, Teams to another;
- `assigned_in_teams_unknown_to_inventory`: assigned in Teams, in neither the inventory nor the records;
- `assigned_in_records_missing_in_teams`: the records give it to a user with calling on; Teams to nobody.
"""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.db import end_transaction
from teamsvoice.core.errors import UpstreamError
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal
from teamsvoice.domain.voice_state import repository, repository_drift
from teamsvoice.domain.voice_state.state import DesiredState
from teamsvoice.microsoft.ports import TenantVoiceAdmin, VoiceState

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


TENANTS_PER_PAGE = 50  # most tenants one page of findings reads from Microsoft (a page may end before its `limit`)
READ_AT_ONCE = 10  # tenants read from Microsoft side by side (each on its own budget), a round at a time


@dataclass(frozen=True)
class NumbersPosition:
    """Where a page of findings starts: at the tenant of the enterprise `enterprise_id` (or the next linked one the
    caller sees), after its finding for `after_number` (None: from its first)."""
    enterprise_id: int
    after_number: str | None = None


@dataclass(frozen=True)
class FindingsPage:
    findings: list[NumberFinding]
    unreachable: list[tuple[str, str]]  # (tenant id, Microsoft's message): tenants of this page not read
    following: NumbersPosition | None  # where the next page starts; None: this is the last


async def findings_page(session: AsyncSession, principals: Sequence[Principal],
                        voice_for: Callable[[str], TenantVoiceAdmin], start: NumbersPosition | None,
                        limit: int) -> FindingsPage:
    """At most `limit` findings over the linked tenants the callers `principals` see, from `start`, in enterprise
    then number order, and the tenants Microsoft did not answer for. Each round reads its tenants' records, ends the
    transaction (none is held while Microsoft answers), then reads them from Microsoft at once; the page ends once it
    holds `limit` findings or has read TENANTS_PER_PAGE tenants. A tenant a page ends inside is read again by the
    next page, which takes its findings after the last one shown."""
    from_id = start.enterprise_id if start is not None else None
    ids = sorted({i for principal in principals for i in await repository_drift.linked_enterprise_ids(
        session, principal, from_id=from_id, limit=TENANTS_PER_PAGE + 1)})[:TENANTS_PER_PAGE + 1]
    tenants, beyond = ids[:TENANTS_PER_PAGE], ids[TENANTS_PER_PAGE:]
    findings: list[NumberFinding] = []
    unreachable: list[tuple[str, str]] = []

    async def held(tenant_id: str) -> list[VoiceState] | UpstreamError:
        try:
            return await voice_for(tenant_id).voice_users()
        except UpstreamError as exc:
            return exc

    for first in range(0, len(tenants), READ_AT_ONCE):
        desired_states: list[tuple[int, DesiredState]] = []
        for enterprise_id in tenants[first:first + READ_AT_ONCE]:
            enterprise = await session.get(Enterprise, enterprise_id)
            if enterprise is not None and enterprise.tenant_id is not None:  # (unlinked since: nothing to read)
                desired_states.append((enterprise_id, await repository.desired_state(session, enterprise)))
        await end_transaction(session)
        answers = await asyncio.gather(*(held(desired.tenant_id) for _, desired in desired_states))
        for (enterprise_id, desired), answer in zip(desired_states, answers):
            if isinstance(answer, UpstreamError):
                unreachable.append((desired.tenant_id, answer.message))
                continue
            found = reconcile_numbers(desired, answer)
            if start is not None and enterprise_id == start.enterprise_id and start.after_number is not None:
                found = [f for f in found if f.number > start.after_number]
            room = limit - len(findings)
            findings += found[:room]
            if len(found) > room:  # the page ends inside this tenant: the next one takes it up after its last finding
                return FindingsPage(findings, unreachable, NumbersPosition(enterprise_id, findings[-1].number))
            if len(findings) == limit:  # the page ends with this tenant: the next one starts after it
                rest = [i for i in ids if i > enterprise_id]
                return FindingsPage(findings, unreachable, NumbersPosition(rest[0]) if rest else None)
    return FindingsPage(findings, unreachable, NumbersPosition(beyond[0]) if beyond else None)
