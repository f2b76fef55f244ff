"""Queries over Fusion's tenants and subscriptions (and what hangs off a subscription: its MS Teams
administrator and SRE group filter), and over the organisation nodes and quarantined numbers the Fusion services
list. Routes and services reach these rows only through here (logins: `repository_accounts.py`). Which tenants
a login sees is decided here once (`visible_tenants`); the subscription a caller may act on comes from
`fusion/scope.py`, so the functions taking ids take them already checked against the caller's scope."""

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from teamsvoice.core import search as text_search
from teamsvoice.domain.calling.models import CallAppServiceAccount, CallingJob, DirectRoute, PbxLocation, PbxUser, TeamsAppTemplate
from teamsvoice.domain.consent.models import ActionRequest, EnterpriseConsent, WebhookDelivery
from teamsvoice.domain.fusion.models import (
    FusionGroupFilter,
    FusionLocation,
    FusionMsTeamsAdmin,
    FusionNumber,
    FusionNumberLocation,
    FusionSubscription,
    FusionTenant,
    FusionUser,
    FusionUserProfile,
    FusionWizardRun,
)
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.orgs import repository as orgs
from teamsvoice.domain.orgs.models import ApiClient, Enterprise, OAuthToken, PortalUser, Reseller
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob, FusionResourceAccount, FusionTemplate
from teamsvoice.domain.voice_state.models import DriftEvent, NumberQuarantine, TenantDriftSettings, VoiceApplyJob

# What a tenant list can be ordered by (then by id, so that pages never overlap).
TenantOrder = Literal["name", "billing_id", "uuid", "markup", "created_at"]
_TENANT_ORDER = {"name": FusionTenant.name, "billing_id": FusionTenant.billing_id, "uuid": FusionTenant.uuid,
                 "markup": FusionTenant.markup, "created_at": FusionTenant.created_at}


async def counted_page(session: AsyncSession, statement: Select[Any], order_by: Sequence[Any], offset: int,
                       limit: int) -> tuple[list[Any], int]:
    """One page of `statement`'s rows (its entity; a tuple of what it selects when that is more than one thing) in
    the given order, and how many rows it has in all.
    One statement: the total is a window count over the whole result, taken before the page is cut; a page
    past the end (or of no rows) has no row to carry it, and only then is the total counted on its own."""
    return await _read_page(session, _paged(statement, order_by), statement, {}, offset, limit)


def _paged(statement: Select[Any], order_by: Sequence[Any]) -> Select[Any]:
    """`counted_page`'s statement: `statement` with its total as a window count, ordered, its offset and limit
    the parameters page_offset and page_limit (so that it can be built once: `_built_page`)."""
    return (statement.add_columns(func.count().over()).order_by(*order_by)
            .offset(bindparam("page_offset", type_=Integer)).limit(bindparam("page_limit", type_=Integer)))


async def _read_page(session: AsyncSession, page: Select[Any], statement: Select[Any], values: dict[str, Any],
                     offset: int, limit: int) -> tuple[list[Any], int]:
    """`counted_page` with its statements built (`page` is `_paged(statement)`) and their parameters' `values`."""
    found = (await session.execute(page, {**values, "page_offset": offset, "page_limit": limit})).all()
    if found:
        width = len(found[0]) - 1  # what the statement selects, then the total
        return [row[0] if width == 1 else tuple(row[:width]) for row in found], found[0][-1]
    if offset == 0 and limit > 0:
        return [], 0
    return [], await session.scalar(select(func.count()).select_from(statement.subquery()), values) or 0


# The list routes' pages, built once per shape (which filters are given, the order) with the values as
# parameters: building and keying them on each request took a good part of the time of the read itself.
_PAGES: dict[tuple[Any, ...], tuple[Select[Any], Select[Any]]] = {}


async def _built_page(session: AsyncSession, shape: tuple[Any, ...], build: Callable[[], tuple[Select[Any], Sequence[Any]]],
                      values: dict[str, Any], offset: int, limit: int) -> tuple[list[Any], int]:
    """`counted_page` of the statement and order `build()` gives for `shape` (built the first time only), whose
    parameters take `values`."""
    built = _PAGES.get(shape)
    if built is None:
        statement, order_by = build()
        built = _PAGES[shape] = (_paged(statement, order_by), statement)
    return await _read_page(session, built[0], built[1], values, offset, limit)


# --- tenants -------------------------------------------------------------------------------------------


