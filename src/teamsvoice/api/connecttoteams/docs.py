"""OpenAPI documentation of the ConnecttoTeams family (and of teamsvoice's own /api/teamsvoice/v1, which uses
its tokens and envelopes): the error envelopes, the responses every route shares (`common_responses`, applied
by `api/docs.complete`), the answers of routes that call Microsoft (`MICROSOFT`), and the request and response
models of each route, with examples from the vendor documents (specs 000-003, vendor-notes part 1).

These models document; they never parse. The routes keep their own wire models (`wire.py`, `calling_wire.py`)
and bare-text/JSON readers, so their validation and messages are unchanged.
"""

from typing import Any, Literal

from pydantic import Field

from teamsvoice.api.connecttoteams.wire import ActionItemBody, EnterpriseBody
from teamsvoice.api.docs import Doc, answer, ref, request_body, schema
from teamsvoice.core.limits import Long, Name
from teamsvoice.domain.consent.actions import ACTION_TYPES
from teamsvoice.domain.orgs.service import SERVICES

ActionType = Literal[tuple(ACTION_TYPES)]  # type: ignore[valid-type]
Service = Literal[SERVICES]  # type: ignore[valid-type]
BODY_METHODS = ("post", "put", "patch")


# --- envelopes ------------------------------------------------------------------------------------------------


class SpringError(Doc):
    """ConnecttoTeams error envelope (Spring Boot's)."""

    timestamp: str = Field(examples=["2024-05-01T10:00:00.000Z"])
    status: int = Field(examples=[400])
    error: str = Field(examples=["Bad Request"])
    message: str = Field(examples=["enterpriseName: is required"])
    path: str = Field(examples=["/reseller/newEnterprise"])


class OAuthError(Doc):
    """ConnecttoTeams authentication failure (OAuth 2): a missing, invalid or expired token or client, a bad grant."""

    error: str = Field(examples=["invalid_token"])
    error_description: str = Field(examples=["Invalid access token"])


def _spring(description: str) -> dict[str, Any]:
    return answer(description, SpringError)


def common_responses(path: str, method: str, *, public: bool, body: bool) -> dict[str, dict[str, Any]]:
    """What every route answers beyond its own: validation (400), authentication (401), role (403), scope (404),
    conflicts (409, writes), the request size limit (413, writes and routes taking a body)."""
    body = body or method in BODY_METHODS
    if path == "/oauth/token":
        oauth = {"400": answer("Missing or unsupported grant, wrong username or password (OAuth `invalid_request`, "
                               "`invalid_grant`, `unsupported_grant_type`), or a form field that cannot be "
                               "read",
                               schema(OAuthError, SpringError)),
                 "401": answer("Missing or wrong client id and secret (HTTP Basic)", OAuthError),
                 "413": answer("The request body is larger than the limit", OAuthError),
                 "429": answer("Too many failed logins for this account or address: wait `Retry-After` seconds",
                               OAuthError, headers={"Retry-After": "Seconds to wait"})}
        return oauth
    if path.startswith("/restricted/"):
        return {"400": {"description": "The answer cannot be used (unknown or expired state, Microsoft's error): an "
                                       "HTML page saying why; a malformed request: the Spring envelope",
                        "content": {"text/html": {"schema": {"type": "string"}},
                                    "application/json": {"schema": ref(SpringError)}}},
                **({"413": _spring("The request body is larger than the limit")} if body else {})}
    if public:
        return {}
    answers = {"400": _spring("Invalid request: the message names the field"),
               "401": answer("Missing, invalid or expired token", OAuthError,
                             headers={"WWW-Authenticate": "Bearer error=..., error_description=..."}),
               "403": _spring("The token's login may not use this route (e.g. an enterprise token on a "
               "reseller route)"),
               "404": _spring("Not found, or not in the token's scope")}
    if method != "get":
        answers["409"] = _spring("Conflicts with the current state (e.g. a name taken), or Microsoft refused "
        "the change")
    if body:
        answers["413"] = _spring("The request body is larger than the limit")
    return answers


