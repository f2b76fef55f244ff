"""ConnecttoTeams wire schemas and renderers (field names exactly as the vendor's documents)."""

from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.limits import Long, Name, check_name, parse_json
from teamsvoice.domain.consent.models import EnterpriseConsent
from teamsvoice.domain.orgs.models import Enterprise, PbxType, PortalUser, Reseller, SbcGateway
from teamsvoice.domain.orgs.service import ENTERPRISE_SETTINGS, EnterpriseCredentials, EnterpriseDraft


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class ConfigDetails(Strict):
    contexts: StrictStr | None = None
    defValue: StrictStr | None = None
    ent: StrictBool | None = None
    id: Long | None = None
    labelName: StrictStr | None = None
    labelPopover: StrictStr | None = None
    masterReseller: StrictBool | None = None
    name: StrictStr | None = None
    partner: StrictBool | None = None
    reseller: StrictBool | None = None
    system: StrictBool | None = None
    type: StrictStr | None = None


class EntConfigInfo(Strict):
    configDetails: ConfigDetails | None = None
    entityId: Long | None = None
    id: Long | None = None
    value: StrictStr | None = None


class EnterpriseBody(Strict):
    """The body of /reseller/newEnterprise (and of /reseller/editEnterprise, where enterpriseId is required)."""

    allowExternalNumbers: StrictBool | None = None
    billingReferences: list[StrictStr] | None = None
    canAddExtensions: StrictBool | None = None
    canResellerManageEnterpriseProvisioning: StrictBool | None = None
    countryName: StrictStr | None = None
    entConfigInfos: list[EntConfigInfo] | None = None
    enterpriseId: Long | None = None
    enterpriseName: Name | None = None
    federated: StrictBool | None = None
    federationDomain: StrictStr | None = None
    pbxId: list[Long] | None = None
    pbxMOH: StrictBool | None = None
    registeredBy: StrictStr | None = None
    resellerId: Long | None = None
    restrictAdminAccess: StrictBool | None = None
    sbcGateways: list[Long] | None = None
    secureSMSEnabled: StrictBool | None = None
    services: list[StrictStr] | None = None
    userLimit: Long | None = Field(default=None, ge=0)
    userProvisioningEnabled: StrictBool | None = None

    def to_draft(self) -> EnterpriseDraft:
        present = self.model_fields_set
        settings: dict[str, Any] = {}
        for wire, attribute in ENTERPRISE_SETTINGS.items():
            if wire in present and getattr(self, wire) is not None:
                value = getattr(self, wire)
                if wire == "entConfigInfos":
                    value = [info.model_dump(exclude_none=True) for info in value]
                settings[attribute] = value
        return EnterpriseDraft(
            enterprise_name=self.enterpriseName, reseller_id=self.resellerId if self.resellerId else None,
            services=self.services, pbx_ids=self.pbxId, sbc_gateway_ids=self.sbcGateways, settings=settings,
        )


class ActionItemBody(Strict):
    actionType: StrictStr
    enterpriseName: Name
    redirectUrl: StrictStr
    consentType: StrictStr | None = None
    enterpriseId: Long | None = Field(default=None, description="teamsvoice: which enterprise, when enterprises of "
                                      "two resellers in the caller's scope share `enterpriseName`")


class CompleteRegistrationBody(Strict):
    enterpriseId: Long
    tenantId: StrictStr
    givenName: StrictStr | None = None
    familyName: StrictStr | None = None


async def bare_text(request: Request, field: str) -> str:
    """The seeds send bare text (`--data '<tenantId>'`) even as application/json: accept that and a JSON string."""
    raw = (await request.body()).decode("utf-8", errors="replace").strip()
    if raw.startswith(("\"", "{", "[")):
        value = parse_json(raw)
        if isinstance(value, dict) and isinstance(value.get(field), str):
            value = value[field]
        if not isinstance(value, str):
            raise ValidationFailed(f"{field}: expected a string body")
        raw = value.strip()
    if not raw:
        raise ValidationFailed(f"{field}: the request body must be the {field}")
    return check_name(field, raw)  # (a NUL was PostgreSQL's 400 naming no field, SQLite's 404)


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise ValidationFailed("The request body must be a JSON object")
    return value


def render_enterprise(enterprise: Enterprise, consents: list[EnterpriseConsent]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "enterpriseId": enterprise.id,
        "enterpriseName": enterprise.enterprise_name,
        "resellerId": enterprise.reseller_id,
        "services": enterprise.services,
        "pbxId": enterprise.pbx_ids,
        "sbcGateways": enterprise.sbc_gateway_ids,
        "tenantId": enterprise.tenant_id,
        "registered": enterprise.registered,
        "consentsByEnterprise": [
            {"consentName": c.consent_name, "tenantId": c.tenant_id, "grantedBy": c.granted_by,
             "grantedOn": c.granted_at.strftime("%Y-%m-%d %H:%M:%S")}
            for c in consents
        ],
    }
    for wire, attribute in ENTERPRISE_SETTINGS.items():
        body[wire] = getattr(enterprise, attribute)
    return body


def render_credentials(credentials: EnterpriseCredentials) -> dict[str, Any]:
    return {
        "enterpriseId": credentials.enterprise_id,
        "entAdminUsername": credentials.username,
        "entAdminSecret": credentials.secret,
        "clientID": credentials.client_id,
        "clientSecret": credentials.client_secret,
    }


def render_user(user: PortalUser) -> dict[str, Any]:
    return {
        "username": user.username,
        "type": user.user_type,
        "id": user.id,
        "resellerId": user.reseller_id,
        "enterpriseId": user.enterprise_id,
        "registeredAdmin": True,
        "passwordChanged": True,
        "passwordChangedOn": user.password_changed_on.strftime("%Y-%m-%d %H:%M:%S"),
        "email": user.email,
    }


def render_reseller(reseller: Reseller) -> dict[str, Any]:
    return {"resellerId": reseller.id, "resellerName": reseller.name, "type": reseller.level,
            "masterResellerId": reseller.parent_id}


def render_sbc_gateway(gateway: SbcGateway) -> dict[str, Any]:
    return {"sbcGatewayId": gateway.id, "sbcGatewayRegion": gateway.region}


def render_pbx_type(pbx: PbxType) -> dict[str, Any]:
    return {"id": pbx.id, "pbxName": pbx.pbx_name, "pbxLabel": pbx.pbx_label, "isDefault": pbx.is_default,
            "isDisabled": pbx.is_disabled, "hostingType": pbx.hosting_type}
