"""Shared rules of the calling services: which enterprise a caller names, and what it must have."""

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import NotFound, PreconditionFailed, ValidationFailed
from teamsvoice.domain.consent.repository import consents_of
from teamsvoice.domain.orgs import repository
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal

CALLAPP_CONSENT = "CallApp"
# Vendor-notes 1.9: MANDATORY for calling services (PBX connector, CallApp, Call Recording).
CALLING_CONSENTS = ("UserSync", "Presence")
CONSENT_ACTIONS = {"UserSync": "GET_USER_SYNC_CONSENT", "Presence": "GET_PRESENCE_CONSENT",
                   CALLAPP_CONSENT: "GET_CALL_APP_CONSENT"}


async def enterprise_in_scope(
    session: AsyncSession, principal: Principal, *, enterprise_id: int | None = None, tenant_id: str | None = None
) -> Enterprise:
    if enterprise_id is not None:
        enterprise = await repository.get_enterprise(session, principal, enterprise_id)
        if enterprise is None:
            raise NotFound(f"Enterprise {enterprise_id} not found")
        if tenant_id is not None and enterprise.tenant_id != tenant_id:
            raise ValidationFailed(f"tenantId: enterprise {enterprise_id} is not linked to tenant {tenant_id}")
        return enterprise
    if tenant_id is None:
        raise ValidationFailed("tenantId: is required")
    enterprise = await repository.get_enterprise_by_tenant(session, principal, tenant_id)
    if enterprise is None:
        raise NotFound(f"No enterprise of yours is linked to tenant {tenant_id}")
    return enterprise


def require_service(enterprise: Enterprise, *services: str) -> None:
    if not any(s in enterprise.services for s in services):
        raise PreconditionFailed(
            f"Enterprise {enterprise.id} does not have the {' or '.join(services)} service; add it with /reseller/editEnterprise"
        )


def require_registered(enterprise: Enterprise) -> str:
    if enterprise.tenant_id is None:
        raise PreconditionFailed(f"Enterprise {enterprise.id} is not registered to a Microsoft tenant yet")
    return enterprise.tenant_id


async def missing_consents(session: AsyncSession, enterprise: Enterprise, names: tuple[str, ...]) -> list[str]:
    granted = {c.consent_name for c in await consents_of(session, enterprise.id)}
    return [name for name in names if name not in granted]


async def require_consents(session: AsyncSession, enterprise: Enterprise, names: tuple[str, ...]) -> None:
    missing = await missing_consents(session, enterprise, names)
    if missing:
        actions = ", ".join(f"{name} (actionType {CONSENT_ACTIONS.get(name, '?')})" for name in missing)
        raise PreconditionFailed(f"The enterprise's Global Administrator has not granted the consent(s): {actions}")