# The tenants a login sees: a tenant login its own tenant; any other login the tenants owned by its node or a
# node below it. Anything else does not exist for it. By whether the login is a tenant login, with the login's
# values as parameters (`_visible_values`), so that a statement using it can be built once (`_TENANT_BY_UUID`).
_VISIBLE = {True: FusionTenant.id == bindparam("visible_tenant_id"),
            False: FusionTenant.owner_reseller_id.in_(bindparam("visible_nodes", expanding=True))}


def _visible_values(principal: FusionPrincipal) -> dict[str, Any]:
    if principal.is_tenant_level:
        return {"visible_tenant_id": principal.fusion_tenant_id or 0}
    return {"visible_nodes": sorted(principal.reseller_scope)}


def visible_tenants(principal: FusionPrincipal) -> ColumnElement[bool]:
    """The condition on tenants that `principal` sees (see `_VISIBLE`), holding its values."""
    return _VISIBLE[principal.is_tenant_level].params(_visible_values(principal))


async def tenants_visible_to(
    session: AsyncSession, principal: FusionPrincipal, *, owner_ids: frozenset[int] | None, name_contains: str | None,
    order: TenantOrder, descending: bool, offset: int, limit: int,
) -> tuple[list[FusionTenant], int]:
    """A page of the tenants `principal` sees (owned by one of `owner_ids` when given; whose name contains
    `name_contains`, ignoring case), in `order` then by id, and their number. Their owners are read in the
    same statement, so rendering them (`orgs.reseller_by_id`) finds them in the session without a query."""
    values = _visible_values(principal)
    if owner_ids is not None:
        values["owner_ids"] = sorted(owner_ids)
    if name_contains:
        values["name_contains"] = text_search.like_pattern(name_contains)

    def build() -> tuple[Select[Any], Sequence[Any]]:
        statement = _with_owner(select(FusionTenant).where(_VISIBLE[principal.is_tenant_level]))
        if owner_ids is not None:
            statement = statement.where(FusionTenant.owner_reseller_id.in_(bindparam("owner_ids", expanding=True)))
        if name_contains:
            statement = statement.where(text_search.matches(FusionTenant.name, bindparam("name_contains")))
        column = _TENANT_ORDER[order]
        return statement, [column.desc() if descending else column.asc(), FusionTenant.id]

    shape = ("tenants", principal.is_tenant_level, owner_ids is not None, bool(name_contains), order, descending)
    return await _built_page(session, shape, build, values, offset, limit)


def _with_owner(statement: Select[Any]) -> Select[Any]:
    """`statement` over tenants with each tenant's owner node (`FusionTenant.owner`) read in the same
    statement: a tenant's answer names its owner, found then in the session (`orgs.reseller_by_id`)."""
    return statement.options(joinedload(FusionTenant.owner))


# Every Fusion route under tenants/{uuid} reads its tenant so: the statement is built (and its cache key
# computed) once per kind of login rather than on each request, where that took about as long as the read.
_TENANT_BY_UUID = {tenant_level: _with_owner(select(FusionTenant).where(visible, FusionTenant.uuid == bindparam("tenant_uuid")))
                   for tenant_level, visible in _VISIBLE.items()}


async def tenant_visible_to(session: AsyncSession, principal: FusionPrincipal, tenant_uuid: str) -> FusionTenant | None:
    """The tenant if the caller sees it, read with its owner (as `tenants_visible_to`)."""
    return await session.scalar(_TENANT_BY_UUID[principal.is_tenant_level],
                                {**_visible_values(principal), "tenant_uuid": tenant_uuid})


async def subscription_count(session: AsyncSession, fusion_tenant_id: int) -> int:
    return await session.scalar(select(func.count(FusionSubscription.id)).where(
        FusionSubscription.fusion_tenant_id == fusion_tenant_id)) or 0


# --- subscriptions -------------------------------------------------------------------------------------


async def subscriptions_of_tenant(
    session: AsyncSession, fusion_tenant_id: int, *, name_contains: str | None, offset: int, limit: int,
) -> tuple[list[FusionSubscription], int]:
    """A page of the tenant's subscriptions (name containing `name_contains`, ignoring case), oldest first."""
    values: dict[str, Any] = {"fusion_tenant_id": fusion_tenant_id}
    if name_contains:
        values["name_contains"] = text_search.like_pattern(name_contains)

    def build() -> tuple[Select[Any], Sequence[Any]]:
        statement = select(FusionSubscription).where(FusionSubscription.fusion_tenant_id == bindparam("fusion_tenant_id"))
        if name_contains:
            statement = statement.where(text_search.matches(FusionSubscription.name, bindparam("name_contains")))
        return statement, [FusionSubscription.id]

    return await _built_page(session, ("subscriptions", bool(name_contains)), build, values, offset, limit)


