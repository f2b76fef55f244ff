"""Queries behind a Fusion group (a node of the organisation tree, `fusion/groups.py`): the subscriptions of the
tenants owned by the nodes of its subtree, each with its licences and the users taking one (the condition of
`repository_licences.takes_a_licence`, the one rule of what is in use)."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant
from teamsvoice.domain.fusion.repository_licences import takes_a_licence
from teamsvoice.domain.provisioning.models import TeamsVoiceUser


@dataclass(frozen=True)
class SubscriptionLicenceRow:
    tenant_uuid: str
    tenant_name: str
    subscription_id: int
    subscription_name: str
    users_assigned: int
    users_in_use: int
    channels_assigned: int


async def subscription_licences(session: AsyncSession, node_ids: frozenset[int]) -> Sequence[SubscriptionLicenceRow]:
    """Every subscription of the tenants owned by one of `node_ids`, by tenant name then ids, with its licence
    counts and its users taking an MS Teams users licence (one statement: the count is a correlated subquery)."""
    in_use = (select(func.count(TeamsVoiceUser.id))
              .where(TeamsVoiceUser.enterprise_id == FusionSubscription.enterprise_id, *takes_a_licence())
              .correlate(FusionSubscription).scalar_subquery())
    rows = await session.execute(
        select(FusionTenant.uuid, FusionTenant.name, FusionSubscription.id, FusionSubscription.name,
               FusionSubscription.ms_teams_users, in_use, FusionSubscription.sip_trunk_channels)
        .join(FusionTenant, FusionTenant.id == FusionSubscription.fusion_tenant_id)
        .where(FusionTenant.owner_reseller_id.in_(sorted(node_ids)))
        .order_by(FusionTenant.name, FusionTenant.id, FusionSubscription.id))
    return [SubscriptionLicenceRow(*row) for row in rows.all()]
