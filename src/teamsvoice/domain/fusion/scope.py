"""Scoped resolution of Fusion paths: the tenants and subscriptions a login may see (the path's draas instance is
checked by the API: `api/fusion/deps.check_instance`).

Anything outside the caller's control is "not found", exactly like something that does not exist.
"""

import uuid
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import NotFound
from teamsvoice.core.limits import name_problem, shown
from teamsvoice.domain.fusion import repository
from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.orgs.models import Enterprise, Reseller

_ORG_NAMESPACE = uuid.UUID("0f6a4a63-6c3e-4f55-9b0f-3a1f7c2d9e10")

NO_MS_TENANT = "no_ms_teams_tenant"  # error code: the subscription has no linked MS Teams tenant


@lru_cache(maxsize=4096)
def org_uuid(reseller_id: int) -> str:
    """The stable UUID under which a node of the Reseller tree appears in the Fusion API (a name-based UUID: the
    same for a node forever, so computed once per node: every tenant rendered names its owner's)."""
    return str(uuid.uuid5(_ORG_NAMESPACE, f"reseller:{reseller_id}"))


async def org_in_scope(session: AsyncSession, principal: FusionPrincipal, org: str) -> Reseller | None:
    for reseller_id in principal.reseller_scope:
        if org_uuid(reseller_id) == org:
            return await session.get(Reseller, reseller_id)
    return None


UUID_TEXT = 64  # longer than any tenant's uuid column holds


async def tenant_in_scope(session: AsyncSession, principal: FusionPrincipal, tenant_uuid: str) -> FusionTenant:
    """A tenant the caller sees (`repository.visible_tenants`). Text no tenant's uuid can be (a control character,
    past the column) is not looked up: PostgreSQL refused a NUL there (a 400 naming nothing), SQLite's 404 echoed it."""
    tenant = (await repository.tenant_visible_to(session, principal, tenant_uuid)
              if name_problem(tenant_uuid, UUID_TEXT) is None else None)
    if tenant is None:
        raise NotFound(f"Tenant {shown(tenant_uuid)} not found")
    return tenant


@dataclass(frozen=True)
class SubscriptionAccess:
    """A subscription the caller may act on, with its tenant and the enterprise that backs it."""

    principal: FusionPrincipal
    tenant: FusionTenant
    subscription: FusionSubscription
    enterprise: Enterprise

    @property
    def ms_tenant_id(self) -> str | None:
        """The linked Microsoft tenant (set by the onboarding wizard), or None."""
        return self.enterprise.tenant_id if self.enterprise.registered else None

    def require_ms_tenant(self) -> str:
        if self.ms_tenant_id is None:
            raise NotFound(f"No MS Teams tenant is linked to subscription {self.subscription.id}; run the onboarding "
                           "wizard first", code=NO_MS_TENANT)
        return self.ms_tenant_id

    async def lock(self, session: AsyncSession) -> None:
        """The enterprise locked until commit and read afresh: an unlink and work started in the tenant at the same
        moment (a bulk job, a resource account's change, a sync) wait for each other; each passed its own check
        before (the unlink saw no unfinished job, the job a linked tenant) and both went on."""
        from teamsvoice.domain.orgs.repository import locked_enterprise

        await locked_enterprise(session, self.enterprise.id)

    async def lock_linked(self, session: AsyncSession) -> str:
        """`lock`, then `require_ms_tenant`."""
        await self.lock(session)
        return self.require_ms_tenant()


async def subscription_in_scope(
    session: AsyncSession, principal: FusionPrincipal, tenant_uuid: str, subscription_id: int
) -> SubscriptionAccess:
    tenant = await tenant_in_scope(session, principal, tenant_uuid)
    subscription = await repository.subscription_of_tenant(session, tenant.id, subscription_id)
    if subscription is None:
        raise NotFound(f"Subscription {subscription_id} of tenant {tenant_uuid} not found")
    enterprise = await session.get(Enterprise, subscription.enterprise_id)
    assert enterprise is not None  # FK
    return SubscriptionAccess(principal, tenant, subscription, enterprise)
