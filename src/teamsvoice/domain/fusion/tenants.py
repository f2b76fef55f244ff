"""Fusion tenants and subscriptions (each subscription backed by a ConnecttoTeams enterprise), and logins."""

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from teamsvoice.core.security import hash_secret
from teamsvoice.domain.consent.models import ActionRequest, EnterpriseConsent, WebhookDelivery
from teamsvoice.domain.fusion.models import (
    FusionGroupFilter,
    FusionLocation,
    FusionMsTeamsAdmin,
    FusionNumber,
    FusionNumberLocation,
    FusionSession,
    FusionSubscription,
    FusionTenant,
    FusionUser,
    FusionUserProfile,
    FusionWizardRun,
)
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.roles import FUSION_LEVEL_OF, LEVELS, RESELLER_LEVEL_OF, default_permissions
from teamsvoice.domain.fusion.scope import SubscriptionAccess, org_in_scope, tenant_filter
from teamsvoice.domain.orgs.models import Enterprise, Reseller
from teamsvoice.domain.orgs.repository import descendant_reseller_ids
from teamsvoice.domain.provisioning.models import TeamsVoiceUser

TENANT_HAS_SUBSCRIPTIONS = "tenant_has_subscriptions"
SUBSCRIPTION_NOT_DELETABLE = "subscription_not_deletable"
SORTABLE = {"name": FusionTenant.name, "billingId": FusionTenant.billing_id, "uuid": FusionTenant.uuid,
            "markup": FusionTenant.markup, "createdOn": FusionTenant.created_at}


# --- tenants --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantQuery:
    search: str | None
    sort: str
    direction: str
    parent: str | None


async def list_tenants(
    session: AsyncSession, principal: FusionPrincipal, query: TenantQuery, offset: int, limit: int
) -> tuple[list[FusionTenant], int]:
    if query.sort not in SORTABLE:
        raise ValidationFailed(f"sort: must be one of {sorted(SORTABLE)}")
    if query.direction not in ("asc", "desc"):
        raise ValidationFailed("dir: must be asc or desc")
    statement = select(FusionTenant).where(tenant_filter(principal))
    if query.parent:
        node = await org_in_scope(session, principal, query.parent)
        if node is None:
            raise NotFound(f"parent: {query.parent} is not a distributor or reseller under your control")
        statement = statement.where(FusionTenant.owner_reseller_id.in_(await descendant_reseller_ids(session, node.id)))
    if query.search:
        statement = statement.where(func.lower(FusionTenant.name).contains(query.search.lower()))
    total = await session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    column = SORTABLE[query.sort]
    order = column.desc() if query.direction == "desc" else column.asc()
    rows = list(await session.scalars(statement.order_by(order, FusionTenant.id).offset(offset).limit(limit)))
    return rows, total


async def _owner_for(session: AsyncSession, principal: FusionPrincipal, owner: dict | None) -> Reseller:
    if owner is None:
        if principal.reseller_id is None or principal.level == "system":
            raise ValidationFailed("owner: is required (a distributor or reseller {type, uuid})")
        node = await session.get(Reseller, principal.reseller_id)
        assert node is not None
        return node
    node = await org_in_scope(session, principal, owner["uuid"])
    if node is None:
        raise NotFound(f"owner: {owner['uuid']} is not a distributor or reseller under your control")
    if FUSION_LEVEL_OF.get(node.level) != owner["type"] or owner["type"] not in ("distributor", "reseller"):
        raise ValidationFailed(f"owner: {owner['uuid']} is a {FUSION_LEVEL_OF.get(node.level)}, not a {owner['type']}")
    return node


async def create_tenant(
    session: AsyncSession, principal: FusionPrincipal, *, name: str, billing_id: str | None, markup: float | None,
    owner: dict | None,
) -> FusionTenant:
    node = await _owner_for(session, principal, owner)
    tenant = FusionTenant(name=name, billing_id=billing_id, markup=markup, owner_reseller_id=node.id)
    session.add(tenant)
    await session.flush()
    return tenant


async def delete_tenant(session: AsyncSession, tenant: FusionTenant) -> None:
    if await session.scalar(select(func.count(FusionSubscription.id)).where(FusionSubscription.fusion_tenant_id == tenant.id)):
        raise PreconditionFailed("The tenant still has subscriptions; delete them first", code=TENANT_HAS_SUBSCRIPTIONS)
    logins = select(FusionUser.id).where(FusionUser.fusion_tenant_id == tenant.id)
    await session.execute(delete(FusionSession).where(FusionSession.user_id.in_(logins)))
    await session.execute(delete(FusionUserProfile).where(FusionUserProfile.user_id.in_(logins)))
    await session.execute(delete(FusionUser).where(FusionUser.fusion_tenant_id == tenant.id))
    await session.delete(tenant)


# --- subscriptions --------------------------------------------------------------------------------