async def subscriptions_with_enterprises(session: AsyncSession, fusion_tenant_ids: Collection[int],
                                         per_tenant: int) -> list[tuple[FusionSubscription, Enterprise]]:
    """The first `per_tenant` subscriptions of each of the tenants (oldest first, as `subscriptions_of_tenant` pages
    them), each with the enterprise that backs it, by tenant then subscription, in one statement. The tenants are
    taken as checked against the caller's scope (`tenants_visible_to`), as `scope.subscription_in_scope` would."""
    if not fusion_tenant_ids:
        return []
    rank = func.row_number().over(partition_by=FusionSubscription.fusion_tenant_id, order_by=FusionSubscription.id)
    ranked = (select(FusionSubscription.id, rank.label("rank"))
              .where(FusionSubscription.fusion_tenant_id.in_(sorted(fusion_tenant_ids))).subquery())
    rows = await session.execute(
        select(FusionSubscription, Enterprise).join(ranked, ranked.c.id == FusionSubscription.id)
        .join(Enterprise, Enterprise.id == FusionSubscription.enterprise_id).where(ranked.c.rank <= per_tenant)
        .order_by(FusionSubscription.fusion_tenant_id, FusionSubscription.id))
    return [(subscription, enterprise) for subscription, enterprise in rows]


async def subscription_of_tenant(session: AsyncSession, fusion_tenant_id: int,
                                 subscription_id: int) -> FusionSubscription | None:
    return await session.scalar(select(FusionSubscription).where(
        FusionSubscription.id == subscription_id, FusionSubscription.fusion_tenant_id == fusion_tenant_id))


async def number_holders(session: AsyncSession, enterprise_id: int, subscription_id: int,
                         e164s: list[str]) -> list[tuple[TeamsVoiceUser, int | None]]:
    """The enterprise's voice records holding any of the numbers (at most `inventory.repository.CHUNK`), each with
    the id of the subscription's resource account it is the record of (None: a user's), in one statement."""
    account = and_(FusionResourceAccount.voice_user_id == TeamsVoiceUser.id,
                   FusionResourceAccount.subscription_id == subscription_id)
    rows = await session.execute(
        select(TeamsVoiceUser, FusionResourceAccount.id).outerjoin(FusionResourceAccount, account)
        .where(TeamsVoiceUser.enterprise_id == enterprise_id, TeamsVoiceUser.phone_number.in_(e164s)))
    return [(user, account_id) for user, account_id in rows]


async def numbers_in_inventory(session: AsyncSession, subscription_id: int) -> int:
    return await session.scalar(select(func.count(FusionNumber.id)).where(
        FusionNumber.subscription_id == subscription_id)) or 0


async def quarantine_of_enterprise(session: AsyncSession, enterprise_id: int,
                                   now: datetime) -> tuple[int, datetime | None]:
    """How many of the enterprise's numbers are still in quarantine at `now`, and when the last of them ends."""
    count, last = (await session.execute(
        select(func.count(NumberQuarantine.id), func.max(NumberQuarantine.until))
        .where(NumberQuarantine.enterprise_id == enterprise_id, NumberQuarantine.until > now))).one()
    return count or 0, last


async def pbx_connector_records(session: AsyncSession, enterprise_id: int) -> dict[str, int]:
    """How many PBX connector records (ConnecttoTeams) the enterprise has, by kind, leaving out kinds it has none of:
    they stand for registrations on the SBC, removed through that family, not by deleting a subscription."""
    counts = {name: await session.scalar(select(func.count()).select_from(model).where(model.enterprise_id == enterprise_id)) or 0
              for name, model in (("PBX users", PbxUser), ("PBX locations", PbxLocation), ("direct routes", DirectRoute))}
    return {name: count for name, count in counts.items() if count}


async def delete_subscription_records(session: AsyncSession, subscription_id: int) -> None:
    """Everything recorded under the subscription (locations and their numbers' links, SRE group filter,
    wizard runs, MS Teams administrator, templates, resource accounts, bulk jobs with their items), not the
    subscription itself."""
    locations = select(FusionLocation.id).where(FusionLocation.subscription_id == subscription_id)
    await session.execute(delete(FusionNumberLocation).where(FusionNumberLocation.location_id.in_(locations)))
    jobs = select(FusionBulkJob.id).where(FusionBulkJob.subscription_id == subscription_id)
    await session.execute(delete(FusionBulkItem).where(FusionBulkItem.job_id.in_(jobs)))
    for model in (FusionGroupFilter, FusionWizardRun, FusionMsTeamsAdmin, FusionLocation, FusionTemplate,
                  FusionResourceAccount, FusionBulkJob):
        await session.execute(delete(model).where(model.subscription_id == subscription_id))


