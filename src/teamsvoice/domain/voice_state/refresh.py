"""Refresh from Teams (Fusion's `refresh` on the users and resource accounts lists, spec 004: "Used to refresh
users' phone numbers from MS Teams"): teamsvoice's records take what Teams holds, never the other way round.

The tenant's plan (`service.plan_tenant`: Microsoft read, nothing written) lists where the records and Teams
differ; each user's differences are adopted together (`apply.adopt`: its number ownership, quarantine and licence
rules), one user per transaction, so that one refusal (a number of another customer) leaves the others' adopted.
Not adopted: the Direct Routing configuration (the provider's SBC settings, adopt refuses it), a difference apply
leaves alone, and the offboarding of a user disabled in Entra ID (`user_disabled`: records and Teams agree on its
number; apply finishes it). A user whose records changed after they were read (an update sent meanwhile) is left
as recorded: the change sent stands, and the next refresh reads Teams again."""

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.voice_state import apply as applying, repository_apply
from teamsvoice.domain.voice_state.planner import Difference, Plan
from teamsvoice.domain.voice_state.state import DesiredState

CHANGED_MEANWHILE = ("left as recorded: teamsvoice's records of the user changed after they were read (an update sent "
                     "meanwhile); the next refresh reads Teams again")
Recorded = tuple[str | None, str | None, bool]  # a record's (number, voice routing policy, calling) as it was read


@dataclass(frozen=True)
class UserRefresh:
    """One user's differences to adopt, and what the records said when the plan was taken (checked again before the
    adoption): the user's record (None: none) and, for each number Teams gives the user, its other holder then."""

    user_principal_name: str
    differences: tuple[Difference, ...]
    recorded: Recorded | None
    holders: tuple[tuple[str, str | None], ...]


def _refreshable(d: Difference, only: Collection[str] | None) -> bool:
    if d.kind not in ("user", "number") or d.action == "leave" or d.drift == "user_disabled":
        return False
    return only is None or (d.kind == "user" and d.object in only)  # (a number's holder has no record: not in `only`)


def _holder(d: Difference) -> str:
    return str(d.observed).lower() if d.kind == "number" else d.object


def _numbers(d: Difference) -> list[str]:
    """The numbers adopting `d` gives its user."""
    if d.kind == "number":
        return [d.object]
    return list(d.observed or []) if d.field == "phoneNumber" else []


def refreshable(read: DesiredState, plan: Plan, only: Collection[str] | None = None) -> list[UserRefresh]:
    """The plan's differences a refresh adopts, by user (user principal names, lower case); `only`: the users whose
    records are refreshed (None: every user). `read`: the records the plan was taken from."""
    by_user: dict[str, list[Difference]] = {}
    for d in plan.differences:
        if _refreshable(d, only):
            by_user.setdefault(_holder(d), []).append(d)
    recorded = {a.user_principal_name: (a.phone_number, a.voice_routing_policy, a.calling_enabled) for a in read.users}
    holders = {a.phone_number: a.user_principal_name for a in read.users if a.phone_number}
    users = []
    for upn, differences in sorted(by_user.items()):
        numbers = [n for d in differences for n in _numbers(d)]
        users.append(UserRefresh(upn, tuple(differences), recorded.get(upn),
                                 tuple((n, holders[n] if holders.get(n, upn) != upn else None) for n in numbers)))
    return users


async def _changed_since(session: AsyncSession, enterprise: Enterprise, user: UserRefresh) -> bool:
    record = await voice_users.find(session, enterprise.id, user.user_principal_name)
    now = None if record is None else (record.phone_number, record.voice_routing_policy, record.calling_enabled)
    if now != user.recorded:
        return True
    for number, then in user.holders:
        holder = await repository_apply.number_holder(session, number,
                                                      except_voice_user_id=record.id if record is not None else None)
        # (a holder of another customer's is none of the records read: adopt refuses the number, as it would have then)
        now = holder.user_principal_name if holder is not None and holder.enterprise_id == enterprise.id else None
        if now != then:
            return True
    return False


async def adopt_user(session: AsyncSession, enterprise: Enterprise, user: UserRefresh,
                     quarantine_seconds: float) -> list[str] | None:
    """Adopts the user's differences (all or none) and answers what changed in the records; None, changing nothing,
    when its records changed since they were read (`CHANGED_MEANWHILE`). The user's record is then in line with Teams:
    its sync status says so (`active` in Fusion's lists), unless Entra ID deleted the user (adopt freed the record)."""
    if await _changed_since(session, enterprise, user):
        return None
    ids = [d.id for d in user.differences]
    done = await applying.adopt(session, enterprise, Plan(enterprise.tenant_id or "", list(user.differences)), ids,
                                quarantine_seconds)
    changes = [entry["detail"] for entry in done]
    record = await voice_users.find(session, enterprise.id, user.user_principal_name)
    if record is not None and all(d.field != "account" for d in user.differences):
        record.last_sync_status, record.last_sync_detail = "UPDATED", {"changes": changes, "from": "Teams"}
        record.last_synced_at = utcnow()
    return changes
