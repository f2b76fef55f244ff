"""Rules for enterprises: creation, editing, registration and their API credentials."""

from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from teamsvoice.core.ids import new_client_id, new_username
from teamsvoice.core.limits import check_name
from teamsvoice.core.security import hash_secret, new_token
from teamsvoice.domain.consent.redirects import check_registration
from teamsvoice.domain.calling import repository as calling_records
from teamsvoice.domain.fusion import licences
from teamsvoice.domain.orgs import repository
from teamsvoice.domain.orgs.auth import revoke_credentials_of_enterprise
from teamsvoice.domain.orgs.models import ApiClient, Enterprise, PortalUser
from teamsvoice.domain.orgs.principal import Principal

SERVICES = ("PBX", "Trunk", "CALLAPP", "CallRecording", "SMS", "CHAT")
CALLING_SERVICES = ("PBX", "Trunk")

# Wire names of the optional enterprise settings, mapped to model attributes.
ENTERPRISE_SETTINGS = {
    "allowExternalNumbers": "allow_external_numbers",
    "billingReferences": "billing_references",
    "canAddExtensions": "can_add_extensions",
    "canResellerManageEnterpriseProvisioning": "can_reseller_manage_enterprise_provisioning",
    "countryName": "country_name",
    "entConfigInfos": "ent_config_infos",
    "federated": "federated",
    "federationDomain": "federation_domain",
    "pbxMOH": "pbx_moh",
    "registeredBy": "registered_by",
    "restrictAdminAccess": "restrict_admin_access",
    "secureSMSEnabled": "secure_sms_enabled",
    "userLimit": "user_limit",
    "userProvisioningEnabled": "user_provisioning_enabled",
}


@dataclass
class EnterpriseDraft:
    """The fields of newEnterprise / editEnterprise that were present in the request."""

    enterprise_name: str | None = None
    reseller_id: int | None = None
    services: list[str] | None = None
    pbx_ids: list[int] | None = None
    sbc_gateway_ids: list[int] | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # model attribute -> value


@dataclass(frozen=True)
class EnterpriseCredentials:
    enterprise_id: int
    username: str
    secret: str
    client_id: str
    client_secret: str


def _own_reseller(principal: Principal) -> int:
    if principal.reseller_id is None or principal.is_enterprise_level:
        raise NotFound("This operation needs a reseller-level token")
    return principal.reseller_id


async def _check_services_and_ids(
    session: AsyncSession, reseller_id: int, services: list[str], pbx_ids: list[int], sbc_ids: list[int],
    kept: Sequence[str] = (),
) -> None:
    """`kept`: services the enterprise has that are not the reseller's to give (a Fusion subscription's customer is
    `DIRECT_ROUTING`): an edit may send them back as the enterprise's read answered them."""
    unknown = [s for s in services if s not in SERVICES and s not in kept]
    if unknown:
        raise ValidationFailed(f"services: unknown service(s) {unknown}; allowed: {list(SERVICES)}")
    if len(set(services)) != len(services):
        raise ValidationFailed("services: a service is listed twice")
    own_pbx = {p.id for p in await repository.pbx_types_for(session, reseller_id) if not p.is_disabled}
    foreign = [i for i in pbx_ids if i not in own_pbx]
    if foreign:
        raise ValidationFailed(f"pbxId: PBX type(s) {foreign} are not available to reseller {reseller_id}")
    own_sbc = {g.id for g in await repository.sbc_gateways_for(session, reseller_id)}
    foreign = [i for i in sbc_ids if i not in own_sbc]
    if foreign:
        raise ValidationFailed(f"sbcGateways: SBC gateway(s) {foreign} are not available to reseller {reseller_id}")
    if "PBX" in services and not pbx_ids:
        raise ValidationFailed("pbxId: the PBX service needs a PBX type")
    if any(s in services for s in CALLING_SERVICES) and not sbc_ids:
        raise ValidationFailed("sbcGateways: calling services (PBX, Trunk) need an SBC gateway")
    if "CALLAPP" in services and "PBX" not in services:
        raise ValidationFailed("services: CALLAPP is an add-on of PBX; add PBX too")


