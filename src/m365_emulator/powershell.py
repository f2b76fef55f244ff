"""A stand-in for the MicrosoftTeams PowerShell module (emulator-only, not a Microsoft API):
`POST /_powershell/invoke {"cmdlet", "parameters"}` runs one cmdlet against the same Teams voice state
Graph's teamsAdministration shows. Tokens must be for the Skype and Teams Tenant Admin API
(48ac35b8-9aa8-4d74-927d-1f4a14a0b239), app-only or delegated, as the real module uses."""

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import application_instances, emergency_addresses, json_input, teams_voice, voice_routing
from .catalog import TEAMS_ADMIN_APP_ID
from .cmdlet_support import Cmdlet, CmdletError, Parameters
from .context import EmulatorDep
from .directory import find_user
from .graph.auth import bearer_claims
from .graph.errors import GraphError
from .store import Document, Transaction

router = APIRouter()

_PHONE_NUMBER_TYPES = {"directrouting": "directRouting", "callingplan": "callingPlan", "operatorconnect": "operatorConnect"}
_CATEGORIES = {"primary": "primary", "private": "private", "alternate": "alternate"}
_VOICE_ROUTING = voice_routing.VOICE_ROUTING_POLICY_TYPE


def _identity(tx: Transaction, tenant_id: str, parameters: Parameters) -> Document:
    identity = parameters.get("Identity")
    if not isinstance(identity, str) or not identity:
        raise CmdletError(
            "ParameterArgumentValidationErrorNullNotAllowed", "InvalidData",
            "Cannot validate argument on parameter 'Identity'. The argument is null or empty. Provide an argument "
            "that is not null or empty, and then try the command again.",
        )
    user = find_user(tx, tenant_id, identity.removeprefix("sip:"))
    if user is None:
        raise CmdletError("ManagementObjectNotFound", "ObjectNotFound", f"Management object not found for identity '{identity}'.")
    return user


def _ambiguous(cmdlet: str) -> CmdletError:
    return CmdletError(
        f"AmbiguousParameterSet,{cmdlet}", "InvalidArgument",
        "Parameter set cannot be resolved using the specified named parameters. One or more parameters issued "
        "cannot be used together or an insufficient number of parameters were provided.",
    )


