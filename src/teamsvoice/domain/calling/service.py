"""Entry points of the calling services that need both the caller's authority and Microsoft."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.db import end_transaction
from teamsvoice.core.errors import NotFound, ValidationFailed
from teamsvoice.core.security import Keyring
from teamsvoice.domain.calling import pbx
from teamsvoice.domain.calling.common import CALLAPP_CONSENT, enterprise_in_scope, require_consents, require_registered, require_service
from teamsvoice.domain.calling.models import PbxLocation
from teamsvoice.domain.inventory import ownership
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal
from teamsvoice.domain.provisioning.service import authorize_provisioning
from teamsvoice.microsoft.ports import Connector, TenantConnection


async def _caller_access(
    session: AsyncSession, principal: Principal, connector: Connector, body: dict[str, Any], tenant_id: str | None
) -> tuple[Enterprise, TenantConnection]:
    """configureUser / configureValetUser: a reseller token needs no MSAL object (spec 001's special case);
    an enterprise token needs one, as every provisioning call."""
    if principal.is_enterprise_level:
        access = await authorize_provisioning(session, principal, connector, body)
        if tenant_id is not None and tenant_id != access.enterprise.tenant_id:
            raise ValidationFailed("tenantID: is not the tenant of this enterprise")
        return access.enterprise, access.connection
    if not tenant_id:
        raise ValidationFailed("tenantID: is required with a reseller token")
    enterprise = await enterprise_in_scope(session, principal, tenant_id=tenant_id)
    return enterprise, connector.connect(require_registered(enterprise))


async def configure_user(
    session: AsyncSession, principal: Principal, connector: Connector, keyring: Keyring,
    body: dict[str, Any], draft: pbx.UserDraft, tenant_id: str | None,
) -> tuple[pbx.ConfiguredUser, PbxLocation]:
    number = pbx.check_user_draft(draft)
    enterprise, connection = await _caller_access(session, principal, connector, body, tenant_id)
    await ownership.require_assignable(session, enterprise.id, number)
    require_service(enterprise, "PBX")
    if draft.kind == "VALET":
        require_service(enterprise, "CALLAPP")
        await require_consents(session, enterprise, (CALLAPP_CONSENT,))
    await end_transaction(session)  # before calling Microsoft
    try:
        microsoft_user = await connection.directory.user(draft.teams_user_id.strip())
    except NotFound as exc:
        raise NotFound(f"teamsUserId: {draft.teams_user_id} is not a user of tenant {enterprise.tenant_id}") from exc
    configured = await pbx.configure_user(session, keyring, enterprise, draft, number, microsoft_user["id"])
    location = await session.get(PbxLocation, configured.user.pbx_location_id)
    assert location is not None
    return configured, location
