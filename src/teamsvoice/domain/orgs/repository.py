"""Queries over the organisation tree, always filtered by the caller's scope."""

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import CTE, Row, and_, bindparam, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core import search as text_search
from teamsvoice.core.clock import utcnow
from teamsvoice.domain.consent.models import EnterpriseConsent
from teamsvoice.domain.orgs.models import ApiClient, Enterprise, OAuthToken, PbxType, PortalUser, Reseller, SbcGateway
from teamsvoice.domain.orgs.principal import Principal


def reseller_subtree(root: Any) -> CTE:
    """The reseller `root` (an id, or a scalar subquery giving one) and every reseller below it, as a
    recursive query (only the subtree is read): to select from, or to join to a credential's lookup so that
    the caller and its scope come back in one round trip (domain/orgs/auth, domain/fusion/auth)."""
    tree = select(Reseller.id).where(Reseller.id == root).cte("tree", recursive=True)
    return tree.union_all(select(Reseller.id).where(Reseller.parent_id == tree.c.id))


async def descendant_reseller_ids(session: AsyncSession, root_id: int) -> frozenset[int]:
    """The reseller and every reseller below it."""
    return frozenset((await session.scalars(select(reseller_subtree(root_id).c.id))).all()) | {root_id}


# The enterprises a caller sees: an enterprise login its own; any other login the enterprises of the resellers in
# its scope. By whether the login is an enterprise login, with its values as parameters (`_scope_values`), so that
# a statement using it can be built once (`_ENTERPRISES_WITH_CONSENTS`).
_ENTERPRISE_SCOPE = {True: Enterprise.id == bindparam("scope_enterprise_id"),
                     False: Enterprise.reseller_id.in_(bindparam("scope_resellers", expanding=True))}


def _scope_values(principal: Principal) -> dict[str, Any]:
    if principal.enterprise_id is not None:
        return {"scope_enterprise_id": principal.enterprise_id}
    return {"scope_resellers": sorted(principal.reseller_scope)}


def _enterprise_scope(principal: Principal):  # type: ignore[no-untyped-def]
    return _ENTERPRISE_SCOPE[principal.enterprise_id is not None].params(_scope_values(principal))


# The list routes' reads (getResellers, getEnterprisesForReseller, getAvailableSBCGatewayRegions), built once
# with the reseller (and the caller's scope) as parameters: building and keying them on each request took a good
# part of the time of the read itself.
_RESELLER_AND_CHILDREN = select(Reseller).where(or_(Reseller.id == bindparam("reseller_id"),
                                                    Reseller.parent_id == bindparam("reseller_id"))).order_by(Reseller.id)
_ENTERPRISES_WITH_CONSENTS = {
    enterprise_login: select(Reseller.id, Enterprise, EnterpriseConsent).select_from(Reseller)
    .outerjoin(Enterprise, and_(Enterprise.reseller_id == Reseller.id, scope))
    .outerjoin(EnterpriseConsent, EnterpriseConsent.enterprise_id == Enterprise.id)
    .where(Reseller.id == bindparam("reseller_id")).order_by(Enterprise.id, EnterpriseConsent.id)
    for enterprise_login, scope in _ENTERPRISE_SCOPE.items()}
_RESELLER_AND_GATEWAYS = (select(Reseller.id, SbcGateway).select_from(Reseller)
                          .outerjoin(SbcGateway, SbcGateway.reseller_id == Reseller.id)
                          .where(Reseller.id == bindparam("reseller_id")).order_by(SbcGateway.id))


async def get_reseller(session: AsyncSession, principal: Principal, reseller_id: int) -> Reseller | None:
    if reseller_id not in principal.reseller_scope:
        return None
    return await session.get(Reseller, reseller_id)


