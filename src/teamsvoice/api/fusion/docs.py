"""OpenAPI documentation of the Fusion family: its error envelopes, the responses every route shares
(`common_responses`, applied by `api/docs.complete`), the answers of routes that call Microsoft (`MICROSOFT`) or
that teamsvoice does not implement (`NOT_IMPLEMENTED`), and the request and response models of each route, with
examples from spec 004 and vendor-notes part 2.

These models document; they never parse. Routes that read their body themselves (or take `Any`) keep their own
checks and messages (see `errors.py` for the statuses); the models here only describe them.
"""

from typing import Any, Literal

from pydantic import Field

from teamsvoice.api.docs import FUSION_BEARER, Closed, Doc, answer, schema

BODY_METHODS = ("post", "put", "patch")
AUTH = "/api/v01/auth/"
LOGIN = AUTH + "login"


# --- envelopes ------------------------------------------------------------------------------------------------


class FusionErrorReason(Doc):
    code: int = Field(description="Stable error code (docs/fusion-errors.md)", examples=[1000])
    reason: str = Field(examples=["name: is required"])


class FusionError(Doc):
    """Fusion error envelope."""

    error: FusionErrorReason


class FusionAuthError(Doc):
    """APIO core's answer to a missing, invalid or expired token: a bare reason (the portal then refreshes)."""

    error: str = Field(examples=["Missing bearer token (Authorization: Bearer <access_token>)"])


def _error(description: str) -> dict[str, Any]:
    return answer(description, FusionError)


def common_responses(path: str, method: str, *, public: bool, body: bool) -> dict[str, dict[str, Any]]:
    """What every route answers beyond its own (the statuses of `errors.ERROR_STATUSES`): 400 "Error while ...",
    401, 403, 404, and 413 for a body over the limit. Fusion has no 409: a conflict is a 400 with its own code."""
    too_large = {"413": _error("The request body is larger than the limit")} if body or method in BODY_METHODS \
        else {}
    if path == LOGIN:
        return {"400": _error("Invalid request: the reason names the field"),
                "401": answer("Wrong username or password", FusionAuthError),
                "429": answer("Too many failed logins for this account or address: wait `Retry-After` seconds",
                              FusionError, headers={"Retry-After": "Seconds to wait"}), **too_large}
    if public:
        return too_large
    if path.startswith(AUTH):  # the session routes: no role, no path object
        return {"400": _error("Invalid request"),
                "401": answer("Missing, invalid or expired token", FusionAuthError,
                              headers={"WWW-Authenticate": "Bearer"})}
    return {"400": _error("Error while processing the request: the reason names the field or the problem"),
            "401": answer("Missing, invalid or expired access token", FusionAuthError,
                          headers={"WWW-Authenticate": "Bearer"}),
            "403": _error("The API consumer doesn't have sufficient rights to perform this action"),
            "404": _error("Not found, or the path tenant / subscription doesn't exist (or is not yours)"), **too_large}


MICROSOFT: dict[int | str, dict[str, Any]] = {
    502: _error("Microsoft answered with an error that is not the request's fault"),
    503: _error("Microsoft is unavailable or throttling for now; retry later"),
}
NOT_IMPLEMENTED: dict[int | str, dict[str, Any]] = {
    501: _error("Not implemented by teamsvoice (code 1501); the reason says what"),
}


def ok(body: dict[str, Any] | type[Doc] | None, description: str = "Success", *, status: int = 200,
       example: Any = None, media: str = "application/json") -> dict[int | str, Any]:
    """A route's `responses=`: its success answer (add route-specific ones with `|`, e.g. `ok(...) | MICROSOFT`)."""
    return {status: answer(description, body, example=example, media=media)}


NO_CONTENT = {204: {"description": "Done; no body"}}
# `openapi_extra` of a route that works with or without a token (logout: without one there is no session to end).
TOKEN_OPTIONAL: dict[str, Any] = {"security": [{FUSION_BEARER: []}, {}]}


def error_or(model: type[Doc], description: str) -> dict[int | str, Any]:
    """A 400 that answers either the route's own body (a bulk with no success, a failed wizard) or the envelope."""
    return {400: answer(description, schema(model, FusionError))}


