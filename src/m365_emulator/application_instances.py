"""Resource accounts: Entra users behind auto attendants and call queues, created and managed only through
the MicrosoftTeams module's *-CsOnlineApplicationInstance cmdlets.

An application instance is a directory user (visible in Graph /users, deleted through Graph) whose Teams
configuration has accountType "resourceAccount" and carries the Teams application it fronts. Creation
with an ApplicationId also maps the instance in the Agent Provisioning Service ("synced");
Sync-CsOnlineApplicationInstance creates that mapping otherwise and refuses to create it twice."""

import uuid
from typing import Any

from . import clock, teams_voice
from .cmdlet_support import CmdletError, Output, Parameters, missing, not_found, string
from .directory import add_user, find_user, is_valid_upn, save_user, user_by_upn
from .store import Document, Transaction

AUTO_ATTENDANT_APP_ID = "ce933385-9390-45d1-9512-c8d228074e07"
CALL_QUEUE_APP_ID = "11cd3e2e-fccb-42ad-ad00-878b93575e07"
APPLICATION_IDS = {AUTO_ATTENDANT_APP_ID: "AutoAttendant", CALL_QUEUE_APP_ID: "CallQueue"}
_UNMAP = "00000000-0000-0000-0000-000000000000"


def _application_id(cmdlet: str, value: Any, allow_unmap: bool = False) -> str:
    try:
        parsed = str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise CmdletError(
            f"ParameterArgumentTransformationError,{cmdlet}", "InvalidData",
            f"Cannot process argument transformation on parameter 'ApplicationId'. Cannot convert value \"{value}\" "
            "to type \"System.Guid\".",
        ) from exc
    if parsed not in APPLICATION_IDS and not (allow_unmap and parsed == _UNMAP):
        raise CmdletError(
            "BadRequest", "InvalidArgument",
            f"ApplicationId '{parsed}' is not a supported Teams application. Use {AUTO_ATTENDANT_APP_ID} (auto "
            f"attendant) or {CALL_QUEUE_APP_ID} (call queue).",
        )
    return parsed


def is_resource_account(tx: Transaction, user_id: str) -> bool:
    configuration = tx.get("teams_user", user_id)
    return bool(configuration) and configuration["accountType"] == "resourceAccount"


def _instance(tx: Transaction, tenant_id: str, identity: str) -> tuple[Document, Document]:
    user = find_user(tx, tenant_id, identity.removeprefix("sip:"))
    configuration = tx.get("teams_user", user["id"]) if user else None
    if user is None or configuration is None or configuration["accountType"] != "resourceAccount":
        raise not_found(identity)
    return user, configuration


def render(tx: Transaction, user: Document, configuration: Document) -> dict[str, Any]:
    numbers = teams_voice.user_numbers(tx, user["_tenantId"], user["id"])
    primary = next((n["telephoneNumber"] for n in numbers if n["assignmentCategory"] == "primary"), None)
    return {
        "ObjectId": user["id"],
        "TenantId": user["_tenantId"],
        "UserPrincipalName": user["userPrincipalName"],
        "ApplicationId": configuration.get("_applicationId"),
        "DisplayName": user["displayName"],
        "PhoneNumber": f"tel:{primary}" if primary else None,
    }