async def child_resellers_in_scope(session: AsyncSession, principal: Principal, reseller_id: int) -> list[Reseller] | None:
    """The resellers directly under `reseller_id`, or None when that reseller is not in the caller's scope (or
    does not exist). One statement reads the reseller and its children: a list route's whole read."""
    if reseller_id not in principal.reseller_scope:
        return None
    rows = (await session.scalars(_RESELLER_AND_CHILDREN, {"reseller_id": reseller_id})).all()
    if not any(r.id == reseller_id for r in rows):
        return None
    return [r for r in rows if r.id != reseller_id]


async def enterprises_with_consents(session: AsyncSession, principal: Principal,
                                    reseller_id: int) -> list[tuple[Enterprise, list[EnterpriseConsent]]] | None:
    """The reseller's enterprises the caller sees, each with its consents (oldest first), or None when the
    reseller is not in the caller's scope (or does not exist); one statement (the reseller outer-joined to
    its enterprises and their consents)."""
    if reseller_id not in principal.reseller_scope:
        return None
    rows = (await session.execute(_ENTERPRISES_WITH_CONSENTS[principal.enterprise_id is not None],
                                  {**_scope_values(principal), "reseller_id": reseller_id})).all()
    if not rows:
        return None
    found: dict[int, tuple[Enterprise, list[EnterpriseConsent]]] = {}
    for _reseller, enterprise, consent in rows:
        if enterprise is None:
            continue
        entry = found.setdefault(enterprise.id, (enterprise, []))
        if consent is not None:
            entry[1].append(consent)
    return list(found.values())


async def sbc_gateways_in_scope(session: AsyncSession, principal: Principal, reseller_id: int) -> list[SbcGateway] | None:
    """The reseller's SBC gateways (by id), or None when the reseller is not in the caller's scope (or does not
    exist); one statement (the reseller outer-joined to its gateways)."""
    if reseller_id not in principal.reseller_scope:
        return None
    rows = (await session.execute(_RESELLER_AND_GATEWAYS, {"reseller_id": reseller_id})).all()
    if not rows:
        return None
    return [gateway for _reseller, gateway in rows if gateway is not None]


async def list_enterprises(session: AsyncSession, principal: Principal, reseller_id: int) -> Sequence[Enterprise]:
    query = select(Enterprise).where(_enterprise_scope(principal), Enterprise.reseller_id == reseller_id)
    return (await session.scalars(query.order_by(Enterprise.id))).all()


# An enterprise whose services are Direct Routing only, as a Fusion subscription's is
# (`fusion/tenants.create_subscription`): the first service named DIRECT_ROUTING and no second one (the services are
# a list of names, each once: `orgs/service._check_services_and_ids`).
_DIRECT_ROUTING_ONLY = and_(func.coalesce(Enterprise.services[0].as_string(), "") == "DIRECT_ROUTING",
                            Enterprise.services[1].as_string().is_(None))


async def enterprises_page_with_consents(
    session: AsyncSession, principal: Principal, *, leaving_out: Collection[int], name_contains: str | None,
    offset: int, limit: int,
) -> tuple[list[tuple[Enterprise, list[EnterpriseConsent]]], int]:
    """A page of the enterprises of the resellers in the caller's scope (`list_enterprises` of each, by reseller
    then id) that have more than Direct Routing only, other than those of `leaving_out` (ids), whose name contains
    `name_contains` (ignoring case: `core/search.py`), each with its consents (oldest first), and how many such
    enterprises there are. One statement (the page of enterprises joined to their consents; a page past the end
    counts them in a second)."""
    where = [_enterprise_scope(principal), Enterprise.reseller_id.in_(sorted(principal.reseller_scope)),
             ~_DIRECT_ROUTING_ONLY]
    if leaving_out:
        where.append(Enterprise.id.not_in(sorted(leaving_out)))
    if name_contains:
        where.append(text_search.contains(Enterprise.enterprise_name, name_contains))
    page = (select(Enterprise.id, func.count().over().label("total")).where(*where)
            .order_by(Enterprise.reseller_id, Enterprise.id).offset(offset).limit(limit).subquery())
    rows = (await session.execute(
        select(Enterprise, EnterpriseConsent, page.c.total).join(page, page.c.id == Enterprise.id)
        .outerjoin(EnterpriseConsent, EnterpriseConsent.enterprise_id == Enterprise.id)
        .order_by(Enterprise.reseller_id, Enterprise.id, EnterpriseConsent.id))).all()
    if not rows:
        total = 0 if offset == 0 else await session.scalar(select(func.count(Enterprise.id)).where(*where)) or 0
        return [], total
    found: dict[int, tuple[Enterprise, list[EnterpriseConsent]]] = {}
    for enterprise, consent, _total in rows:
        entry = found.setdefault(enterprise.id, (enterprise, []))
        if consent is not None:
            entry[1].append(consent)
    return list(found.values()), rows[0][2]