# --- paging and small shapes --------------------------------------------------------------------------------


class Paged(Doc):
    page: int
    pages: int
    results: int
    next: str | None = Field(default=None, description="Present while more remain: send it back with the same "
                                                       "page_size and search")


class Tokens(Doc):
    access_token: str
    refresh_token: str


class AccessToken(Doc):
    access_token: str
    refresh_token: str | None = Field(default=None, description="Only when the one sent has less than a day "
    "left")


class Empty(Doc):
    pass


class IdOnly(Doc):
    id: int


class OwnerInfo(Doc):
    type: str = Field(examples=["reseller"])
    uuid: str
    name: str | None


class Tenant(Doc):
    uuid: str
    name: str
    billingId: str | None
    markup: float | None
    owner: OwnerInfo | None = None
    isDirectTenant: bool | None = None


class TenantList(Paged):
    tenants: list[Tenant]


class TenantUuid(Doc):
    uuid: str


class Licences(Doc):
    msTeamsUsers: int
    sipTrunkChannels: int


class Subscription(Doc):
    id: int
    name: str
    billingId: str | None
    licenses: Licences


class SubscriptionList(Paged):
    subscriptions: list[Subscription]


class SubscriptionDetail(Subscription):
    numberOfUsers: int
    numberOfTrunkgroups: int
    phoneNumbers: dict[str, int]
    isDeletable: bool
    msteamsAdmin: dict[str, Any] | None = None
    msteamsTenant: dict[str, Any] | None = None


class Number(Doc):
    id: int
    assigned: bool
    isoCode: str | None
    countryCode: str = Field(examples=["+32"])
    fullNumber: str = Field(examples=["+3222100100"])
    nsn: str
    numberType: str | None
    source: str | None
    assignedTo: dict[str, Any] | None = None
    freeOn: str | None = Field(None, description="Only for a number in quarantine: when it ends (ISO 8601, UTC)")


class NumberList(Paged):
    numbers: list[Number]


class FreeNumbers(Paged):
    freeNumbers: list[str] = Field(examples=[["+3222100100", "+3222100101"]])


class NumbersAdded(Doc):
    added: int
    numbers: list[Number]


class NumbersDeleted(Doc):
    deleted: list[str] = Field(description="The numbers removed (E.164)")


class AddNumbersRequest(Closed):
    """Either `ranges` or `numbers`; all or nothing; at most 10,000 numbers per request."""

    countryCode: str | int = Field(description="The calling code, e.g. \"+32\"")
    isoCode: str | None = Field(default=None, description="ISO 3166 alpha-2: every number must be of this "
    "country")
    ranges: list[list[str | int]] | None = Field(default=None, description="[[rangeStart, rangeEnd], ...] "
    "(NSNs: integers, or strings of digits, which keep a leading zero)")
    numbers: list[str | int] | None = Field(default=None, description="National significant numbers")


class LicenceCount(Closed):
    assigned: int = Field(ge=0, description="0: no limit")


class LicencesUpdateRequest(Closed):
    """One or both counts."""

    msTeamsUsers: LicenceCount | None = None
    sipTrunkChannels: LicenceCount | None = None


class LicencesInUse(Doc):
    msTeamsUsers: dict[str, int] = Field(examples=[{"assigned": 10, "inUse": 3}])
    sipTrunkChannels: dict[str, int] = Field(examples=[{"assigned": 0}])


# --- MS Teams tenant ------------------------------------------------------------------------------------------


class TenantStatus(Doc):
    msTenantId: str | None
    mode: str = Field(examples=["direct_routing"])
    status: str = Field(description="onboarded | not_initiated | already_linked | wizard_<STEP>_<OK|ERROR>")
    msApplicationId: str | None = None
    powershell: dict[str, bool]
    msGraph: dict[str, bool]
    domain: dict[str, Any] | None = None


STATUS_EXAMPLE = {"msTenantId": "27b418d0-b197-483d-a0b8-da90407a92c4", "mode": "direct_routing",
                  "msApplicationId": "cdfd967f-6a92-4234-808a-5dd2047dc61a", "status": "onboarded",
                  "powershell": {"active": True}, "msGraph": {"active": True},
                  "domain": {"name": "netaxis-dev.teams.cloudnettest.services", "verified": True}}