async def delete_enterprise_records(session: AsyncSession, enterprise_id: int) -> None:
    """Everything recorded under the enterprise (voice users, consents, sign-in requests, webhook deliveries, its
    jobs' history, drift events and settings, quarantines that ended, its ConnecttoTeams credentials with their
    tokens, its Unified App templates and CallApp account), not the enterprise itself. Its PBX connector records
    must be gone first (`pbx_connector_records`), and its quarantines ended (`quarantine_of_enterprise`)."""
    clients = select(ApiClient.id).where(ApiClient.enterprise_id == enterprise_id)
    portal_users = select(PortalUser.id).where(PortalUser.enterprise_id == enterprise_id)
    await session.execute(delete(OAuthToken).where(OAuthToken.api_client_id.in_(clients) | OAuthToken.portal_user_id.in_(portal_users)))
    for model in (TeamsVoiceUser, EnterpriseConsent, ActionRequest, WebhookDelivery, CallingJob, VoiceApplyJob, DriftEvent,
                  TenantDriftSettings, NumberQuarantine, ApiClient, PortalUser, TeamsAppTemplate, CallAppServiceAccount):
        await session.execute(delete(model).where(model.enterprise_id == enterprise_id))


# --- organisation nodes and quarantined numbers --------------------------------------------------------


def _resellers_among(ids: frozenset[int], levels: Sequence[str]) -> Select[tuple[Reseller]]:
    return select(Reseller).where(Reseller.id.in_(ids), Reseller.level.in_(levels))


async def resellers_among(session: AsyncSession, ids: frozenset[int], levels: Sequence[str]) -> list[Reseller]:
    """The nodes of `ids` at one of `levels` (Reseller levels), by name."""
    return list(await session.scalars(_resellers_among(ids, levels).order_by(Reseller.name, Reseller.id)))


async def resellers_page(
    session: AsyncSession, ids: frozenset[int], level: str, *, name_contains: str | None, offset: int, limit: int,
) -> tuple[list[Reseller], int]:
    """A page of the nodes of `ids` at `level` (name containing `name_contains`, ignoring case), by name."""
    statement = _resellers_among(ids, [level])
    if name_contains:
        statement = statement.where(text_search.contains(Reseller.name, name_contains))
    return await counted_page(session, statement, [Reseller.name, Reseller.id], offset, limit)


async def quarantined_numbers(
    session: AsyncSession, enterprise_id: int, subscription_id: int, *, now: datetime, digits: str | None, offset: int,
    limit: int,
) -> tuple[list[tuple[NumberQuarantine, FusionNumber | None]], int]:
    """A page of the enterprise's numbers still in quarantine at `now` (containing `digits`), by number, each with
    its row in the subscription's inventory (None: in none, a ConnecttoTeams user's number)."""
    in_inventory = and_(FusionNumber.e164 == NumberQuarantine.e164, FusionNumber.subscription_id == subscription_id)
    statement = select(NumberQuarantine, FusionNumber).outerjoin(FusionNumber, in_inventory).where(
        NumberQuarantine.enterprise_id == enterprise_id, NumberQuarantine.until > now)
    if digits:
        statement = statement.where(text_search.contains(NumberQuarantine.e164, digits))
    return await counted_page(session, statement, [NumberQuarantine.e164], offset, limit)


# --- what the routes update and read directly ----------------------------------------------------------


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


async def profiles_and_nodes_of_logins(
    session: AsyncSession, user_ids: Sequence[int],
) -> list[tuple[int, FusionUserProfile | None, Reseller | None, FusionTenant | None]]:
    """Each of the logins' profile (None when it has none) and the node it administers (its Reseller node, or for
    a tenant login its Fusion tenant), in one statement: a page of up to 1,000 logins read each in statements of
    its own."""
    if not user_ids:
        return []
    rows = await session.execute(
        select(FusionUser.id, FusionUserProfile, Reseller, FusionTenant).select_from(FusionUser)
        .outerjoin(FusionUserProfile, FusionUserProfile.user_id == FusionUser.id)
        .outerjoin(Reseller, Reseller.id == FusionUser.reseller_id)
        .outerjoin(FusionTenant, FusionTenant.id == FusionUser.fusion_tenant_id)
        .where(FusionUser.id.in_(user_ids)))
    return [(row[0], row[1], row[2], row[3]) for row in rows]