async def _enterprise_name(session: AsyncSession, reseller_id: int, wanted: str) -> str:
    """ConnecttoTeams names enterprises uniquely per reseller: suffix a counter when taken."""
    name, counter = wanted[:190], 1
    while await session.scalar(select(Enterprise.id).where(Enterprise.reseller_id == reseller_id,
                                                             Enterprise.enterprise_name == name)):
        counter += 1
        name = f"{wanted[:180]} ({counter})"
    return name


async def create_subscription(
    session: AsyncSession, tenant: FusionTenant, *, name: str, billing_id: str | None, ms_teams_users: int,
    sip_trunk_channels: int,
) -> FusionSubscription:
    enterprise = Enterprise(
        reseller_id=tenant.owner_reseller_id,
        enterprise_name=await _enterprise_name(session, tenant.owner_reseller_id, f"{tenant.name} - {name}"),
        services=["DIRECT_ROUTING"], billing_references=[billing_id] if billing_id else [],
        user_limit=ms_teams_users, can_reseller_manage_enterprise_provisioning=True, registered_by=None,
    )
    session.add(enterprise)
    await session.flush()
    subscription = FusionSubscription(fusion_tenant_id=tenant.id, name=name, billing_id=billing_id,
                                      ms_teams_users=ms_teams_users, sip_trunk_channels=sip_trunk_channels,
                                      enterprise_id=enterprise.id)
    session.add(subscription)
    await session.flush()
    return subscription


async def list_subscriptions(
    session: AsyncSession, tenant: FusionTenant, search: str | None, offset: int, limit: int
) -> tuple[list[FusionSubscription], int]:
    statement = select(FusionSubscription).where(FusionSubscription.fusion_tenant_id == tenant.id)
    if search:
        statement = statement.where(func.lower(FusionSubscription.name).contains(search.lower()))
    total = await session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = list(await session.scalars(statement.order_by(FusionSubscription.id).offset(offset).limit(limit)))
    return rows, total


async def number_of_users(session: AsyncSession, enterprise_id: int) -> int:
    return await session.scalar(select(func.count(TeamsVoiceUser.id)).where(
        TeamsVoiceUser.enterprise_id == enterprise_id, TeamsVoiceUser.phone_number.is_not(None))) or 0


async def is_deletable(session: AsyncSession, access: SubscriptionAccess) -> bool:
    """Not linked to an MS Teams tenant, and no numbers left in its inventory."""
    numbers = await session.scalar(select(func.count(FusionNumber.id)).where(
        FusionNumber.subscription_id == access.subscription.id)) or 0
    return access.ms_tenant_id is None and numbers == 0


async def delete_subscription(session: AsyncSession, access: SubscriptionAccess) -> None:
    if not await is_deletable(session, access):
        raise PreconditionFailed("The subscription is linked to an MS Teams tenant or still holds numbers: unlink it "
                                 "and delete its numbers first", code=SUBSCRIPTION_NOT_DELETABLE)
    sub_id, enterprise_id = access.subscription.id, access.enterprise.id
    locations = select(FusionLocation.id).where(FusionLocation.subscription_id == sub_id)
    await session.execute(delete(FusionNumberLocation).where(FusionNumberLocation.location_id.in_(locations)))
    for model in (FusionGroupFilter, FusionWizardRun, FusionMsTeamsAdmin, FusionLocation):
        await session.execute(delete(model).where(model.subscription_id == sub_id))
    await session.delete(access.subscription)
    await session.flush()
    for model in (TeamsVoiceUser, EnterpriseConsent, ActionRequest, WebhookDelivery):
        await session.execute(delete(model).where(model.enterprise_id == enterprise_id))
    await session.delete(access.enterprise)


# --- logins ---------------------------------------------------------------------------------------


async def create_login(
    session: AsyncSession, *, username: str, password: str, level: str, reseller_id: int | None = None,
    fusion_tenant_id: int | None = None, permissions: list[str] | None = None,
) -> FusionUser:
    """For seeding and operators (there is no Fusion endpoint that creates logins)."""
    if level not in LEVELS:
        raise ValidationFailed(f"level: must be one of {LEVELS}")
    if level == "tenant":
        if fusion_tenant_id is None or reseller_id is not None:
            raise ValidationFailed("A tenant login belongs to one Fusion tenant")
    else:
        node = await session.get(Reseller, reseller_id) if reseller_id is not None else None
        if node is None or node.level != RESELLER_LEVEL_OF[level]:
            raise ValidationFailed(f"A {level} login belongs to a {RESELLER_LEVEL_OF[level]} node")
    if await session.scalar(select(FusionUser.id).where(FusionUser.username == username)):
        raise Conflict(f"username: {username} is taken")
    user = FusionUser(username=username, password_hash=hash_secret(password), level=level, reseller_id=reseller_id,
                      fusion_tenant_id=fusion_tenant_id,
                      permissions=permissions if permissions is not None else default_permissions(level))
    session.add(user)
    await session.flush()
    return user