def new_application_instance(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "New-CsOnlineApplicationInstance"
    upn = string(cmdlet, parameters, "UserPrincipalName", required=True)
    assert upn is not None
    application_id = _application_id(cmdlet, parameters["ApplicationId"]) if parameters.get("ApplicationId") else None
    display_name = string(cmdlet, parameters, "DisplayName") or upn.split("@")[0]
    if not is_valid_upn(upn):
        raise CmdletError("BadRequest", "InvalidArgument", f"The UserPrincipalName '{upn}' is not a valid user principal name.")
    domain = tx.get("domain", upn.rsplit("@", 1)[1].lower())
    if domain is None or domain["_tenantId"] != tenant_id:
        raise CmdletError(
            "BadRequest", "InvalidArgument",
            f"The domain portion of the UserPrincipalName '{upn}' is not a verified domain of the tenant.",
        )
    if user_by_upn(tx, upn) is not None:
        raise CmdletError(
            "BadRequest", "ResourceExists",
            "Another object with the same value for property userPrincipalName already exists.",
        )
    user = add_user(
        tx,
        tenant_id,
        {
            "displayName": display_name,
            "userPrincipalName": upn.lower(),
            "mailNickname": upn.split("@")[0],
            "accountEnabled": False,
            "department": "Microsoft Communication Application Instance",
        },
        password=None,
    )
    configuration = tx.get("teams_user", user["id"])
    assert configuration is not None
    configuration.update(
        accountType="resourceAccount", featureTypes=[], _applicationId=application_id,
        _synced=application_id is not None, modifiedDateTime=clock.iso_now(),
    )
    tx.put("teams_user", user["id"], configuration, tenant_id)
    return [render(tx, user, configuration)]


def set_application_instance(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Set-CsOnlineApplicationInstance"
    user, configuration = _instance(tx, tenant_id, string(cmdlet, parameters, "Identity", required=True))  # type: ignore[arg-type]
    if "DisplayName" in parameters:
        user["displayName"] = string(cmdlet, parameters, "DisplayName")
        save_user(tx, user)
    if "ApplicationId" in parameters:
        configuration["_applicationId"] = _application_id(cmdlet, parameters["ApplicationId"])
    configuration["modifiedDateTime"] = clock.iso_now()
    tx.put("teams_user", user["id"], configuration, tenant_id)
    return [render(tx, user, configuration)]


def get_application_instance(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Get-CsOnlineApplicationInstance"
    identity = string(cmdlet, parameters, "Identity")
    if identity is not None:
        return [render(tx, *_instance(tx, tenant_id, identity))]
    output = []
    for configuration in tx.list("teams_user", tenant_id):
        if configuration["accountType"] == "resourceAccount":
            user = tx.get("user", configuration["id"])
            if user is not None:
                output.append(render(tx, user, configuration))
    return output


def sync_application_instance(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Sync-CsOnlineApplicationInstance"
    if "ObjectId" not in parameters:
        raise missing(cmdlet, "ObjectId")
    object_id = string(cmdlet, parameters, "ObjectId", required=True)
    user, configuration = _instance(tx, tenant_id, object_id)  # type: ignore[arg-type]
    if "ApplicationId" in parameters:
        application_id = _application_id(cmdlet, parameters["ApplicationId"], allow_unmap=True)
        if application_id == _UNMAP:
            configuration["_synced"] = False
            tx.put("teams_user", user["id"], configuration, tenant_id)
            return []
        configuration["_applicationId"] = application_id
    if configuration.get("_applicationId") is None:
        raise CmdletError(
            "BadRequest", "InvalidArgument",
            f"The application instance '{user['userPrincipalName']}' has no ApplicationId; specify -ApplicationId.",
        )
    if configuration.get("_synced"):
        raise CmdletError("ArgumentException", "InvalidOperation", "An item with the same key has already been added.")
    configuration["_synced"] = True
    tx.put("teams_user", user["id"], configuration, tenant_id)
    return []


def state(tx: Transaction, tenant_id: str) -> list[dict[str, Any]]:
    instances = []
    for configuration in tx.list("teams_user", tenant_id):
        user = tx.get("user", configuration["id"]) if configuration["accountType"] == "resourceAccount" else None
        if user is not None:
            instances.append({**render(tx, user, configuration), "Synced": bool(configuration.get("_synced"))})
    return instances


CMDLETS = {
    "New-CsOnlineApplicationInstance": (
        new_application_instance, ("UserPrincipalName", "ApplicationId", "DisplayName", "Force"),
    ),
    "Set-CsOnlineApplicationInstance": (
        set_application_instance, ("Identity", "ApplicationId", "DisplayName", "AcsResourceId", "Force"),
    ),
    "Get-CsOnlineApplicationInstance": (get_application_instance, ("Identity",)),
    "Sync-CsOnlineApplicationInstance": (
        sync_application_instance, ("ObjectId", "ApplicationId", "AcsResourceId", "CallbackUri", "Force"),
    ),
}