class MsTeamsAdmin(Doc):
    id: int
    msUsername: str


class WizardStep(Doc):
    step: int
    text: str
    executed: bool
    ok: bool | None
    detail: Any = None


class Wizard(Doc):
    running: bool
    wizardSteps: list[WizardStep]
    id: int | None = None
    status: str | None = None
    error: Any = None
    consentUrl: str | None = None


class Unlinked(Doc):
    msTenantId: str | None


class VerifiedDomains(Doc):
    verifiedDomains: list[str] = Field(examples=[["netaxis-dev.teams.cloudnettest.services"]])


class TenantLicence(Doc):
    free: int
    skuDescription: str
    skuId: str
    skuPartNumber: str
    total: int


class TenantLicences(Doc):
    licenses: list[TenantLicence]


LICENCES_EXAMPLE = {"licenses": [{"free": 9998, "skuDescription": "Microsoft Flow Free",
                                  "skuId": "f30db892-07e9-47e9-837c-80727f46fd3d",
                                  "skuPartNumber": "FLOW_FREE",
                                  "total": 10000}]}


class Vrps(Doc):
    results: list[dict[str, str]] = Field(
        examples=[[{"description": "World-DRaaS", "identity": "World-DRaaS"}]])


class Group(Doc):
    id: str
    displayName: str | None
    description: str | None = None
    filter: bool | None = None
    teamsEnabled: bool | None = None
    orphan: bool | None = None


class Groups(Doc):
    groups: list[Group]


class GroupFilterEntry(Closed):
    """`{id, displayName}`, or an entry of `GET msteams/groups` as it is (its other fields are ignored)."""

    id: str
    displayName: str
    description: str | None = None
    filter: bool | None = None
    teamsEnabled: bool | None = None
    orphan: bool | None = None


class GroupFilterRequest(Closed):
    groups: list[GroupFilterEntry]


GROUP_FILTER_EXAMPLE = {
    "groups": [{"id": "444ce848-8b9b-4d14-8e99-90ee50ea150b", "displayName": "Group Test"}]
}


# --- MS Teams users -------------------------------------------------------------------------------------------


class MsTeamsUser(Doc):
    msTeams: dict[str, Any] = Field(description="MS Teams user properties (id, userPrincipalName, displayName, "
                                                "location, licenses, roles when the user holds directory roles, "
                                                "voiceEnabled; one user read alone also groups and vrp)")
    draas: dict[str, Any] | None = Field(default=None, description="Fusion data when voice enabled with a "
    "number")


USER_EXAMPLE = {"msTeams": {"id": "2da785f7-3454-4bfe-9f30-4f368eb9db58",
                            "userPrincipalName": "thomas.anderson@netaxisdev.onmicrosoft.com",
                            "displayName": "Thomas Anderson", "location": "NL",
                            "licenses": [{"skuId": "18181a46-0d4e-45cd-891e-60aabd171b4e",
                                          "skuPartNumber": "STANDARDPACK"}],
                            "voiceEnabled": "yes", "vrp": "World-DRaaS"},
                "draas": {"id": 11, "customerLicenses": ["test-sku"], "numberId": 441,
                          "phoneNumber": "+31302861233", "status": "active"}}


class MsTeamsUsers(Doc):
    users: list[MsTeamsUser]
    next: str | None = None


class CreateUserRequest(Doc):
    displayName: str
    domain: str
    username: str = Field(description="With `domain`, forms the UPN username@domain")
    location: str = Field(description="ISO 3166 alpha-2")
    customerLicenses: list[str] | None = None


CREATE_USER_EXAMPLE = {"displayName": "Thomas Anderson", "domain": "netaxissolutions.onmicrosoft.com",
                       "username": "ThomasA", "location": "NL", "customerLicenses": ["test-sku"]}


class CreatedUser(Doc):
    msTeamsId: str = Field(examples=["645474c6-57f2-47b0-b824-1b591cc6873a"])


class VoiceEnabled(Doc):
    voiceEnabled: bool