# Routes that call Microsoft: it may be unavailable for now (503, retry later) or answer wrongly (502).
MICROSOFT: dict[int | str, dict[str, Any]] = {
    502: _spring("Microsoft answered with an error that is not the request's fault"),
    503: _spring("Microsoft is unavailable or throttling for now; retry later"),
}


# --- request bodies -------------------------------------------------------------------------------------------


class NewEnterpriseRequest(EnterpriseBody):
    """POST /reseller/newEnterprise (spec 000 Part I.3): the route's own body model with the fields the vendor
    requires marked so (the service checks them), and `services` as the enum it is."""

    enterpriseName: Name = Field(description="Unique among the reseller's enterprises")
    pbxId: list[Long] = Field(description="PBX type ids (/pbx/getPBXTypesByResellerId); one at least with PBX")
    sbcGateways: list[Long] = Field(description="SBC gateway ids (/reseller/getAvailableSBCGatewayRegionsByResellerId);"
                                                " one at least with PBX or Trunk")
    services: list[Service] = Field(description="Services enabled for the enterprise; CALLAPP needs PBX")


NEW_ENTERPRISE_EXAMPLE = {"enterpriseName": "Contoso", "pbxId": [1234], "sbcGateways": [5678],
                          "services": ["PBX", "CALLAPP"], "allowExternalNumbers": True, "userLimit": 0}


class EditEnterpriseRequest(EnterpriseBody):
    """POST /reseller/editEnterprise: newEnterprise's fields, `enterpriseId` required; only the fields sent change."""

    enterpriseId: Long
    services: list[Service] | None = None


class ActionItemRequest(ActionItemBody):
    """POST /enterprise/getActionItemUrl (spec 000 Part II.1, III.1, IV): the route's body, `actionType` an enum."""

    actionType: ActionType


class MsalObject(Doc):
    """The MSAL authentication result of the enterprise's Global Administrator (enterprise token), or the
    consented-reseller object `{tenantId, resellerId}` (reseller token, spec 001)."""

    authenticationResult: dict[str, Any] | None = Field(default=None, description="`{accessToken, ...}` of "
    "MSAL")
    msalAuthenticationResult: dict[str, Any] | None = None
    tenantId: str | None = None
    resellerId: int | None = None


CONSENTED_RESELLER = {"tenantId": "27b418d0-b197-483d-a0b8-da90407a92c4", "resellerId": 123}


class UpdateUserDetailsRequest(MsalObject):
    userPrincipalName: str | None = Field(default=None, description="Or `teamsUserId`; one is required")
    teamsUserId: str | None = None
    phoneNumber: str | None = Field(default=None, description="E.164; null removes the number")
    voiceRoutingPolicy: str | None = Field(default=None, description="null: Global")


class DirectRoutingRequest(MsalObject):
    sbcGatewayId: int = Field(description="An SBC gateway of the enterprise")


TENANT_ID_TEXT = request_body({"type": "string", "minLength": 1, "description": "The Microsoft tenant id as bare "
                               "text (the vendor's `--data '<tenantId>'`), or as a JSON string"},
                              media="text/plain", example="27b418d0-b197-483d-a0b8-da90407a92c4")
USERNAME_TEXT = request_body({"type": "string", "description": "Optional: the token's own username as bare text"},
                             required=False, media="text/plain", example="myadmin")
MSAL_BODY = request_body(MsalObject, example=CONSENTED_RESELLER)


# --- answers --------------------------------------------------------------------------------------------------


class TokenResponse(Doc):
    access_token: str
    token_type: Literal["bearer"]
    refresh_token: str
    expires_in: int
    scope: str = Field(examples=["read write"])


class AuthenticatedUser(Doc):
    username: str
    type: str = Field(examples=["RESELLER"])
    id: int
    resellerId: int | None
    enterpriseId: int | None = None
    registeredAdmin: bool
    passwordChanged: bool
    passwordChangedOn: str
    email: str | None


