"""Queries over Fusion's tenants and subscriptions (and what hangs off a subscription: its MS Teams
administrator and SRE group filter). Routes reach these rows only through here or the services; the
subscription a caller may act on comes from `fusion/scope.py`, so the functions below take ids already
checked against the caller's scope."""

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.fusion.models import FusionGroupFilter, FusionMsTeamsAdmin, FusionSubscription, FusionTenant
from teamsvoice.domain.orgs import repository as orgs
from teamsvoice.domain.orgs.models import Enterprise


async def update_tenant(session: AsyncSession, tenant: FusionTenant, *, name: str, billing_id: str | None,
                        markup: float | None) -> None:
    tenant.name, tenant.billing_id, tenant.markup = name, billing_id, markup
    await session.flush()


async def enterprise_of(session: AsyncSession, subscription: FusionSubscription) -> Enterprise:
    """The enterprise every subscription is recorded as (ConnecttoTeams' view of the same customer)."""
    return await orgs.enterprise_by_id(session, subscription.enterprise_id)


async def enterprise_ids_of_tenant(session: AsyncSession, fusion_tenant_id: int) -> Sequence[int]:
    """The enterprises of a Fusion tenant's subscriptions, in the order they were created."""
    return (await session.scalars(select(FusionSubscription.enterprise_id).where(
        FusionSubscription.fusion_tenant_id == fusion_tenant_id).order_by(FusionSubscription.id))).all()


async def delete_ms_teams_admin(session: AsyncSession, admin: FusionMsTeamsAdmin) -> None:
    await session.delete(admin)


async def group_filter(session: AsyncSession, subscription_id: int) -> dict[str, str]:
    """The subscription's SRE group filter: group id -> display name, in the order it was set."""
    rows = await session.scalars(select(FusionGroupFilter).where(
        FusionGroupFilter.subscription_id == subscription_id).order_by(FusionGroupFilter.id))
    return {row.group_id: row.display_name for row in rows}


async def replace_group_filter(session: AsyncSession, subscription_id: int, groups: dict[str, str]) -> None:
    """The filter as a whole (group id -> display name); an empty one clears it."""
    await session.execute(delete(FusionGroupFilter).where(FusionGroupFilter.subscription_id == subscription_id))
    session.add_all([FusionGroupFilter(subscription_id=subscription_id, group_id=group_id, display_name=name)
                     for group_id, name in groups.items()])