class UpdateUserRequest(Closed):
    displayName: str | None = None
    location: str | None = Field(default=None, description="ISO 3166 alpha-2")
    phoneNumber: str | None = Field(default=None, description="A free number of the subscription; null disables "
                                                              "voice and frees the number")
    groups: list[str] | None = None
    vrp: str | None = None
    licenses: list[str] | None = None
    customerLicenses: list[str] | None = None


UPDATE_USER_EXAMPLE = {"displayName": "John Doe", "location": "NL", "phoneNumber": "+31302861233",
                       "groups": ["e54f3c3f-d705-451d-96ff-7fbe7ff15e1e"], "vrp": "World-DRaaS",
                       "licenses": ["18181a46-0d4e-45cd-891e-60aabd171b4e"], "customerLicenses": ["test-sku"]}


class GroupsRequest(Closed):
    groups: list[str] = Field(description="Group object ids; [] removes all")


class LicensesRequest(Closed):
    licenses: list[str] = Field(description="Licence sku ids; [] removes all")


class SkuIdsRequest(Closed):
    skuIds: list[str] = Field(description="The full list of sku ids; one left out is unassigned")


class PhoneNumberRequest(Closed):
    phoneNumber: str | None = Field(description="A free number of the subscription; null frees it")


class VrpRequest(Closed):
    vrp: str | None = Field(description="Voice routing policy name; null removes it")


class PropertiesRequest(Closed):
    displayName: str | None = None
    location: str | None = None


class OverrideRequest(Closed):
    override: bool = True


class TemplateApplied(Doc):
    before: dict[str, Any]
    after: dict[str, Any]


class SipAddress(Doc):
    sipAddress: str = Field(examples=["sip:sipAddress@msteams.com"])


class SyncRequest(Closed):
    type: Literal["normal", "resource_account", "all"]


class SyncStarted(Doc):
    msteams_user_ids: list[dict[str, str]] = Field(examples=[[{"id": "2da785f7-3454-4bfe-9f30-4f368eb9db58",
                                                               "status": "syncing"}]])


class UserLocationRequest(Closed):
    locationId: int | None


# --- bulk -----------------------------------------------------------------------------------------------------


class BulkItemRequest(Closed):
    upn: str
    displayName: str = Field(min_length=1, description="Required (spec 004's bulk object): an item without it "
                             "refuses the whole job")
    number: str | None = Field(default=None, description="null frees the user's number")
    country: str | None = None
    vrp: str | None = None
    groups: list[str] | None = None
    licenses: list[str] | None = None
    customerLicenses: list[str] | None = None
    template: str | None = Field(default=None, description="A template name of the subscription")


class BulkRequest(Closed):
    name: str = Field(min_length=1, description="Bulk job descriptive name")
    data: list[BulkItemRequest] = Field(min_length=1)


BULK_EXAMPLE = {"name": "Bulk update", "data": [
    {"upn": "test1@netaxisdev.onmicrosoft.com", "displayName": "bulk test 1", "number": "+3212345669",
     "country": "BE", "vrp": "Global", "groups": ["Security", "All"], "licenses": ["BusinessPack"],
     "customerLicenses": ["Call-Bundle"]},
    {"upn": "test2@netaxisdev.onmicrosoft.com", "displayName": "bulk test 2", "number": None, "template": "BE-Test"}]}


class BulkOutcome(Doc):
    upn: str
    details: dict[str, Any] | None = None
    error: FusionErrorReason | None = None


class BulkResult(Doc):
    details: list[BulkOutcome]
    errors: list[BulkOutcome] | None = Field(default=None, description="Absent on full success")
    message: str = Field(examples=["Success", "Some errors detected"])


BULK_PARTIAL_EXAMPLE = {"details": [{"details": {}, "upn": "test1@netaxisdev.onmicrosoft.com"},
                                    {"error": {"code": 2095, "reason": "The template does not exist"},
                                     "upn": "test2@netaxisdev.onmicrosoft.com"}],
                        "errors": [{"error": {"code": 2095, "reason": "The template does not exist"},
                                    "upn": "test2@netaxisdev.onmicrosoft.com"}],
                        "message": "Some errors detected"}


class BulkAccepted(Doc):
    id: int
    job_id: str
    status: Literal["queued"]
    total_count: int


