"""Fusion tenants and subscriptions (each subscription backed by a ConnecttoTeams enterprise), and logins."""

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from teamsvoice.core.limits import check_name, shown
from teamsvoice.core.security import hash_secret
from teamsvoice.domain.fusion import licences, repository, repository_accounts, repository_onboarding
from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant, FusionUser
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.repository import TenantOrder
from teamsvoice.domain.fusion.roles import FUSION_LEVEL_OF, LEVELS, RESELLER_LEVEL_OF, default_permissions
from teamsvoice.domain.fusion.scope import SubscriptionAccess, org_in_scope
from teamsvoice.domain.orgs import repository as orgs
from teamsvoice.domain.orgs.models import Enterprise, Reseller

TENANT_HAS_SUBSCRIPTIONS = "tenant_has_subscriptions"
SUBSCRIPTION_NOT_DELETABLE = "subscription_not_deletable"
# The `sort` names a tenant list accepts (the Fusion API's), and the order each stands for.
SORTABLE: dict[str, TenantOrder] = {"name": "name", "billingId": "billing_id", "uuid": "uuid", "markup": "markup",
                                    "createdOn": "created_at"}
# A tenant's markup is a percentage added to its prices. The vendor documents only its type ("markup: number",
# vendor-notes 2.3; the shared Markup object: "markup: float"); the range is ours: 0 to 1,000 %, stored in a
# double-precision column (FLOAT on PostgreSQL, REAL on SQLite).
MARKUP_MAX = 1000
BILLING_ID_MAX_LENGTH = 200  # the tenants' and subscriptions' billing_id columns are VARCHAR(200)


def check_given_name(name: str) -> str:
    """A tenant's or a subscription's name: a stored name (`core.limits.check_name`) with something in it besides
    spaces."""
    if not name.strip():
        raise ValidationFailed("name: must not be blank")
    return check_name("name", name)


def check_billing_id(billing_id: str | None) -> str | None:
    """A tenant's or a subscription's billing reference: None (none) or a stored name (`core.limits.check_name`:
    no NUL, line break or other control character, at most BILLING_ID_MAX_LENGTH characters)."""
    return None if billing_id is None else check_name("billingId", billing_id, BILLING_ID_MAX_LENGTH)


def check_markup(markup: float | None) -> float | None:
    """A markup: None (none) or a finite number from 0 to MARKUP_MAX (a percentage)."""
    if markup is None:
        return None
    if isinstance(markup, bool) or not isinstance(markup, int | float) or not math.isfinite(markup) \
            or not 0 <= markup <= MARKUP_MAX:
        raise ValidationFailed(f"markup: must be a number from 0 to {MARKUP_MAX} (a percentage) or null")
    return float(markup)


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
    owners = None
    if query.parent:
        node = await org_in_scope(session, principal, query.parent)
        if node is None:
            raise NotFound(f"parent: {query.parent} is not a distributor or reseller under your control")
        owners = await orgs.descendant_reseller_ids(session, node.id)
    return await repository.tenants_visible_to(
        session, principal, owner_ids=owners, name_contains=query.search, order=SORTABLE[query.sort],
        descending=query.direction == "desc", offset=offset, limit=limit)


async def _owner_for(session: AsyncSession, principal: FusionPrincipal, owner: dict | None) -> Reseller:
    if owner is None:
        if principal.reseller_id is None or principal.level == "system":
            raise ValidationFailed("owner: is required (a distributor or reseller {type, uuid})")
        node = await session.get(Reseller, principal.reseller_id)
        assert node is not None
        return node
    node = await org_in_scope(session, principal, owner["uuid"])
    if node is None:
        raise NotFound(f"owner: {shown(owner['uuid'])} is not a distributor or reseller under your control")
    if FUSION_LEVEL_OF.get(node.level) != owner["type"] or owner["type"] not in ("distributor", "reseller"):
        raise ValidationFailed(f"owner: {shown(owner['uuid'])} is a {FUSION_LEVEL_OF.get(node.level)}, not a {owner['type']}")
    return node


async def create_tenant(
    session: AsyncSession, principal: FusionPrincipal, *, name: str, billing_id: str | None, markup: float | None,
    owner: dict | None,
) -> FusionTenant:
    name, billing_id, markup = check_given_name(name), check_billing_id(billing_id), check_markup(markup)
    node = await _owner_for(session, principal, owner)
    tenant = FusionTenant(name=name, billing_id=billing_id, markup=markup, owner_reseller_id=node.id)
    session.add(tenant)
    await session.flush()
    return tenant


KEEP: Any = ...  # an update's field the request left out: kept as it is (None clears it)


async def update_tenant(session: AsyncSession, tenant: FusionTenant, *, name: str, billing_id: str | None = KEEP,
                        markup: float | None = KEEP) -> None:
    """A tenant's new name, and its billing id and markup where given (KEEP: left as they are; None: cleared)."""
    await repository.update_tenant(
        session, tenant, name=check_given_name(name),
        billing_id=tenant.billing_id if billing_id is KEEP else check_billing_id(billing_id),
        markup=tenant.markup if markup is KEEP else check_markup(markup))


