"""Graph directory resources: organization, domains, users, licences, groups and memberships."""

import base64
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..context import EmulatorDep
from ..directory import add_user, consumed_units, delete_user, find_user, hash_secret, is_valid_upn, save_user, user_by_upn
from ..store import Document, Transaction, public
from .auth import Caller, GraphCaller, require
from .errors import GraphError, bad_request, not_found, read_json
from .query import collection, filter_predicate, is_eventual, project, search_predicate, select_fields

router = APIRouter(prefix="/v1.0")

USER_READ = ("User.Read.All", "User.ReadBasic.All", "Directory.Read.All")
USER_WRITE = ("User.ReadWrite.All", "Directory.ReadWrite.All")
ORGANIZATION_READ = ("Organization.Read.All", "Directory.Read.All", "User.Read")
DOMAIN_READ = ("Domain.Read.All", "Directory.Read.All")
SKU_READ = ("Organization.Read.All", "Directory.Read.All", "LicenseAssignment.Read.All")
LICENSE_WRITE = ("LicenseAssignment.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All")
GROUP_READ = ("Group.Read.All", "GroupMember.Read.All", "Directory.Read.All")
ROLE_READ = ("RoleManagement.Read.Directory", "Directory.Read.All")
GROUP_MEMBER_WRITE = ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All")

USER_DEFAULT = [
    "businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone", "officeLocation",
    "preferredLanguage", "surname", "userPrincipalName",
]
USER_PROPERTIES = frozenset(
    USER_DEFAULT
    + [
        "accountEnabled", "mailNickname", "department", "usageLocation", "userType", "assignedLicenses",
        "createdDateTime", "deletedDateTime", "city", "country", "companyName", "employeeId", "postalCode",
        "state", "streetAddress", "faxNumber", "onPremisesSyncEnabled", "onPremisesImmutableId",
    ]
)
_WRITABLE_STRINGS = frozenset(
    {
        "displayName", "givenName", "surname", "jobTitle", "department", "mobilePhone", "officeLocation",
        "preferredLanguage", "usageLocation", "mailNickname", "userPrincipalName", "mail", "city", "country",
        "companyName", "employeeId", "postalCode", "state", "streetAddress", "faxNumber", "onPremisesImmutableId",
    }
)
_READ_ONLY = frozenset({"id", "createdDateTime", "deletedDateTime", "assignedLicenses", "userType"})
# Every user has them (POST /users requires them): Entra ID refuses to clear them.
_NOT_NULL = frozenset({"userPrincipalName", "mailNickname"})
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_USAGE_LOCATION = re.compile(r"^[A-Z]{2}$")


def _user_or_404(tx: Transaction, caller: Caller, id_or_upn: str) -> Document:
    user = find_user(tx, caller.tenant_id, id_or_upn)
    if user is None:
        raise not_found(id_or_upn)
    return user


# --- organization and domains ---------------------------------------------------------------------


@router.get("/organization")
async def list_organization(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *ORGANIZATION_READ)
    with emulator.store.transaction() as tx:
        tenant = tx.get("tenant", caller.tenant_id)
        if tenant is None:
            raise not_found(caller.tenant_id)
        domains = tx.list("domain", caller.tenant_id)
        admin = user_by_upn(tx, tenant["adminUsername"])
    organization = {
        "id": tenant["id"],
        "deletedDateTime": None,
        "businessPhones": [],
        "city": None,
        "country": None,
        "countryLetterCode": tenant["countryLetterCode"],
        "createdDateTime": tenant["createdDateTime"],
        "defaultUsageLocation": None,
        "displayName": tenant["displayName"],
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": None,
        "onPremisesSyncEnabled": None,
        "postalCode": None,
        "preferredLanguage": "en",
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": None,
        "street": None,
        "technicalNotificationMails": [admin["userPrincipalName"]] if admin else [],
        "tenantType": "AAD",
        "assignedPlans": [],
        "provisionedPlans": [],
        "verifiedDomains": [
            {
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": domain["isDefault"],
                "isInitial": domain["isInitial"],
                "name": domain["id"],
                "type": "Managed",
            }
            for domain in domains
        ],
    }
    return collection(request, emulator.settings.base_url, "organization", [organization], lambda doc: doc)


@router.get("/domains")
async def list_domains(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *DOMAIN_READ)
    with emulator.store.transaction() as tx:
        domains = tx.list("domain", caller.tenant_id)
    return collection(request, emulator.settings.base_url, "domains", domains, public)


@router.get("/domains/{domain_id}")
async def get_domain(domain_id: str, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *DOMAIN_READ)
    with emulator.store.transaction() as tx:
        domain = tx.get("domain", domain_id.lower())
    if domain is None or domain["_tenantId"] != caller.tenant_id:
        raise not_found(domain_id)
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#domains/$entity", **public(domain)}