async def get_enterprise(session: AsyncSession, principal: Principal, enterprise_id: int) -> Enterprise | None:
    query = select(Enterprise).where(_enterprise_scope(principal), Enterprise.id == enterprise_id)
    return await session.scalar(query)


async def enterprises_by_name(session: AsyncSession, principal: Principal, name: str) -> list[Enterprise]:
    """The enterprises of that name in the principal's scope (a name is unique per reseller, so a master reseller
    may see two), by id."""
    query = select(Enterprise).where(_enterprise_scope(principal), Enterprise.enterprise_name == name)
    return list(await session.scalars(query.order_by(Enterprise.id)))


async def get_enterprise_by_tenant(session: AsyncSession, principal: Principal, tenant_id: str) -> Enterprise | None:
    query = select(Enterprise).where(_enterprise_scope(principal), Enterprise.tenant_id == tenant_id)
    return await session.scalar(query)


async def enterprise_name_taken(session: AsyncSession, reseller_id: int, name: str, *, except_id: int | None = None) -> bool:
    query = select(Enterprise.id).where(Enterprise.reseller_id == reseller_id, Enterprise.enterprise_name == name)
    if except_id is not None:
        query = query.where(Enterprise.id != except_id)
    return (await session.scalar(query)) is not None


async def sbc_gateways_for(session: AsyncSession, reseller_id: int) -> Sequence[SbcGateway]:
    query = select(SbcGateway).where(SbcGateway.reseller_id == reseller_id).order_by(SbcGateway.id)
    return (await session.scalars(query)).all()


async def pbx_types_for(session: AsyncSession, reseller_id: int) -> Sequence[PbxType]:
    return (await session.scalars(select(PbxType).where(PbxType.reseller_id == reseller_id).order_by(PbxType.id))).all()


async def portal_user_by_username(session: AsyncSession, username: str) -> PortalUser | None:
    return await session.scalar(select(PortalUser).where(PortalUser.username == username))


async def api_client_by_client_id(session: AsyncSession, client_id: str) -> ApiClient | None:
    return await session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))


async def oauth_token_by_digest(session: AsyncSession, digest: str) -> OAuthToken | None:
    return await session.scalar(select(OAuthToken).where(OAuthToken.token_digest == digest))


async def token_with_owner_and_scope(session: AsyncSession, digest: str) -> Sequence[Row[Any]]:
    """The token of `digest` with its user, its client and, for a reseller-level user, one row per reseller of
    its scope (the user's reseller and those below it; the fourth column): one round trip, which every request
    of the ConnecttoTeams family makes. No rows when the token is unknown."""
    owner = (select(PortalUser.reseller_id).join(OAuthToken, OAuthToken.portal_user_id == PortalUser.id)
             .where(OAuthToken.token_digest == digest, PortalUser.enterprise_id.is_(None)).scalar_subquery())
    tree = reseller_subtree(owner)
    return (await session.execute(
        select(OAuthToken, PortalUser, ApiClient, tree.c.id)
        .outerjoin(PortalUser, PortalUser.id == OAuthToken.portal_user_id)
        .outerjoin(ApiClient, ApiClient.id == OAuthToken.api_client_id)
        .outerjoin(tree, true())
        .where(OAuthToken.token_digest == digest))).all()