async def delete_tenant(session: AsyncSession, tenant: FusionTenant) -> None:
    if await repository.subscription_count(session, tenant.id):
        raise PreconditionFailed("The tenant still has subscriptions; delete them first", code=TENANT_HAS_SUBSCRIPTIONS)
    await repository_accounts.delete_logins_of_tenant(session, tenant.id)
    await session.delete(tenant)


# --- subscriptions --------------------------------------------------------------------------------


ENTERPRISE_NAME_ATTEMPTS = 20


async def _enterprise_name(session: AsyncSession, reseller_id: int, wanted: str) -> str:
    """ConnecttoTeams names enterprises uniquely per reseller: suffix a counter when taken."""
    name, counter = wanted[:190], 1
    while await orgs.enterprise_name_taken(session, reseller_id, name):
        counter += 1
        name = f"{wanted[:180]} ({counter})"
    return name


async def create_subscription(
    session: AsyncSession, tenant: FusionTenant, *, name: str, billing_id: str | None, ms_teams_users: int,
    sip_trunk_channels: int,
) -> FusionSubscription:
    name, billing_id = check_given_name(name), check_billing_id(billing_id)
    licences.check_count(ms_teams_users, "licenses.msTeamsUsers")
    licences.check_count(sip_trunk_channels, "licenses.sipTrunkChannels")
    for _attempt in range(ENTERPRISE_NAME_ATTEMPTS):
        enterprise = Enterprise(
            reseller_id=tenant.owner_reseller_id,
            enterprise_name=await _enterprise_name(session, tenant.owner_reseller_id, f"{tenant.name} - {name}"),
            services=["DIRECT_ROUTING"], billing_references=[billing_id] if billing_id else [],
            user_limit=ms_teams_users, can_reseller_manage_enterprise_provisioning=True, registered_by=None,
        )
        try:
            async with session.begin_nested():
                session.add(enterprise)
            break
        except IntegrityError:  # another request took that name since it was looked up: the next free one
            continue
    else:
        raise Conflict(f"subscription {name!r}: its customer name stayed taken by requests at the same moment; try again")
    subscription = FusionSubscription(fusion_tenant_id=tenant.id, name=name, billing_id=billing_id,
                                      ms_teams_users=ms_teams_users, sip_trunk_channels=sip_trunk_channels,
                                      enterprise_id=enterprise.id)
    session.add(subscription)
    await session.flush()
    return subscription


async def list_subscriptions(
    session: AsyncSession, tenant: FusionTenant, search: str | None, offset: int, limit: int
) -> tuple[list[FusionSubscription], int]:
    return await repository.subscriptions_of_tenant(session, tenant.id, name_contains=search, offset=offset,
                                                    limit=limit)


async def deletion_blockers(session: AsyncSession, access: SubscriptionAccess) -> list[str]:
    """What keeps the subscription from being deleted, in words (none: it may be): a linked MS Teams tenant, numbers
    in its inventory, numbers in quarantine, jobs that have not ended, PBX connector records (ConnecttoTeams). What
    it recorded besides (job history, templates, consents, quarantines that ended) goes with it.

    A quarantine row belongs to the enterprise (its foreign key), so it cannot outlive the subscription's
    customer; deleting it would free at once a number that must rest until its end (one in no inventory, for
    anyone): the subscription waits for the last end instead."""
    blockers = []
    if access.ms_tenant_id is not None:
        blockers.append("it is linked to an MS Teams tenant (unlink it)")
    if numbers := await repository.numbers_in_inventory(session, access.subscription.id):
        blockers.append(f"its inventory holds {numbers} number(s) (delete them)")
    resting, last_end = await repository.quarantine_of_enterprise(session, access.enterprise.id, utcnow())
    if resting and last_end is not None:
        blockers.append(f"{resting} of its number(s) are in quarantine, the last until {last_end:%Y-%m-%d %H:%M} UTC "
                        "(wait for its end)")
    if busy := await repository_onboarding.unfinished_jobs(session, access.subscription.id, access.enterprise.id):
        blockers.append(f"jobs have not ended ({', '.join(busy[:10])})")
    if pbx := await repository.pbx_connector_records(session, access.enterprise.id):
        blockers.append("its customer has PBX connector records (" + ", ".join(f"{n} {kind}" for kind, n in pbx.items())
                        + "; remove them through the ConnecttoTeams API)")
    return blockers


async def is_deletable(session: AsyncSession, access: SubscriptionAccess) -> bool:
    return not await deletion_blockers(session, access)


async def delete_subscription(session: AsyncSession, access: SubscriptionAccess) -> None:
    if blockers := await deletion_blockers(session, access):
        raise PreconditionFailed(f"The subscription cannot be deleted: {'; '.join(blockers)}",
                                 code=SUBSCRIPTION_NOT_DELETABLE)
    sub_id, enterprise_id = access.subscription.id, access.enterprise.id
    await repository.delete_subscription_records(session, sub_id)
    await session.delete(access.subscription)
    await session.flush()
    await repository.delete_enterprise_records(session, enterprise_id)
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
    if await repository_accounts.login_by_username(session, username) is not None:
        raise Conflict(f"username: {username} is taken")
    user = FusionUser(username=username, password_hash=hash_secret(password), level=level, reseller_id=reseller_id,
                      fusion_tenant_id=fusion_tenant_id,
                      permissions=permissions if permissions is not None else default_permissions(level))
    session.add(user)
    await session.flush()
    return user