AUTHENTICATED_USER_EXAMPLE = {"username": "myadmin", "type": "RESELLER", "id": 456, "resellerId": 123,
                              "registeredAdmin": True, "passwordChanged": True,
                              "passwordChangedOn": "2020-09-08 07:13:39", "email": "abc@def.com"}


class ResellerInfo(Doc):
    resellerId: int
    resellerName: str
    type: str
    masterResellerId: int | None


class SbcGatewayInfo(Doc):
    sbcGatewayId: int
    sbcGatewayRegion: str


class PbxTypeInfo(Doc):
    id: int
    pbxName: str
    pbxLabel: str | None
    isDefault: bool
    isDisabled: bool
    hostingType: str | None


class ConsentInfo(Doc):
    consentName: str = Field(examples=["EnterpriseManagement"])
    tenantId: str
    grantedBy: str | None
    grantedOn: str


class EnterpriseInfo(Doc):
    """The Enterprise object (spec 000/001): with `consentsByEnterprise` and the enterprise's settings."""

    enterpriseId: int
    enterpriseName: str
    resellerId: int
    services: list[str]
    pbxId: list[int]
    sbcGateways: list[int]
    tenantId: str | None
    registered: bool
    consentsByEnterprise: list[ConsentInfo]
    canResellerManageEnterpriseProvisioning: bool | None = None


class EnterpriseCredentials(Doc):
    enterpriseId: int
    entAdminUsername: str
    entAdminSecret: str
    clientID: str
    clientSecret: str


CREDENTIALS_EXAMPLE = {"enterpriseId": 124, "entAdminUsername": "entAdminUsername", "entAdminSecret": "entAdminSecret",
                       "clientID": "clientID", "clientSecret": "clientSecret"}


class RegisteredEnterprise(EnterpriseInfo):
    entAPICredentialInfo: EnterpriseCredentials


class PbxLocationInfo(Doc):
    id: int
    pbxLocation: str
    pbxType: str | None
    canonicalPbxSIPDomain: str
    proxyDomainPort: int
    pbxLabel: str | None = None
    presencePackageType: str | None = None
    callPolicy: dict[str, Any] | None = None


class PbxUserInfo(Doc):
    id: int
    teamsUserId: str
    userType: str | None
    phoneNumber: str
    pbxLocation: str
    pbxLocationId: int
    directRouteId: int = Field(description="-1: no Teams Direct Routing number (CallApp only)")
    pbxUserId: str
    pbxAuthUserId: str
    valet: bool
    changed: bool
    syncRequired: bool


class DirectRouteInfo(Doc):
    directRouteId: int
    enterpriseId: int
    sbcGatewayId: int
    sbcGatewayRegion: str | None
    tenantId: str
    pstnGatewayFqdn: str
    sipSignalingPort: int
    pstnUsage: str
    voiceRoute: str
    numberPattern: str
    voiceRoutingPolicy: str
    provisionedOn: str


class ProvisionedDirectRoute(DirectRouteInfo):
    changes: list[Any]


class SbcRegistrations(Doc):
    sbcAttached: bool
    users: list[dict[str, Any]]
    drift: list[dict[str, Any]] = []
    sbc: Any = None
    reachable: bool | None = None
    message: str | None = None


class UserCallingResult(Doc):
    userPrincipalName: str
    status: str = Field(examples=["UPDATED"], description="UPDATED, UNCHANGED, FAILED, or USER_DELETED (a sync found the user deleted in Microsoft 365: its record freed)")
    changes: list[str] = []
    error: str | None = None


class SyncResults(Doc):
    enterpriseId: int
    results: list[UserCallingResult]
    updated: int
    unchanged: int
    failed: int


class JobAccepted(Doc):
    jobId: str
    type: str
    status: Literal["QUEUED"]
    statusUrl: str