async def create_enterprise(session: AsyncSession, principal: Principal, draft: EnterpriseDraft) -> Enterprise:
    reseller_id = draft.reseller_id or _own_reseller(principal)
    if await repository.get_reseller(session, principal, reseller_id) is None:
        raise NotFound(f"Reseller {reseller_id} not found")
    name = (draft.enterprise_name or "").strip()
    if not name:
        raise ValidationFailed("enterpriseName: must not be empty")
    for wire, value in (("pbxId", draft.pbx_ids), ("sbcGateways", draft.sbc_gateway_ids), ("services", draft.services)):
        if value is None:
            raise ValidationFailed(f"{wire}: is required")
    assert draft.services is not None and draft.pbx_ids is not None and draft.sbc_gateway_ids is not None
    _check_settings(draft)
    await _check_services_and_ids(session, reseller_id, draft.services, draft.pbx_ids, draft.sbc_gateway_ids)
    if await repository.enterprise_name_taken(session, reseller_id, name):
        raise Conflict(f"An enterprise named '{name}' already exists")
    enterprise = Enterprise(
        reseller_id=reseller_id, enterprise_name=name, services=list(draft.services),
        pbx_ids=list(draft.pbx_ids), sbc_gateway_ids=list(draft.sbc_gateway_ids),
    )
    for attribute, value in draft.settings.items():
        setattr(enterprise, attribute, value)
    session.add(enterprise)
    await session.flush()
    return enterprise


def _check_text(wire: str, attribute: str, value: object) -> None:
    """A text the enterprise's column `attribute` holds: no longer than the column, no control characters (SQLite
    stored any, PostgreSQL answered "A value in the request cannot be stored", naming no field)."""
    column_type = Enterprise.__table__.c[attribute].type
    if isinstance(value, str) and isinstance(column_type, String) and column_type.length:
        check_name(wire, value, column_type.length)


def _check_settings(draft: EnterpriseDraft) -> None:
    """The text settings fit their columns; userLimit is the count a Fusion subscription's msTeamsUsers licences keep
    equal: the licences' one rule."""
    for wire, attribute in ENTERPRISE_SETTINGS.items():
        _check_text(wire, attribute, draft.settings.get(attribute))
    if draft.settings.get("user_limit") is not None:
        licences.check_count(draft.settings["user_limit"], "userLimit")


async def _check_still_served(session: AsyncSession, enterprise: Enterprise, services: list[str], pbx_ids: list[int],
                              sbc_ids: list[int], user_limit: int | None) -> None:
    """An edit may not take away what the enterprise's PBX connector records use (each was accepted, and the
    records went on being synced onto a gateway the enterprise no longer had): a calling service while PBX users
    exist, CALLAPP while CallApp users do, a PBX type a location uses, an SBC gateway a direct route uses, a user
    limit below the users it has."""
    users = await calling_records.pbx_users_of(session, enterprise.id)
    kinds = {user.kind for user in users}
    if "PBX" in kinds and not any(s in services for s in CALLING_SERVICES):
        raise Conflict(f"services: the enterprise has PBX users; keep a calling service {list(CALLING_SERVICES)} "
                       "or remove them first")
    if "VALET" in kinds and "CALLAPP" not in services:
        raise Conflict("services: the enterprise has CallApp users; keep CALLAPP or remove them first")
    for location in await calling_records.locations_of(session, enterprise.id):
        if location.pbx_type_id not in pbx_ids:
            raise Conflict(f"pbxId: PBX location '{location.pbx_location}' uses PBX type {location.pbx_type_id}; "
                           "keep it or change the location first")
    for route in await calling_records.routes_of(session, enterprise.id):
        if route.sbc_gateway_id not in sbc_ids:
            raise Conflict(f"sbcGateways: direct route {route.id} uses SBC gateway {route.sbc_gateway_id}; keep it "
                           "or remove the route's users first")
    if user_limit and user_limit < len(users):
        raise Conflict(f"userLimit: the enterprise has {len(users)} PBX users, more than {user_limit}")


async def edit_enterprise(session: AsyncSession, principal: Principal, enterprise_id: int, draft: EnterpriseDraft) -> Enterprise:
    enterprise = await repository.get_enterprise(session, principal, enterprise_id)
    if enterprise is None or principal.is_enterprise_level:
        raise NotFound(f"Enterprise {enterprise_id} not found")
    if draft.reseller_id is not None and draft.reseller_id != enterprise.reseller_id:
        raise ValidationFailed("resellerId: an enterprise cannot move to another reseller")
    if draft.enterprise_name is not None:
        name = draft.enterprise_name.strip()
        if not name:
            raise ValidationFailed("enterpriseName: must not be empty")
        if await repository.enterprise_name_taken(session, enterprise.reseller_id, name, except_id=enterprise.id):
            raise Conflict(f"An enterprise named '{name}' already exists")
        enterprise.enterprise_name = name
    services = draft.services if draft.services is not None else enterprise.services
    pbx_ids = draft.pbx_ids if draft.pbx_ids is not None else enterprise.pbx_ids
    sbc_ids = draft.sbc_gateway_ids if draft.sbc_gateway_ids is not None else enterprise.sbc_gateway_ids
    await _check_services_and_ids(session, enterprise.reseller_id, services, pbx_ids, sbc_ids, kept=enterprise.services)
    _check_settings(draft)
    await _check_still_served(session, enterprise, services, pbx_ids, sbc_ids, draft.settings.get("user_limit"))
    if draft.settings.get("user_limit") is not None:  # the msTeamsUsers licences of a Fusion subscription it backs
        await licences.keep_user_limit_equal(session, enterprise.id, draft.settings["user_limit"])
    enterprise.services, enterprise.pbx_ids, enterprise.sbc_gateway_ids = list(services), list(pbx_ids), list(sbc_ids)
    for attribute, value in draft.settings.items():
        setattr(enterprise, attribute, value)
    await session.flush()
    return enterprise


