"""The Fusion repositories' rules: which tenants and logins a login sees (anything else does not exist for it),
the order and counts of a page, and a session's login with its scope in one lookup. Each test works in one
transaction on the suite's database (both backends) and rolls it back."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.domain.fusion import repository, repository_accounts
from teamsvoice.domain.fusion.models import FusionSession, FusionTenant, FusionUser
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.orgs.models import Reseller
from tests.support.database import rolled_back_session


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    async with rolled_back_session(database_url) as session:
        yield session


def _org_principal(node: Reseller, scope: set[int]) -> FusionPrincipal:
    return FusionPrincipal(user_id=0, username="x", level="reseller", permissions=frozenset(), reseller_id=node.id,
                           fusion_tenant_id=None, tenant_uuid=None, reseller_scope=frozenset(scope), session_key="k")


def _tenant_principal(tenant: FusionTenant) -> FusionPrincipal:
    return FusionPrincipal(user_id=0, username="x", level="tenant", permissions=frozenset(), reseller_id=None,
                           fusion_tenant_id=tenant.id, tenant_uuid=tenant.uuid, reseller_scope=frozenset(),
                           session_key="k")


async def _tree(session: AsyncSession) -> tuple[Reseller, Reseller, Reseller]:
    """A distributor with a reseller below it, and a reseller outside its tree."""
    distributor = Reseller(name="Distributor", level="MASTER_RESELLER")
    session.add(distributor)
    await session.flush()
    below, other = (Reseller(name="Below", level="RESELLER", parent_id=distributor.id),
                    Reseller(name="Other", level="RESELLER"))
    session.add_all([below, other])
    await session.flush()
    return distributor, below, other


async def _tenant(session: AsyncSession, name: str, owner: Reseller, markup: float | None = None) -> FusionTenant:
    tenant = FusionTenant(name=name, owner_reseller_id=owner.id, markup=markup)
    session.add(tenant)
    await session.flush()
    return tenant


async def test_a_login_sees_the_tenants_of_its_subtree_or_its_own_tenant(session: AsyncSession) -> None:
    distributor, below, other = await _tree(session)
    own, under, elsewhere = (await _tenant(session, "Own", distributor), await _tenant(session, "Under", below),
                             await _tenant(session, "Elsewhere", other))
    seen_by_distributor = _org_principal(distributor, {distributor.id, below.id})
    page, total = await repository.tenants_visible_to(session, seen_by_distributor, owner_ids=None, name_contains=None,
                                                      order="name", descending=False, offset=0, limit=10)
    assert [t.name for t in page] == ["Own", "Under"] and total == 2
    assert await repository.tenant_visible_to(session, seen_by_distributor, elsewhere.uuid) is None
    assert await repository.tenant_visible_to(session, _org_principal(below, {below.id}), own.uuid) is None
    assert (await repository.tenant_visible_to(session, _org_principal(below, {below.id}), under.uuid)) is under
    tenant_login = _tenant_principal(under)
    page, total = await repository.tenants_visible_to(session, tenant_login, owner_ids=None, name_contains=None,
                                                      order="name", descending=False, offset=0, limit=10)
    assert page == [under] and total == 1
    assert await repository.tenant_visible_to(session, tenant_login, own.uuid) is None
    assert await repository.tenant_visible_to(session, tenant_login, under.uuid) is under
    nobody = _org_principal(other, set())  # a node login with an empty scope sees no tenant, not even its own node's
    assert await repository.tenant_visible_to(session, nobody, elsewhere.uuid) is None
    assert await repository.tenants_visible_to(session, nobody, owner_ids=None, name_contains=None, order="name",
                                               descending=False, offset=0, limit=10) == ([], 0)
    # Narrowed to some owners (a `parent`), never beyond what the login sees.
    page, _ = await repository.tenants_visible_to(session, seen_by_distributor, owner_ids=frozenset({below.id, other.id}),
                                                  name_contains=None, order="name", descending=False, offset=0, limit=10)
    assert page == [under]


async def test_tenant_pages_follow_the_order_then_the_id_and_count_every_match(session: AsyncSession) -> None:
    distributor, _below, _other = await _tree(session)
    made = [await _tenant(session, name, distributor, markup) for name, markup in
            (("Alpha", 5.0), ("Beta", 10.0), ("Gamma", 5.0), ("Delta", 10.0), ("Betty", 1.0))]
    principal = _org_principal(distributor, {distributor.id})

    async def page(offset: int, limit: int, **options: object) -> tuple[list[str], int]:
        options = {"name_contains": None, "order": "markup", "descending": True} | options
        rows, total = await repository.tenants_visible_to(session, principal, owner_ids=None, offset=offset,
                                                          limit=limit, **options)  # type: ignore[arg-type]
        return [t.name for t in rows], total

    # Equal markups keep the order they were created in (the id), so consecutive pages neither skip nor repeat.
    assert await page(0, 2) == (["Beta", "Delta"], 5)
    assert await page(2, 2) == (["Alpha", "Gamma"], 5)
    assert await page(4, 2) == (["Betty"], 5)
    assert await page(10, 2) == ([], 5)  # a page past the end still says how many there are
    assert await page(0, 10, order="name", descending=False) == (["Alpha", "Beta", "Betty", "Delta", "Gamma"], 5)
    # The search ignores case and the total counts every match, not the page.
    assert await page(0, 1, name_contains="bET", order="name", descending=False) == (["Beta"], 2)
    assert len(made) == 5


async def test_a_login_sees_the_logins_of_its_subtree_and_of_its_tenants(session: AsyncSession) -> None:
    distributor, below, other = await _tree(session)
    under, elsewhere = await _tenant(session, "Under", below), await _tenant(session, "Elsewhere", other)
    tag = uuid.uuid4().hex[:8]

    def login(name: str, level: str, *, node: Reseller | None = None, tenant: FusionTenant | None = None) -> FusionUser:
        return FusionUser(username=f"{name}-{tag}", password_hash="x", level=level,
                          reseller_id=node.id if node else None, fusion_tenant_id=tenant.id if tenant else None)

    session.add_all([login("d", "distributor", node=distributor), login("r", "reseller", node=below),
                     login("o", "reseller", node=other), login("t2", "tenant", tenant=under),
                     login("t1", "tenant", tenant=under), login("e", "tenant", tenant=elsewhere)])
    await session.flush()

    async def names(principal: FusionPrincipal, search: str | None = None) -> tuple[list[str], int]:
        rows, total = await repository_accounts.logins_visible_to(session, principal, username_contains=search,
                                                                  offset=0, limit=10)
        return [u.username.removesuffix(f"-{tag}") for u in rows], total

    assert await names(_org_principal(distributor, {distributor.id, below.id})) == (["d", "r", "t1", "t2"], 4)
    assert await names(_org_principal(below, {below.id})) == (["r", "t1", "t2"], 3)
    assert await names(_tenant_principal(under)) == (["t1", "t2"], 2)
    assert await names(_org_principal(distributor, {distributor.id, below.id}), search=f"T1-{tag}".upper()) == (["t1"], 1)
    assert await repository_accounts.username_taken(session, f"D-{tag}".upper())
    assert await repository_accounts.login_by_username(session, f"D-{tag}".upper()) is None


async def test_a_session_comes_with_its_login_and_the_nodes_below_it(session: AsyncSession) -> None:
    distributor, below, _other = await _tree(session)
    tenant = await _tenant(session, "Under", below)
    tag = uuid.uuid4().hex[:8]
    org_login = FusionUser(username=f"d-{tag}", password_hash="x", level="distributor", reseller_id=distributor.id)
    tenant_login = FusionUser(username=f"t-{tag}", password_hash="x", level="tenant", fusion_tenant_id=tenant.id)
    session.add_all([org_login, tenant_login])
    await session.flush()
    expires = utcnow() + timedelta(hours=1)
    org_session = FusionSession(key=str(uuid.uuid4()), user_id=org_login.id, refresh_jti_digest="", expires_at=expires)
    tenant_session = FusionSession(key=str(uuid.uuid4()), user_id=tenant_login.id, refresh_jti_digest="",
                                   expires_at=expires)
    session.add_all([org_session, tenant_session])
    await session.flush()

    row, user, scope = await repository_accounts.session_login_and_scope(session, org_session.key)
    assert row is org_session and user is org_login and scope == {distributor.id, below.id}
    row, user, scope = await repository_accounts.session_login_and_scope(session, tenant_session.key)
    assert row is tenant_session and user is tenant_login and scope == frozenset()
    assert await repository_accounts.session_login_and_scope(session, str(uuid.uuid4())) == (None, None, frozenset())
    assert await repository_accounts.session_and_login(session, tenant_session.key) == (tenant_session, tenant_login)