# --- users ----------------------------------------------------------------------------------------


@router.get("/users")
async def list_users(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *USER_READ)
    fields = select_fields(request, USER_PROPERTIES, "user")
    predicates = [p for p in (filter_predicate(request), search_predicate(request)) if p is not None]
    with emulator.store.transaction() as tx:
        users = [u for u in tx.list("user", caller.tenant_id) if all(p(u) for p in predicates)]
    context = f"users({','.join(fields)})" if fields else "users"
    return collection(request, emulator.settings.base_url, context, users, lambda u: project(u, fields, USER_DEFAULT))


@router.get("/users/$count")
async def count_users(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> PlainTextResponse:
    require(caller, *USER_READ)
    if not is_eventual(request):
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
    predicate = filter_predicate(request)
    with emulator.store.transaction() as tx:
        users = tx.list("user", caller.tenant_id)
    return PlainTextResponse(str(sum(1 for u in users if predicate is None or predicate(u))))


@router.get("/users/{user_id}")
async def get_user(user_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *USER_READ)
    fields = select_fields(request, USER_PROPERTIES, "user")
    with emulator.store.transaction() as tx:
        user = _user_or_404(tx, caller, user_id)
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity", **project(user, fields, USER_DEFAULT)}


def _validate_user_fields(body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name in _READ_ONLY:
            raise bad_request(f"Property '{name}' is read-only and cannot be set.")
        if name == "accountEnabled":
            if not isinstance(value, bool):
                raise bad_request("Invalid value specified for property 'accountEnabled' of resource 'User'.")
        elif name == "businessPhones":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise bad_request("Invalid value specified for property 'businessPhones' of resource 'User'.")
        elif name == "passwordProfile":
            if not isinstance(value, dict) or not isinstance(value.get("password"), str) or not value["password"]:
                raise bad_request("Invalid value specified for property 'passwordProfile' of resource 'User'.")
        elif name in _WRITABLE_STRINGS:
            if (value is None and name in _NOT_NULL) or (value is not None and not isinstance(value, str)):
                raise bad_request(f"Invalid value specified for property '{name}' of resource 'User'.")
        else:
            raise bad_request(f"Invalid property '{name}'.")
    usage_location = body.get("usageLocation")
    if usage_location is not None and not _USAGE_LOCATION.match(usage_location):
        raise bad_request("Invalid value specified for property 'usageLocation' of resource 'User'.")


def _check_upn(tx: Transaction, tenant_id: str, upn: str, current_user_id: str | None) -> None:
    if not is_valid_upn(upn):
        raise bad_request("Invalid value specified for property 'userPrincipalName' of resource 'User'.")
    domain = tx.get("domain", upn.rsplit("@", 1)[1].lower())
    if domain is None or domain["_tenantId"] != tenant_id:
        raise bad_request(
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified "
            "domain names in your organization."
        )
    existing = user_by_upn(tx, upn)
    if existing is not None and existing["id"] != current_user_id:
        raise bad_request("Another object with the same value for property userPrincipalName already exists.")


@router.post("/users", status_code=201)
async def create_user(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> JSONResponse:
    require(caller, *USER_WRITE)
    body = await read_json(request, entity="microsoft.graph.user")
    for required in ("accountEnabled", "displayName", "mailNickname", "passwordProfile", "userPrincipalName"):
        if body.get(required) in (None, ""):
            raise bad_request(f"Property '{required}' value is required but is empty or missing.")
    _validate_user_fields(body)
    properties = {name: value for name, value in body.items() if name != "passwordProfile"}
    with emulator.store.transaction() as tx:
        _check_upn(tx, caller.tenant_id, body["userPrincipalName"], None)
        user = add_user(tx, caller.tenant_id, properties, body["passwordProfile"]["password"])
    return JSONResponse(
        {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity", **project(user, None, USER_DEFAULT)},
        status_code=201,
        headers={"Location": f"{emulator.settings.base_url}/v1.0/users/{user['id']}"},
    )


@router.patch("/users/{user_id}", status_code=204)
async def update_user(user_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *USER_WRITE)
    body = await read_json(request, entity="microsoft.graph.user")
    _validate_user_fields(body)
    with emulator.store.transaction() as tx:
        user = _user_or_404(tx, caller, user_id)
        previous_upn = user["userPrincipalName"]
        if "userPrincipalName" in body:
            _check_upn(tx, caller.tenant_id, body["userPrincipalName"], user["id"])
        for name, value in body.items():
            if name == "passwordProfile":
                user["_passwordHash"] = hash_secret(value["password"])
            else:
                user[name] = value
        save_user(tx, user, previous_upn)
    return Response(status_code=204)


@router.delete("/users/{user_id}", status_code=204)
async def remove_user(user_id: str, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *USER_WRITE)
    with emulator.store.transaction() as tx:
        delete_user(tx, _user_or_404(tx, caller, user_id))
    return Response(status_code=204)


# --- memberships ----------------------------------------------------------------------------------


def _group_object(group: Document) -> Document:
    return {"@odata.type": "#microsoft.graph.group", **public(group)}


def _role_object(role: Document) -> Document:
    return {"@odata.type": "#microsoft.graph.directoryRole", **public(role)}


def _user_object(user: Document) -> Document:
    return {"@odata.type": "#microsoft.graph.user", **project(user, None, USER_DEFAULT)}


@router.get("/users/{user_id}/memberOf")
async def member_of(user_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *USER_READ, *GROUP_READ)
    with emulator.store.transaction() as tx:
        user = _user_or_404(tx, caller, user_id)
        objects = [_group_object(g) for g in tx.list("group", caller.tenant_id) if user["id"] in g["_members"]]
        objects += [_role_object(r) for r in tx.list("role", caller.tenant_id) if user["id"] in r["_members"]]
    return collection(request, emulator.settings.base_url, "directoryObjects", objects, lambda doc: doc)


@router.get("/directoryRoles")
async def list_directory_roles(caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    """The tenant's activated directory roles, in one answer (Graph does not page directoryRoles)."""
    require(caller, *ROLE_READ)
    with emulator.store.transaction() as tx:
        roles = [public(r) for r in tx.list("role", caller.tenant_id)]
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryRoles", "value": roles}


@router.get("/directoryRoles/{role_id}/members")
async def list_directory_role_members(role_id: str, request: Request, caller: GraphCaller,
                                      emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *ROLE_READ)
    with emulator.store.transaction() as tx:
        role = tx.get("role", role_id)
        if role is None or role.get("_tenantId") != caller.tenant_id:
            raise not_found(role_id)
        members = [user for member in role["_members"] if (user := tx.get("user", member)) is not None]
    return collection(request, emulator.settings.base_url, "directoryObjects", members, _user_object)


# --- licences -------------------------------------------------------------------------------------


def _sku_view(tx: Transaction, sku: Document) -> Document:
    return {**public(sku), "consumedUnits": consumed_units(tx, sku["accountId"], sku["skuId"])}


@router.get("/subscribedSkus")
async def list_subscribed_skus(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *SKU_READ)
    with emulator.store.transaction() as tx:
        skus = [_sku_view(tx, sku) for sku in tx.list("sku", caller.tenant_id)]
    fields = select_fields(request, frozenset(skus[0]) if skus else frozenset({"id"}), "subscribedSku")
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscribedSkus",
        "value": [project(sku, fields, None) for sku in skus],
    }


def _license_details(tx: Transaction, user: Document) -> list[Document]:
    details = []
    for licence in user["assignedLicenses"]:
        sku = tx.get("sku", f"{user['_tenantId']}_{licence['skuId']}")
        if sku is None:
            continue
        detail_id = base64.urlsafe_b64encode(f"{user['id']}|{licence['skuId']}".encode()).rstrip(b"=").decode()
        details.append(
            {
                "id": detail_id,
                "skuId": sku["skuId"],
                "skuPartNumber": sku["skuPartNumber"],
                "servicePlans": [
                    plan for plan in sku["servicePlans"] if plan["servicePlanId"] not in licence["disabledPlans"]
                ],
            }
        )
    return details


@router.get("/users/{user_id}/licenseDetails")
async def license_details(user_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *USER_READ)
    with emulator.store.transaction() as tx:
        details = _license_details(tx, _user_or_404(tx, caller, user_id))
    return collection(
        request, emulator.settings.base_url, f"users('{user_id}')/licenseDetails", details, lambda doc: doc
    )


def _is_guid(value: Any) -> bool:
    return isinstance(value, str) and _GUID.match(value) is not None


def _licence_changes(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """assignLicense's parameters as its CSDL types them, checked before anything is read or written:
    addLicenses a Collection(assignedLicense) (skuId an Edm.Guid, disabledPlans a Collection(Edm.Guid)),
    removeLicenses a Collection(Edm.Guid)."""
    add, remove = body.get("addLicenses"), body.get("removeLicenses")
    if not isinstance(add, list) or not isinstance(remove, list):
        raise bad_request("Invalid request: 'addLicenses' and 'removeLicenses' are required.")
    if not all(_is_guid(sku_id) for sku_id in remove):
        raise bad_request("Invalid value specified for property 'removeLicenses': a collection of GUIDs "
                          "(skuIds).")
    for licence in add:
        if not isinstance(licence, dict) or not isinstance(licence.get("skuId"), str):
            raise bad_request("Invalid value specified for property 'addLicenses' of resource 'User'.")
        plans = licence.get("disabledPlans")
        if plans is not None and (not isinstance(plans, list) or not all(_is_guid(plan) for plan in plans)):
            raise bad_request("Invalid value specified for property 'disabledPlans' of resource "
                              "'AssignedLicense': a collection of GUIDs (servicePlanIds).")
    return add, remove


@router.post("/users/{user_id}/assignLicense")
async def assign_license(user_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *LICENSE_WRITE)
    body = await read_json(request)
    add, remove = _licence_changes(body)
    with emulator.store.transaction() as tx:
        user = _user_or_404(tx, caller, user_id)
        assigned = {licence["skuId"]: licence for licence in user["assignedLicenses"]}
        for sku_id in remove:
            if sku_id not in assigned:
                raise bad_request("User does not have a corresponding license.")
            del assigned[sku_id]
        for licence in add:
            sku = tx.get("sku", f"{caller.tenant_id}_{licence['skuId']}")
            if sku is None:
                raise bad_request(f"License {licence['skuId']} does not correspond to a valid company License.")
            if not user["usageLocation"]:
                raise bad_request("License assignment cannot be done for user with invalid usage location.")
            if licence["skuId"] not in assigned and consumed_units(tx, caller.tenant_id, sku["skuId"]) >= sku[
                "prepaidUnits"
            ]["enabled"]:
                raise bad_request(
                    f"Subscription with SKU {sku['skuId']} ({sku['skuPartNumber']}) does not have any available "
                    "licenses."
                )
            assigned[licence["skuId"]] = {"skuId": licence["skuId"], "disabledPlans": licence.get("disabledPlans") or []}
        user["assignedLicenses"] = list(assigned.values())
        save_user(tx, user)
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity", **project(user, None, USER_DEFAULT)}


# --- groups ---------------------------------------------------------------------------------------


def _group_or_404(tx: Transaction, caller: Caller, group_id: str) -> Document:
    group = tx.get("group", group_id)
    if group is None or group["_tenantId"] != caller.tenant_id:
        raise not_found(group_id)
    return group


@router.get("/groups")
async def list_groups(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *GROUP_READ)
    predicate = filter_predicate(request)
    with emulator.store.transaction() as tx:
        groups = [g for g in tx.list("group", caller.tenant_id) if predicate is None or predicate(g)]
    return collection(request, emulator.settings.base_url, "groups", groups, public)


@router.get("/groups/{group_id}")
async def get_group(group_id: str, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *GROUP_READ)
    with emulator.store.transaction() as tx:
        group = _group_or_404(tx, caller, group_id)
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups/$entity", **public(group)}


@router.get("/groups/{group_id}/members")
async def list_members(group_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *GROUP_READ)
    with emulator.store.transaction() as tx:
        group = _group_or_404(tx, caller, group_id)
        members = [user for member in group["_members"] if (user := tx.get("user", member)) is not None]
    return collection(request, emulator.settings.base_url, "directoryObjects", members, _user_object)


@router.post("/groups/{group_id}/members/$ref", status_code=204)
async def add_member(group_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *GROUP_MEMBER_WRITE)
    body = await read_json(request, keep=("@odata.id",))
    reference = body.get("@odata.id")
    if not isinstance(reference, str) or not reference.strip("/"):
        raise bad_request("Invalid URL format specified in @odata.id.")
    member_id = reference.rstrip("/").rsplit("/", 1)[-1]
    with emulator.store.transaction() as tx:
        group = _group_or_404(tx, caller, group_id)
        member = find_user(tx, caller.tenant_id, member_id)
        if member is None:
            raise not_found(member_id)
        if member["id"] in group["_members"]:
            raise bad_request(
                "One or more added object references already exist for the following modified properties: 'members'."
            )
        group["_members"].append(member["id"])
        tx.put("group", group["id"], group, caller.tenant_id)
    return Response(status_code=204)


@router.delete("/groups/{group_id}/members/{member_id}/$ref", status_code=204)
async def remove_member(group_id: str, member_id: str, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *GROUP_MEMBER_WRITE)
    with emulator.store.transaction() as tx:
        group = _group_or_404(tx, caller, group_id)
        if member_id not in group["_members"]:
            raise not_found(member_id)
        group["_members"].remove(member_id)
        tx.put("group", group["id"], group, caller.tenant_id)
    return Response(status_code=204)