async def _new_credentials(session: AsyncSession, enterprise: Enterprise) -> EnterpriseCredentials:
    await revoke_credentials_of_enterprise(session, enterprise.id)
    username, secret = new_username(f"ent{enterprise.id}-admin"), new_token(18)
    client_id, client_secret = new_client_id(), new_token(24)
    session.add(PortalUser(username=username, password_hash=hash_secret(secret), user_type="ENTERPRISE",
                           reseller_id=enterprise.reseller_id, enterprise_id=enterprise.id))
    session.add(ApiClient(client_id=client_id, secret_hash=hash_secret(client_secret), enterprise_id=enterprise.id))
    await session.flush()
    return EnterpriseCredentials(enterprise.id, username, secret, client_id, client_secret)


def tenant_id_of(field: str, value: str) -> str:
    """A Microsoft tenant id as a caller names one (in `field`), in the form teamsvoice keeps and compares: as
    Microsoft writes it (its tokens' `tid`, its sign-in issuers, so every stored one), in lower case. A tenant id is a
    GUID, which Microsoft reads in any case: "27B418D0-..." names the tenant of "27b418d0-..." (compared as sent, it
    answered 404). Applied where a tenant id enters (the ConnecttoTeams wire's `TenantId`, the consented-reseller
    object); text no tenant id can be (a control character, past a name's length) is a 400 naming `field`."""
    return check_name(field, value).lower()


async def complete_registration(
    session: AsyncSession, principal: Principal, *, enterprise_id: int, tenant_id: str,
    given_name: str | None, family_name: str | None,
) -> tuple[Enterprise, EnterpriseCredentials]:
    _check_text("givenName", "admin_given_name", given_name)
    _check_text("familyName", "admin_family_name", family_name)
    enterprise = await repository.get_enterprise(session, principal, enterprise_id)
    if enterprise is None or principal.is_enterprise_level:
        raise NotFound(f"Enterprise {enterprise_id} not found")
    if enterprise.tenant_id is None:
        raise PreconditionFailed(
            "The enterprise's Global Administrator has not completed the REGISTRATION consent yet"
        )
    if enterprise.tenant_id != tenant_id:
        raise ValidationFailed(f"tenantId: does not match the tenant that registered enterprise {enterprise_id}")
    if enterprise.registered or not await repository.claim_registration(session, enterprise):
        # (the claim: four calls at the same moment all read it unregistered, and each got its own credentials)
        raise Conflict("Registration is already complete; use /enterprise/regenerateAPICredentials for new credentials")
    enterprise.admin_given_name, enterprise.admin_family_name = given_name, family_name
    return enterprise, await _new_credentials(session, enterprise)


async def regenerate_credentials(session: AsyncSession, principal: Principal, tenant_id: str) -> EnterpriseCredentials:
    enterprise = await repository.get_enterprise_by_tenant(session, principal, tenant_id)
    if enterprise is None or principal.is_enterprise_level:
        raise NotFound(f"No enterprise of yours is linked to tenant {tenant_id}")
    if not enterprise.registered:
        raise PreconditionFailed("The enterprise registration is not complete; call completeEnterpriseRegistration first")
    # Locked before the old credentials are read: four calls at once each revoked only those issued before it
    # read them, and all four answered sets worked (spec 001: each call invalidates the previous credentials).
    locked = await repository.locked_enterprise(session, enterprise.id)
    assert locked is not None
    return await _new_credentials(session, locked)


async def enterprise_for_tenant(session: AsyncSession, principal: Principal, tenant_id: str) -> Enterprise:
    enterprise = await repository.get_enterprise_by_tenant(session, principal, tenant_id)
    if enterprise is None:
        raise NotFound(f"No enterprise of yours is linked to tenant {tenant_id}")
    return enterprise


async def register_redirect_url(session: AsyncSession, reseller_id: int, url: str) -> list[str]:
    """Operator action (CLI): allow consent webhooks to `url`'s origin, at or below its path
    (see domain/consent/redirects.py for the matching rules)."""
    url = check_registration(url)
    reseller = await repository.locked_reseller(session, reseller_id)  # (four at once kept only the last URL)
    if reseller is None:
        raise NotFound(f"Reseller {reseller_id} not found")
    if url not in (reseller.registered_redirect_urls or []):
        reseller.registered_redirect_urls = [*(reseller.registered_redirect_urls or []), url]
    return list(reseller.registered_redirect_urls)