def _validate_set(cmdlet: str, name: str, value: Any, allowed: dict[str, str]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise CmdletError(
            f"ParameterArgumentValidationError,{cmdlet}", "InvalidData",
            f"Cannot validate argument on parameter '{name}'. The argument \"{value}\" does not belong to the set "
            f"\"{','.join(k[0].upper() + v[1:] for k, v in allowed.items())}\" specified by the ValidateSet "
            "attribute. Supply an argument that is in the set and then try the command again.",
        )
    return allowed[value.lower()]


def _voice(call: Callable[[], None]) -> None:
    try:
        call()
    except teams_voice.VoiceError as exc:
        raise CmdletError("BadRequest", "InvalidOperation", str(exc)) from exc


def set_phone_number_assignment(tx: Transaction, tenant_id: str, parameters: Parameters) -> list[dict[str, Any]]:
    cmdlet = "Set-CsPhoneNumberAssignment"
    user = _identity(tx, tenant_id, parameters)
    if "EnterpriseVoiceEnabled" in parameters:
        if "PhoneNumber" in parameters or "PhoneNumberType" in parameters:
            raise _ambiguous(cmdlet)
        enabled = parameters["EnterpriseVoiceEnabled"]
        if not isinstance(enabled, bool):
            raise CmdletError(
                f"ParameterArgumentTransformationError,{cmdlet}", "InvalidData",
                "Cannot process argument transformation on parameter 'EnterpriseVoiceEnabled'. Cannot convert "
                f"value \"{enabled}\" to type \"System.Boolean\".",
            )
        teams_voice.set_enterprise_voice(tx, user, enabled)
        return []
    if "PhoneNumber" not in parameters or "PhoneNumberType" not in parameters:
        raise _ambiguous(cmdlet)
    number_type = _validate_set(cmdlet, "PhoneNumberType", parameters["PhoneNumberType"], _PHONE_NUMBER_TYPES)
    category = _validate_set(cmdlet, "AssignmentCategory", parameters.get("AssignmentCategory", "Primary"), _CATEGORIES)
    number = parameters["PhoneNumber"]
    if isinstance(number, str) and number.lower().startswith("tel:"):
        raise CmdletError("BadRequest", "InvalidArgument", "The PhoneNumber must not include the 'tel:' prefix.")
    location_id = parameters.get("LocationId")
    if location_id is not None:  # Teams checks the emergency location exists in the tenant
        location_id = emergency_addresses.require_location(tx, tenant_id, location_id)
    _voice(lambda: teams_voice.assign_number(tx, user, str(number), number_type, category, location_id))
    return []


def remove_phone_number_assignment(tx: Transaction, tenant_id: str, parameters: Parameters) -> list[dict[str, Any]]:
    cmdlet = "Remove-CsPhoneNumberAssignment"
    user = _identity(tx, tenant_id, parameters)
    if parameters.get("RemoveAll") is True:
        if "PhoneNumber" in parameters:
            raise _ambiguous(cmdlet)
        teams_voice.remove_all_numbers(tx, user)
        return []
    if "PhoneNumber" not in parameters or "PhoneNumberType" not in parameters:
        raise _ambiguous(cmdlet)
    _validate_set(cmdlet, "PhoneNumberType", parameters["PhoneNumberType"], _PHONE_NUMBER_TYPES)
    number = teams_voice.normalize_number(str(parameters["PhoneNumber"]))
    held = [n["telephoneNumber"] for n in teams_voice.user_numbers(tx, tenant_id, user["id"])]
    if number not in held:
        raise CmdletError("BadRequest", "InvalidOperation", f"Telephone Number '{number}' is not assigned to the user.")
    _voice(lambda: teams_voice.unassign_number(tx, tenant_id, number))
    return []


def grant_voice_routing_policy(tx: Transaction, tenant_id: str, parameters: Parameters) -> list[dict[str, Any]]:
    user = _identity(tx, tenant_id, parameters)
    if "PolicyName" not in parameters:
        raise _ambiguous("Grant-CsOnlineVoiceRoutingPolicy")
    name = parameters["PolicyName"]
    if name is None or name == "":
        teams_voice.assign_policy(tx, user, _VOICE_ROUTING, None)
        return []
    identifier, _ = voice_routing.grant_policy_identifier(tx, tenant_id, str(name))
    teams_voice.assign_policy(tx, user, _VOICE_ROUTING, identifier)
    return []


def _online_user(tx: Transaction, user: Document) -> dict[str, Any]:
    configuration = teams_voice.user_configuration(tx, user)
    numbers = configuration["telephoneNumbers"]
    primary = next((n["telephoneNumber"] for n in numbers if n["assignmentCategory"] == "primary"), None)
    return {
        "Identity": user["id"],
        "UserPrincipalName": user["userPrincipalName"],
        "Alias": user.get("mailNickname"),
        "DisplayName": user["displayName"],
        "AccountEnabled": user["accountEnabled"],
        "AccountType": "ResourceAccount" if configuration["accountType"] == "resourceAccount" else "User",
        "UsageLocation": user.get("usageLocation"),
        "SipAddress": f"sip:{user['userPrincipalName']}",
        "EnterpriseVoiceEnabled": configuration["isEnterpriseVoiceEnabled"],
        "LineUri": f"tel:{primary}" if primary else None,
        "TelephoneNumbers": [
            {"TelephoneNumber": n["telephoneNumber"], "AssignmentCategory": n["assignmentCategory"].capitalize()}
            for n in numbers
        ],
        "FeatureTypes": configuration["featureTypes"],
        "OnlineVoiceRoutingPolicy": teams_voice.policy_name(tx, user["id"], _VOICE_ROUTING),
    }


def get_online_user(tx: Transaction, tenant_id: str, parameters: Parameters) -> list[dict[str, Any]]:
    if "Identity" in parameters:
        return [_online_user(tx, _identity(tx, tenant_id, parameters))]
    return [_online_user(tx, user) for user in tx.list("user", tenant_id)]


# cmdlet name -> (implementation, accepted parameter names)
CMDLETS: dict[str, tuple[Cmdlet, tuple[str, ...]]] = {
    "Set-CsPhoneNumberAssignment": (
        set_phone_number_assignment,
        ("Identity", "PhoneNumber", "PhoneNumberType", "EnterpriseVoiceEnabled", "LocationId", "AssignmentCategory"),
    ),
    "Remove-CsPhoneNumberAssignment": (
        remove_phone_number_assignment,
        ("Identity", "PhoneNumber", "PhoneNumberType", "RemoveAll"),
    ),
    "Grant-CsOnlineVoiceRoutingPolicy": (grant_voice_routing_policy, ("Identity", "PolicyName")),
    "Get-CsOnlineUser": (get_online_user, ("Identity",)),
    **voice_routing.CMDLETS,
    **application_instances.CMDLETS,
    **emergency_addresses.CMDLETS,
}


def _bind(cmdlet: str, accepted: tuple[str, ...], raw: Any) -> Parameters:
    """PowerShell parameter names are case-insensitive and may be written with a leading '-'."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CmdletError("InvalidParameters", "InvalidArgument", "'parameters' must be an object.")
    by_lower = {name.lower(): name for name in accepted}
    bound: Parameters = {}
    for name, value in raw.items():
        canonical = by_lower.get(str(name).lstrip("-").lower())
        if canonical is None:
            raise CmdletError(
                f"NamedParameterNotFound,{cmdlet}", "InvalidArgument",
                f"A parameter cannot be found that matches parameter name '{str(name).lstrip('-')}'.",
            )
        bound[canonical] = value
    return bound


def _error(status: int, error: CmdletError) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"errorId": error.error_id, "category": error.category, "message": error.message}},
    )


def _timed_out(cmdlet: str) -> JSONResponse:
    """An injected cmdlet timeout (see faults.py)."""
    return _error(504, CmdletError("OperationTimeout", "OperationTimeout", f"The operation '{cmdlet}' has timed out."))


@router.post("/_powershell/invoke")
async def invoke(request: Request, emulator: EmulatorDep) -> JSONResponse:
    try:
        claims = bearer_claims(request, [TEAMS_ADMIN_APP_ID], emulator)
    except GraphError as exc:
        return _error(401, CmdletError("Unauthorized", "AuthenticationError", exc.message))
    if claims.get("idtyp") != "app" and "user_impersonation" not in claims.get("scp", "").split():
        return _error(403, CmdletError("Forbidden", "PermissionDenied", "The token lacks the user_impersonation scope."))
    try:
        body = json_input.loads(await request.body())
    except json_input.UnreadableJson as exc:  # (NaN, a lone surrogate, too deep: refused before any cmdlet)
        message = f"The request body is not valid JSON. {exc}"
        return _error(400, CmdletError("InvalidRequest", "InvalidArgument", message))
    if not isinstance(body, dict) or not isinstance(body.get("cmdlet"), str):
        return _error(400, CmdletError("InvalidRequest", "InvalidArgument", "Body must be {\"cmdlet\": str, \"parameters\": object}."))
    name = body["cmdlet"]
    entry = next((value for key, value in CMDLETS.items() if key.lower() == name.lower()), None)
    try:
        if entry is None:
            raise CmdletError(
                "CommandNotFoundException", "ObjectNotFound",
                f"The term '{name}' is not recognized as a name of a cmdlet, function, script file, or executable "
                "program. Check the spelling of the name, or if a path was included, verify that the path is "
                "correct and try again.",
            )
        implementation, accepted = entry
        canonical_name = next(key for key in CMDLETS if key.lower() == name.lower())
        parameters = _bind(canonical_name, accepted, body.get("parameters"))
        timeout = emulator.faults.take_cmdlet_timeout(canonical_name)
        if timeout is not None and not timeout[1]:
            await asyncio.sleep(timeout[0])
            return _timed_out(canonical_name)
        with emulator.store.transaction() as tx:
            output = implementation(tx, claims["tid"], parameters)
        if timeout is not None:
            await asyncio.sleep(timeout[0])
            return _timed_out(canonical_name)
    except CmdletError as exc:
        return _error(400, exc)
    except teams_voice.VoiceError as exc:
        return _error(400, CmdletError("BadRequest", "InvalidOperation", str(exc)))
    return JSONResponse({"output": output})
