"""ConnecttoTeams wire schemas and renderers (field names exactly as the vendor's documents)."""

from typing import Annotated, Any

from fastapi import Request
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr,
                      ValidationInfo)

from teamsvoice.core.errors import NotFound, ValidationFailed
from teamsvoice.core.limits import INTEGER_MAX, Long, Name, check_name, is_digits, name_problem, parse_json, shown
from teamsvoice.domain.consent.models import EnterpriseConsent
from teamsvoice.domain.orgs.models import Enterprise, PbxType, PortalUser, Reseller, SbcGateway
from teamsvoice.domain.orgs.service import ENTERPRISE_SETTINGS, EnterpriseCredentials, EnterpriseDraft, tenant_id_of


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


# --- ids ------------------------------------------------------------------------------------------------
# Our rows' ids are INTEGER columns. An id past that range (2147483648, 99999999999999999999) is the id of no row:
# it is answered as an id that does not exist, the family's 404, before any query. PostgreSQL refused to compare it
# with the column (a 400 naming no field) where SQLite found nothing (404), and one past 64 bits was SQLite's
# driver's 400. Every id the family's requests name goes through `row_id`: the `Id` type for a path, a query or a
# body model's field, `body_id` for a hand-parsed body.
INTEGER_MIN = -INTEGER_MAX - 1


def row_id(field: str | None, value: int) -> int:
    """`value` when a row may have it as its id; otherwise the 404 of an id that does not exist (naming `field`)."""
    if not INTEGER_MIN <= value <= INTEGER_MAX:
        text = str(value) if value.bit_length() <= 256 else "a number of over 70 digits"  # (str() fails past 4300)
        raise NotFound(f"{f'{field}: ' if field else ''}{text} not found (no id is that large)")
    return value


def _id_text(value: object, info: ValidationInfo) -> object:
    """A path's or a query's id: ASCII digits, after a minus for a negative one (pydantic's own reading of text took
    "1_0" as 10, "1.0" as 1 and " 3" as 3). A body's (a strict model's) is left to its strict integer check."""
    if not isinstance(value, str) or (info.config or {}).get("strict"):
        return value
    digits = value.removeprefix("-")
    if not is_digits(digits):
        raise ValueError("Input should be a whole number (ASCII digits)")
    if len(digits.lstrip("0")) > 20:  # (past any id, and int() refuses text of over 4300 digits)
        raise NotFound(f"{shown(value)} not found (no id is that large)")
    return int(value)


def _id_rule(value: int, info: ValidationInfo) -> int:
    return row_id(info.field_name, value)  # (a path's or a query's parameter has no name here: the answer's path shows it)


# An id as the family's requests name one: any integer (strict in a body; a path's or a query's ASCII digits), one
# past the range of our ids answered 404 by `row_id` (a DomainError raised while the request is read).
Id = Annotated[int, BeforeValidator(_id_text), AfterValidator(_id_rule)]


def _job_key_rule(value: str) -> str:
    if name_problem(value, JOB_KEY_LENGTH):
        raise NotFound(f"Job {shown(value)} not found")
    return value


# A calling job's key (`CallingJob.job_key`, a UUID) as a path names it: text that no key can be (longer than a key,
# a control character) is the 404 of a job that does not exist. PostgreSQL refused a NUL (a 400 naming nothing)
# where SQLite found nothing.
JOB_KEY_LENGTH = 36
JobKey = Annotated[str, AfterValidator(_job_key_rule)]


def body_id(body: dict[str, Any], field: str) -> Any:
    """`body[field]` as it came (the domain checks its type and names the field), except that an integer past the
    range of our ids is answered as `row_id` answers it."""
    value = body.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        row_id(field, value)
    return value


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
    enterpriseId: StrictInt | None = None  # editEnterprise's row: `row_id` there (newEnterprise does not read it)
    enterpriseName: Name | None = None
    federated: StrictBool | None = None
    federationDomain: StrictStr | None = None
    pbxId: list[Long] | None = None
    pbxMOH: StrictBool | None = None
    registeredBy: StrictStr | None = None
    resellerId: Id | None = None
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


def _tenant_id_rule(value: str, info: ValidationInfo) -> str:
    return tenant_id_of(info.field_name or "tenantId", value)


# A Microsoft tenant id as the family's requests name one (`tenantId`, `tenantID`): any case, read as Microsoft writes
# it (`orgs.service.tenant_id_of`: lower case); a bare-text body's through `tenant_id_text`.
TenantId = Annotated[StrictStr, AfterValidator(_tenant_id_rule)]


class ActionItemBody(Strict):
    actionType: StrictStr
    enterpriseName: Name
    redirectUrl: StrictStr
    consentType: StrictStr | None = None
    enterpriseId: Id | None = Field(default=None, description="teamsvoice: which enterprise, when enterprises of "
                                      "two resellers in the caller's scope share `enterpriseName`")


class CompleteRegistrationBody(Strict):
    enterpriseId: Id
    tenantId: TenantId
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


async def tenant_id_text(request: Request) -> str:
    """A body that is the tenantId (bare text or a JSON string, `bare_text`), read as `TenantId` reads one."""
    return tenant_id_of("tenantId", await bare_text(request, "tenantId"))


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