class SyncJobStatus(Doc):
    jobId: str
    type: str
    enterpriseId: int
    status: str
    total: int | None
    processed: int
    counts: dict[str, int]
    results: list[dict[str, Any]]
    error: str | None
    createdOn: str
    finishedOn: str | None


class ReadinessCheck(Doc):
    check: str
    passed: bool
    required: bool
    detail: str | None
    fix: str | None


class Readiness(Doc):
    enterpriseId: int
    tenantId: str | None
    sbcGatewayId: Any
    pstnGatewayFqdn: str | None
    ready: bool
    checks: list[ReadinessCheck]


class TeamsAppTemplateInfo(Doc):
    id: int
    enterpriseId: int
    resellerId: int
    type: str
    appVersion: str = Field(examples=["1.0.3"])
    changed: bool


class ValetServiceAccount(Doc):
    userPrincipalName: str = Field(examples=["callappservice@contoso.onmicrosoft.com"])
    id: str
    created: bool


class SmsNumber(Doc):
    phoneNumber: str
    teamsUserId: str
    source: str
    assigned: bool


class SmsConfig(Doc):
    enterpriseId: int
    smsEnabled: bool
    secureSMSEnabled: bool | None
    smsNumbers: list[SmsNumber]


HTML_PAGE = {"type": "string", "description": "An HTML page for the administrator's browser"}
URL_TEXT = {"type": "string", "format": "uri", "description": "The Microsoft sign-in/consent URL"}
ACTION_URL_EXAMPLE = ("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?response_type=id_token+code"
                      "&client_id=6a8d4d5b-v334-4db2-9715-90h154ac7043&response_mode=form_post&state=...&scope=openid&redirect_uri=https://api.connecttoteams.com/restricted/handleResponse")


def ok(body: dict[str, Any] | type[Doc] | None, description: str = "Success", *, status: int = 200,
       example: Any = None, media: str = "application/json") -> dict[int | str, Any]:
    """A route's `responses=`: its success answer (add route-specific ones with `|`, e.g. `ok(...) | MICROSOFT`)."""
    return {status: answer(description, body, example=example, media=media)}


def ok_list(model: type[Doc], description: str = "Success", example: Any = None) -> dict[int | str, Any]:
    return ok(schema(model, array=True), description, example=example)


# Spec 003 Part III.2's sample body (with a reseller token the MSAL object is not needed: `tenantID` names the
# enterprise).
CONFIGURE_USER_EXAMPLE = {
    "pbxCallPolicyInfo": {"callPolicyCNAM": "TRANSPARENT", "callPolicyName": "Global",
                          "forwardedCallsCallerId": "USER_CALLER_ID"},
    "userType": "Service", "directRouteId": 806, "useTeamsVoicemail": False, "password": "<password>",
    "rePassword": "<password>", "pbxAuthUserId": "104", "pbxLocation": "<pbx location>", "pbxUserId": "104",
    "phoneNumber": "14139301634", "portalLoginName": "", "portalPassword": "",
    "teamsUserId": "user@contoso.com",
    "useEnterpriseDialPlan": True, "tenantID": "<tenant-id>", "loginID": "<ent-admin-id>",
    "sipAutoProvisioningEnabled": False, "useAudioConferenceVRP": False, "userTag": "",
}
# The fields of spec 003 Part III.1's location.
PBX_LOCATION_EXAMPLE = {
    "tenantId": "<tenant-id>", "pbxLocation": "pbxLocation", "pbxType": "Example PBX",
    "canonicalPbxSIPDomain": "pbx.contoso.com", "pbxLabel": "pbxLabel", "proxyDomainPort": 0,
    "presencePackageType": "call-info", "regExpiresValue": 0,
    "callPolicy": {"callPolicyName": "callPolicyName", "callPolicyCNAM": "callPolicyCNAM",
                   "forwardedCallsCallerId": "forwardedCallsCallerId"},
    "apiAccessEnabled": False, "topologyHiding": False, "oldStyleHold": False,
}