async def revoke_tokens_of_clients(session: AsyncSession, client_ids: list[int]) -> None:
    await session.execute(update(OAuthToken).where(OAuthToken.api_client_id.in_(client_ids)).values(revoked=True))


async def enterprise_credentials(session: AsyncSession, enterprise_id: int) -> tuple[Sequence[PortalUser], Sequence[ApiClient]]:
    users = (await session.scalars(select(PortalUser).where(PortalUser.enterprise_id == enterprise_id))).all()
    clients = (await session.scalars(select(ApiClient).where(ApiClient.enterprise_id == enterprise_id))).all()
    return users, clients


async def sbc_gateway(session: AsyncSession, gateway_id: int) -> SbcGateway | None:
    """A gateway a route in the caller's scope already names (for rendering the route)."""
    return await session.get(SbcGateway, gateway_id)


async def portal_user(session: AsyncSession, portal_user_id: int) -> PortalUser | None:
    """The login behind an authenticated principal (`Principal.portal_user_id`)."""
    return await session.get(PortalUser, portal_user_id)


async def reseller_of(session: AsyncSession, enterprise: Enterprise) -> Reseller:
    """The enterprise's reseller (no scope check: the caller already sees the enterprise)."""
    reseller = await session.get(Reseller, enterprise.reseller_id)
    assert reseller is not None  # a foreign key
    return reseller


async def reseller_by_id(session: AsyncSession, reseller_id: int) -> Reseller | None:
    """A reseller the caller already sees through one of its nodes (an owner or parent, for rendering)."""
    return await session.get(Reseller, reseller_id)


async def enterprise_by_id(session: AsyncSession, enterprise_id: int) -> Enterprise:
    """An enterprise a record already points at (a job's, a sign-in request's); no scope check."""
    enterprise = await session.get(Enterprise, enterprise_id)
    assert enterprise is not None  # a foreign key
    return enterprise


async def tenant_registered_elsewhere(session: AsyncSession, tenant_id: str, enterprise_id: int) -> bool:
    """Whether another enterprise than `enterprise_id` is linked to the Microsoft tenant."""
    return (await session.scalar(select(Enterprise.id).where(
        Enterprise.tenant_id == tenant_id, Enterprise.id != enterprise_id))) is not None


async def claim_registration(session: AsyncSession, enterprise: Enterprise) -> bool:
    """Marks the enterprise registered, now, in one conditional UPDATE: False when another call completed its
    registration first."""
    claimed = await session.execute(update(Enterprise).where(Enterprise.id == enterprise.id, Enterprise.registered.is_(False))
                                    .values(registered=True, registered_on=utcnow()))
    return claimed.rowcount == 1  # type: ignore[attr-defined]


async def _locked(session: AsyncSession, model: Any, row_id: int) -> Any:
    """The row, locked until commit and read afresh. The UPDATE that changes nothing takes the lock on both backends
    (PostgreSQL: the row; SQLite: the database's write lock, before anything is read: a read first would see a
    snapshot that another writer's commit makes stale)."""
    await session.execute(update(model).where(model.id == row_id).values(id=model.id)
                          .execution_options(synchronize_session=False))
    return await session.scalar(select(model).where(model.id == row_id).with_for_update()
                                .execution_options(populate_existing=True))


async def locked_reseller(session: AsyncSession, reseller_id: int) -> Reseller | None:
    """The reseller, locked until commit: a change of it that reads it first (its list of redirect URLs) must not
    lose another's made at the same moment."""
    return await _locked(session, Reseller, reseller_id)


async def locked_enterprise(session: AsyncSession, enterprise_id: int) -> Enterprise | None:
    """The enterprise, locked until commit: its tenant's unlink and the start of work in that tenant (a bulk job, a
    resource account's change) wait for each other, so that each sees what the other did (the unlink the new job,
    the job the tenant gone)."""
    return await _locked(session, Enterprise, enterprise_id)