class BulkJob(Doc):
    id: int
    job_id: str
    kind: str
    title: str
    created_on: str
    updated_on: str


class BulkJobs(Paged):
    bulks: list[BulkJob]


class BulkSummary(BulkJob):
    status: str
    total_count: int
    success_count: int
    error_count: int
    processed_count: int
    cancelled_count: int


class BulkDetails(BulkSummary):
    job_items: list[dict[str, Any]]


# --- resource accounts, templates, locations ----------------------------------------------------------------------


class ResourceAccountRequest(Doc):
    accountType: Literal["call-queue", "auto-attendant"] | None = None
    userPrincipalName: str | None = Field(default=None, description="Required on creation")
    displayName: str | None = None
    location: str | None = None
    phoneNumber: str | None = None
    vrp: str | None = None
    customerLicenses: list[str] | None = None


RESOURCE_ACCOUNT_EXAMPLE = {"accountType": "call-queue",
                            "userPrincipalName": "my_call_queue@netaxisdev.onmicrosoft.com",
                            "displayName": "My First Call Queue", "location": "BE", "phoneNumber": "+3225405239"}


class ResourceAccounts(Doc):
    resourceAccounts: list[dict[str, Any]]


class TemplateRequest(Doc):
    name: str | None = Field(default=None, description="Required on creation")
    productKey: str | None = None
    description: str | None = None
    location: str | None = None
    vrp: str | None = None
    groups: list[str] | None = None
    licenses: list[str] | None = None


class Template(Doc):
    id: int
    name: str
    groups: list[str]
    licenses: list[str]
    location: str | None = None
    vrp: str | None = None


class Templates(Doc):
    templates: list[Template]


class LocationRequest(Doc):
    street: str | None = None
    number: str | None = None
    postbox: str | None = None
    postalCode: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = Field(default=None, description="ISO 3166 alpha-2")
    companyName: str | None = None
    description: str | None = None


LOCATION_EXAMPLE = {"street": "Rue de la Loi", "number": "16", "postalCode": "1000", "city": "Brussels",
                    "country": "BE", "description": "Head office"}


class Location(Doc):
    id: int
    street: str
    number: str | None
    postalCode: dict[str, Any]
    companyName: str | None
    msTeams: dict[str, Any] | None
    phoneNumbers: list[str]


class Locations(Doc):
    locations: list[Location]


class NumberLocation(Doc):
    phoneNumber: str
    locationId: int | None


# --- platform -------------------------------------------------------------------------------------------------


class Login(Doc):
    id: int
    username: str
    status: Literal["active", "disabled"]
    ui_profile: str
    admin_of: list[dict[str, Any]]
    profile: dict[str, Any] | None = None


class Logins(Paged):
    users: list[Login]


class Admins(Doc):
    admins: list[Login]


class ProfileRequest(Doc):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile_number: str | None = None
    old_password: str | None = Field(default=None, description="With `password`, to change it")
    password: str | None = Field(default=None, min_length=8, max_length=200)


class AdminRequest(ProfileRequest):
    username: str | None = Field(default=None, description="Required on creation")
    status: Literal["active", "disabled"] | None = None


class OrgNode(Doc):
    uuid: str
    name: str
    owner: OwnerInfo | None = None


class Distributors(Paged):
    distributors: list[OrgNode]


class Resellers(Paged):
    resellers: list[OrgNode]


class CountryCodes(Doc):
    countryCodes: list[dict[str, str]] = Field(
        examples=[[{"isoCode": "BE", "countryCode": "+32", "name": "Belgium"}]])


class Owners(Doc):
    owners: list[dict[str, Any]]


class InventoryNumbers(Doc):
    numbers: list[dict[str, Any]]
    page: int
    pages: int
    results: int


HTML_PAGE = {"type": "string", "description": "An HTML page for the administrator's browser"}


def list_of(key: str, description: str = "An empty list: teamsvoice keeps none") -> dict[str, Any]:
    """`{key: [...]}`: the catalogues teamsvoice answers truthfully as empty."""
    return {"type": "object", "required": [key], "properties": {key: {"type": "array", "items": {}}},
            "description": description}

