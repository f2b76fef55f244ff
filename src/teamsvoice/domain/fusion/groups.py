"""Fusion groups: the nodes of the organisation tree as the vendor's `groups/{uuid}` routes name them (vendor-notes
2.3: a tenant's `parent` is a "group/distributor/reseller UUID"). A group is the system root, a distributor or a
reseller (`scope.org_uuid` of a `Reseller` node); a login sees its own node and the nodes below it, anything else
is "not found", like a group that does not exist. A tenant login sees no group.

A group's licences (06_licenses, vendor-notes 2.9) are those of the subscriptions of the tenants it controls,
directly or through the nodes below it: teamsvoice assigns licences to subscriptions only (`fusion/licences.py`),
it keeps no licence pool of a group's own.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import NotFound
from teamsvoice.domain.fusion import repository_groups as repository
from teamsvoice.domain.fusion.licences import Licences
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.scope import org_in_scope
from teamsvoice.domain.orgs.models import Reseller
from teamsvoice.domain.orgs.repository import descendant_reseller_ids


async def group_in_scope(session: AsyncSession, principal: FusionPrincipal, group_uuid: str) -> Reseller:
    """The group (organisation node) if the caller controls it (its own node or one below), else NotFound."""
    node = await org_in_scope(session, principal, group_uuid)
    if node is None:
        raise NotFound(f"Group {group_uuid} not found")
    return node


@dataclass(frozen=True)
class SubscriptionLicences:
    """One subscription under a group, with its tenant, and its licences (`licences.Licences`)."""

    tenant_uuid: str
    tenant_name: str
    subscription_id: int
    subscription_name: str
    licences: Licences


@dataclass(frozen=True)
class GroupLicences:
    group: Reseller
    total: Licences
    subscriptions: Sequence[SubscriptionLicences]


def total_assigned(counts: Iterable[int]) -> int:
    """The assigned licences of several subscriptions as one count. A count of 0 means no limit (the rule of
    `licences.check_count`), so the total is 0 (no limit) as soon as one of them has none; otherwise their sum.
    No subscription at all: 0."""
    counts = list(counts)
    return 0 if not counts or 0 in counts else sum(counts)


async def group_licences(session: AsyncSession, group: Reseller) -> GroupLicences:
    """The licences of every subscription under `group` (an in-scope node: `group_in_scope`), and their total:
    MS Teams users assigned (`total_assigned`) and in use (the sum: users holding a number, resource accounts
    left out), SIP trunk channels assigned (`total_assigned`; nothing counts channels in use)."""
    rows = await repository.subscription_licences(session, await descendant_reseller_ids(session, group.id))
    subscriptions = [SubscriptionLicences(r.tenant_uuid, r.tenant_name, r.subscription_id, r.subscription_name,
                                          Licences(r.users_assigned, r.users_in_use, r.channels_assigned))
                     for r in rows]
    total = Licences(total_assigned(s.licences.users_assigned for s in subscriptions),
                     sum(s.licences.users_in_use for s in subscriptions),
                     total_assigned(s.licences.channels_assigned for s in subscriptions))
    return GroupLicences(group, total, subscriptions)
