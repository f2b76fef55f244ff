"""Queries over Fusion's logins, their profiles and their sessions (`fusion/accounts.py`, `fusion/auth.py`,
and a tenant's deletion). Which logins a caller sees follows the tenants it sees (`repository.visible_tenants`)."""

from typing import Any

from sqlalchemy import Select, delete, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core import search as text_search
from teamsvoice.domain.fusion.models import FusionSession, FusionTenant, FusionUser, FusionUserProfile
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.repository import counted_page, visible_tenants
from teamsvoice.domain.orgs import repository as orgs


async def login_by_username(session: AsyncSession, username: str) -> FusionUser | None:
    """The login of exactly this username (usernames are unique as written)."""
    return await session.scalar(select(FusionUser).where(FusionUser.username == username))


async def username_taken(session: AsyncSession, username: str) -> bool:
    """Whether a login has this username, ignoring case (new admins must differ in more than case)."""
    return await session.scalar(select(FusionUser.id).where(
        func.lower(FusionUser.username) == username.lower())) is not None


async def profile_of(session: AsyncSession, user_id: int) -> FusionUserProfile | None:
    return await session.scalar(select(FusionUserProfile).where(FusionUserProfile.user_id == user_id))


async def logins_visible_to(
    session: AsyncSession, principal: FusionPrincipal, *, username_contains: str | None, offset: int, limit: int,
) -> tuple[list[FusionUser], int]:
    """A page of the logins at or under the caller's node and of the tenants it sees (a tenant login: its
    tenant's logins), username containing `username_contains` (ignoring case), by username."""
    tenants = select(FusionTenant.id).where(visible_tenants(principal))
    if principal.is_tenant_level:
        statement = select(FusionUser).where(FusionUser.fusion_tenant_id.in_(tenants))
    else:
        statement = select(FusionUser).where(or_(FusionUser.reseller_id.in_(principal.reseller_scope),
                                                 FusionUser.fusion_tenant_id.in_(tenants)))
    if username_contains:
        statement = statement.where(text_search.contains(FusionUser.username, username_contains))
    return await counted_page(session, statement, [FusionUser.username, FusionUser.id], offset, limit)


async def admins_of(session: AsyncSession, level: str, *, reseller_id: int | None,
                    fusion_tenant_id: int | None) -> list[FusionUser]:
    """The logins of `level` administering a node of the Reseller tree (`reseller_id`) or else a Fusion tenant,
    by username."""
    owner = FusionUser.reseller_id == reseller_id if reseller_id is not None else (
        FusionUser.fusion_tenant_id == fusion_tenant_id)
    return list(await session.scalars(select(FusionUser).where(FusionUser.level == level, owner)
                                      .order_by(FusionUser.username)))


async def sessions_of(session: AsyncSession, user_id: int) -> list[FusionSession]:
    return list(await session.scalars(select(FusionSession).where(FusionSession.user_id == user_id)))


async def delete_login_records(session: AsyncSession, user_id: int) -> None:
    """A login's sessions and profile, not the login itself."""
    await session.execute(delete(FusionSession).where(FusionSession.user_id == user_id))
    await session.execute(delete(FusionUserProfile).where(FusionUserProfile.user_id == user_id))


async def delete_logins_of_tenant(session: AsyncSession, fusion_tenant_id: int) -> None:
    """The tenant's logins with their sessions and profiles."""
    logins = select(FusionUser.id).where(FusionUser.fusion_tenant_id == fusion_tenant_id)
    await session.execute(delete(FusionSession).where(FusionSession.user_id.in_(logins)))
    await session.execute(delete(FusionUserProfile).where(FusionUserProfile.user_id.in_(logins)))
    await session.execute(delete(FusionUser).where(FusionUser.fusion_tenant_id == fusion_tenant_id))


def _session_and_login(key: str) -> Select[Any]:
    return (select(FusionSession, FusionUser).outerjoin(FusionUser, FusionUser.id == FusionSession.user_id)
            .where(FusionSession.key == key))


async def session_and_login(session: AsyncSession, key: str) -> tuple[FusionSession | None, FusionUser | None]:
    """The session named `key` and its login (each None when gone)."""
    found = (await session.execute(_session_and_login(key))).first()
    return (found[0], found[1]) if found is not None else (None, None)


async def session_login_and_scope(
    session: AsyncSession, key: str,
) -> tuple[FusionSession | None, FusionUser | None, frozenset[int]]:
    """The session named `key`, its login and, for a login of an organisation level, the ids of the nodes
    below its node (with it), in one round trip: every request of the Fusion family passes here."""
    owner = (select(FusionUser.reseller_id).join(FusionSession, FusionSession.user_id == FusionUser.id)
             .where(FusionSession.key == key, FusionUser.level != "tenant").scalar_subquery())
    tree = orgs.reseller_subtree(owner)
    found = (await session.execute(_session_and_login(key).add_columns(tree.c.id).outerjoin(tree, true()))).all()
    if not found:
        return None, None, frozenset()
    return found[0][0], found[0][1], frozenset(row[2] for row in found if row[2] is not None)
