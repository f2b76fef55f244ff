"""Graph v1.0 teamsAdministration: user configurations, number assignment operations, policy assignment."""

import asyncio
import itertools
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .. import clock, emergency_addresses, teams_voice, voice_routing
from ..cmdlet_support import CmdletError
from ..context import EmulatorDep
from ..directory import find_user, number_key
from ..store import Document, Transaction, public
from .auth import Caller, GraphCaller, require
from .errors import GraphError, bad_request, not_found, read_json
from .query import collection, filter_predicate, project, select_fields

router = APIRouter(prefix="/v1.0/admin/teams")

CONFIGURATION_READ = ("TeamsUserConfiguration.Read.All",)
NUMBER_READ = ("TeamsTelephoneNumber.Read.All",)
NUMBER_WRITE = ("TeamsTelephoneNumber.ReadWrite.All",)
POLICY_WRITE = ("TeamsPolicyUserAssign.ReadWrite.All",)
_OPERATIONS = "telephoneNumberManagement/operations"
_USER_ASSIGNMENT_TYPE = "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"
# Bound actions and functions answer to their namespace-qualified names too, as OData services do (Microsoft's
# SDKs call `.../userAssignments/microsoft.graph.teamsAdministration.assign`).
_NS = "microsoft.graph.teamsAdministration"
# The order number operations were accepted and completed in, across tenants (admin view only: lets tests check
# which operations overlapped and which waited for which, without timing anything).
_SEQUENCE = itertools.count(1)


_CONFIGURATION_TYPE = "teamsAdministration.teamsUserConfiguration"
_CONFIGURATION_FIELDS = frozenset({
    "id", "userPrincipalName", "tenantId", "accountType", "isEnterpriseVoiceEnabled", "featureTypes",
    "telephoneNumbers", "effectivePolicyAssignments", "createdDateTime", "modifiedDateTime"})


@router.get("/userConfigurations")
async def list_user_configurations(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *CONFIGURATION_READ)
    fields = select_fields(request, _CONFIGURATION_FIELDS, _CONFIGURATION_TYPE)
    predicate = filter_predicate(request)
    with emulator.store.transaction() as tx:
        held = teams_voice.numbers_by_user(tx, caller.tenant_id)
        configurations = [teams_voice.user_configuration(tx, user, held) for user in tx.list("user", caller.tenant_id)]
    configurations = [c for c in configurations if predicate is None or predicate(c)]
    return collection(
        request, emulator.settings.base_url, "admin/teams/userConfigurations", configurations,
        lambda doc: project(doc, fields, None),
    )


@router.get("/userConfigurations/{user_id}")
async def get_user_configuration(user_id: str, request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *CONFIGURATION_READ)
    fields = select_fields(request, _CONFIGURATION_FIELDS, _CONFIGURATION_TYPE)
    with emulator.store.transaction() as tx:
        user = find_user(tx, caller.tenant_id, user_id)
        if user is None:
            raise not_found(user_id)
        configuration = teams_voice.user_configuration(tx, user)
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#admin/teams/userConfigurations/$entity",
        **project(configuration, fields, None),
    }


@router.get("/telephoneNumberManagement/numberAssignments")
async def list_number_assignments(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *NUMBER_READ)
    predicate = filter_predicate(request)
    with emulator.store.transaction() as tx:
        assignments = [teams_voice.number_assignment(n) for n in tx.list("number", caller.tenant_id)]
    assignments = [a for a in assignments if predicate is None or predicate(a)]
    return collection(
        request,
        emulator.settings.base_url,
        "admin/teams/telephoneNumberManagement/numberAssignments",
        assignments,
        lambda doc: doc,
    )


def _new_operation(tx: Transaction, caller: Caller, action: str, parameters: dict[str, Any], seconds: float) -> Document:
    now = clock.now()
    operation = {
        "id": str(uuid.uuid4()),
        "createdDateTime": clock.iso_now(),
        "status": "notStarted",
        "numbers": [{"resourceLocation": None, "status": "notStarted", "statusDetail": None}],
        "_tenantId": caller.tenant_id,
        "_action": action,
        "_parameters": parameters,
        "_created": now,
        "_completesAt": now + seconds,
        "_accepted": next(_SEQUENCE),
    }
    if seconds > 0:  # else _finish writes it, done
        tx.put("number_operation", operation["id"], operation, caller.tenant_id)
    return operation


def _run_change(tx: Transaction, tenant_id: str, action: str, parameters: dict[str, Any]) -> None:
    """Carries out a number operation's change; Teams' refusal is raised as VoiceError."""
    if action == "assignNumber":
        user = find_user(tx, tenant_id, parameters["assignmentTargetId"])
        if user is None:  # deleted while the operation waited
            raise teams_voice.VoiceError(f"Management object not found for identity '{parameters['assignmentTargetId']}'.")
        teams_voice.assign_number(tx, user, parameters["telephoneNumber"], parameters["numberType"],
                                  parameters["assignmentCategory"], parameters.get("locationId"))
    elif action == "unassignNumber":
        teams_voice.unassign_number(tx, tenant_id, parameters["telephoneNumber"])
    else:
        teams_voice.update_number(tx, tenant_id, parameters["telephoneNumber"], parameters["changes"])


def _finish(tx: Transaction, operation: Document) -> None:
    """Carries out the operation's change and records its outcome, in the caller's transaction. Teams'
    rules refuse a change before writing anything (teams_voice raises VoiceError first), so a refusal
    leaves the tenant as it was and only the failed operation is written."""
    tenant_id, parameters = operation["_tenantId"], operation["_parameters"]
    held = tx.get("number", number_key(tenant_id, parameters["telephoneNumber"]))
    target = parameters.get("assignmentTargetId")
    replaced = [n["telephoneNumber"] for n in teams_voice.user_numbers(tx, tenant_id, target)
                if n["telephoneNumber"] != parameters["telephoneNumber"]] if operation["_action"] == "assignNumber" else []
    try:
        _run_change(tx, tenant_id, operation["_action"], parameters)
        error = None
    except teams_voice.VoiceError as exc:
        error = str(exc)
    status = "failed" if error else "succeeded"
    remaining = {n["telephoneNumber"] for n in teams_voice.user_numbers(tx, tenant_id, target)} if target else set()
    operation.update(status=status, numbers=[{**operation["numbers"][0], "status": status, "statusDetail": error}],
                     _holderBefore=held["assignmentTargetId"] if held else None, _completed=next(_SEQUENCE),
                     _replaced=[n for n in replaced if n not in remaining])
    tx.put("number_operation", operation["id"], operation, operation["_tenantId"])


def operation_log(tx: Transaction, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's number operations in the order they were accepted (admin view): each with the sequence numbers
    of its acceptance and completion (None: still running), its outcome, who held the number before it completed
    (`holderBefore`) and, for an assignment, the numbers it took from its user (`replaced`: a new primary number
    replaces the old one)."""
    operations = sorted(tx.list("number_operation", tenant_id), key=lambda o: o.get("_accepted") or 0)
    return [{"action": o["_action"], "telephoneNumber": o["_parameters"]["telephoneNumber"],
             "assignmentTargetId": o["_parameters"].get("assignmentTargetId"), "status": o["status"],
             "accepted": o.get("_accepted"), "completed": o.get("_completed"), "holderBefore": o.get("_holderBefore"),
             "replaced": o.get("_replaced", [])} for o in operations]


def _complete(emulator: Any, operation_id: str) -> None:
    """Finishes a number operation once: the timer, or the first read after its time. Both run on the
    event loop's thread (the handlers that call this are async), so they never interleave."""
    with emulator.store.transaction() as tx:
        operation = tx.get("number_operation", operation_id)
        if operation is not None and operation["status"] not in ("succeeded", "failed"):
            _finish(tx, operation)


def _start_operation(emulator: Any, caller: Caller, action: str, parameters: dict[str, Any]) -> Response:
    """Number changes are long-running operations in Graph: the request is accepted (202 + Location) and the
    operation runs for a while (faults: numberOperationMs, or 1-3 s with the microsoft profile), staying
    notStarted then running until it succeeds or fails. With no duration it is done before the answer."""
    seconds = emulator.faults.number_operation_seconds()
    with emulator.store.transaction() as tx:
        operation = _new_operation(tx, caller, action, parameters, seconds)
        if seconds <= 0:
            _finish(tx, operation)
    if seconds > 0:
        asyncio.get_running_loop().call_later(seconds, _complete, emulator, operation["id"])
    location = f"{emulator.settings.base_url}/v1.0/admin/teams/{_OPERATIONS}('{operation['id']}')"
    return Response(status_code=202, headers={"Location": location})


def _number_type(body: dict[str, Any]) -> str:
    number_type = body.get("numberType")
    if number_type not in teams_voice.NUMBER_TYPES:
        raise bad_request(f"Invalid value '{number_type}' for property 'numberType'.")
    return number_type


def _telephone_number(body: dict[str, Any]) -> str:
    """The request's telephoneNumber in E.164 (a Direct Routing ';ext=' kept); a bad one is a 400 at once."""
    number = body.get("telephoneNumber")
    if not isinstance(number, str) or not number:
        raise bad_request("The property 'telephoneNumber' is required.")
    try:
        return teams_voice.normalize_number(number)
    except teams_voice.VoiceError as exc:
        raise bad_request(str(exc)) from exc


@router.post("/telephoneNumberManagement/numberAssignments/assignNumber")
@router.post(f"/telephoneNumberManagement/numberAssignments/{_NS}.assignNumber")
async def assign_number(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *NUMBER_WRITE)
    body = await read_json(request)
    _only(body, "assignNumber", ("telephoneNumber", "assignmentTargetId", "numberType", "assignmentCategory",
                                 "locationId"))
    target = body.get("assignmentTargetId")
    if not isinstance(target, str) or not target:
        raise bad_request("The property 'assignmentTargetId' is required.")
    number = _telephone_number(body)
    number_type = _number_type(body)
    category = body.get("assignmentCategory") or "primary"
    if category not in teams_voice.ASSIGNMENT_CATEGORIES:
        raise bad_request(f"Invalid value '{category}' for property 'assignmentCategory'.")
    _strings_or_null(body, ("locationId",))
    with emulator.store.transaction() as tx:
        user = find_user(tx, caller.tenant_id, target)
        if user is None:
            raise not_found(target)
        location_id = _location(tx, caller, body.get("locationId"))
    # Whether Teams accepts the change (a number held by another user, an extension on a resource account)
    # is reported through the operation, as Graph does.
    return _start_operation(emulator, caller, "assignNumber", {
        "telephoneNumber": number, "assignmentTargetId": user["id"], "numberType": number_type,
        "assignmentCategory": category, "locationId": location_id})


def _only(body: dict[str, Any], action: str, parameters: tuple[str, ...]) -> None:
    """An action's body holds its parameters (CSDL) and nothing else."""
    unknown = sorted(set(body) - set(parameters))
    if unknown:
        raise bad_request(f"The property '{unknown[0]}' does not exist on type '{action}'.")


def _strings_or_null(body: dict[str, Any], names: tuple[str, ...]) -> None:
    """Edm.String parameters: a string or null, nothing else."""
    for key in names:
        if body.get(key) is not None and not isinstance(body[key], str):
            raise bad_request(f"Invalid value for property '{key}'.")


def _location(tx: Transaction, caller: Caller, location_id: str | None) -> str | None:
    """A number's emergency location: none, or a location of the tenant, as Set-CsPhoneNumberAssignment
    -LocationId requires it (emergency_addresses.require_location)."""
    if location_id is None:
        return None
    try:
        return emergency_addresses.require_location(tx, caller.tenant_id, location_id)
    except CmdletError as exc:
        raise bad_request(exc.message) from exc


@router.post("/telephoneNumberManagement/numberAssignments/unassignNumber")
@router.post(f"/telephoneNumberManagement/numberAssignments/{_NS}.unassignNumber")
async def unassign_number(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *NUMBER_WRITE)
    body = await read_json(request)
    number, number_type = _telephone_number(body), _number_type(body)
    return _start_operation(emulator, caller, "unassignNumber", {"telephoneNumber": number, "numberType": number_type})


_UPDATABLE = ("locationId", "networkSiteId", "reverseNumberLookupOptions")


@router.post("/telephoneNumberManagement/numberAssignments/updateNumber")
@router.post(f"/telephoneNumberManagement/numberAssignments/{_NS}.updateNumber")
async def update_number(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *NUMBER_WRITE)
    body = await read_json(request)
    number = _telephone_number(body)
    _only(body, "updateNumber", ("telephoneNumber", *_UPDATABLE))
    options = body.get("reverseNumberLookupOptions")
    if options is not None and (not isinstance(options, list) or not all(isinstance(o, str) for o in options)):
        raise bad_request("The property 'reverseNumberLookupOptions' must be a collection of strings.")
    _strings_or_null(body, ("locationId", "networkSiteId"))
    changes = {key: body[key] for key in _UPDATABLE if key in body}
    if changes.get("locationId") is not None:
        with emulator.store.transaction() as tx:
            changes["locationId"] = _location(tx, caller, changes["locationId"])
    return _start_operation(emulator, caller, "updateNumber", {"telephoneNumber": number, "changes": changes})


def _operation(operation_id: str, caller: Caller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *NUMBER_READ)
    with emulator.store.transaction() as tx:
        operation = tx.get("number_operation", operation_id)
    if operation is None or operation["_tenantId"] != caller.tenant_id:
        raise not_found(operation_id)
    now = clock.now()
    if operation["status"] not in ("succeeded", "failed"):
        if now >= operation["_completesAt"]:  # its time has come (the timer may not have fired yet)
            _complete(emulator, operation_id)
            with emulator.store.transaction() as tx:
                operation = tx.get("number_operation", operation_id)
        elif now - operation["_created"] >= (operation["_completesAt"] - operation["_created"]) / 4:
            # Queued for the first quarter of its time, then running.
            operation = {**operation, "status": "running",
                         "numbers": [{**operation["numbers"][0], "status": "running"}]}
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#admin/teams/telephoneNumberManagement/operations/$entity",
        **public(operation),
    }


@router.get("/telephoneNumberManagement/operations('{operation_id}')")
async def get_operation_by_key(operation_id: str, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    return _operation(operation_id, caller, emulator)


@router.get("/telephoneNumberManagement/operations/{operation_id}")
async def get_operation(operation_id: str, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    return _operation(operation_id, caller, emulator)


def _policy_assignments(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("value")
    if not isinstance(items, list) or not items:
        raise bad_request("The property 'value' must be a non-empty collection of teamsPolicyUserAssignment.")
    for item in items:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item[k] for k in ("userId", "policyType")):
            raise bad_request("Each assignment needs 'userId' and 'policyType'.")
        if item.get("@odata.type", _USER_ASSIGNMENT_TYPE) != _USER_ASSIGNMENT_TYPE:
            raise bad_request(f"Unsupported @odata.type '{item['@odata.type']}'.")
    return items


@router.post("/policy/userAssignments/assign", status_code=204)
@router.post(f"/policy/userAssignments/{_NS}.assign", status_code=204)
async def assign_policies(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *POLICY_WRITE)
    items = _policy_assignments(await read_json(request))
    with emulator.store.transaction() as tx:
        for item in items:
            if not isinstance(item.get("policyId"), str) or not item["policyId"]:
                raise bad_request("Each assignment needs a 'policyId'.")
            user = find_user(tx, caller.tenant_id, item["userId"])
            if user is None:
                raise not_found(item["userId"])
            teams_voice.assign_policy(tx, user, item["policyType"], item["policyId"])
    return Response(status_code=204)


@router.post("/policy/userAssignments/unassign", status_code=204)
@router.post(f"/policy/userAssignments/{_NS}.unassign", status_code=204)
async def unassign_policies(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *POLICY_WRITE)
    items = _policy_assignments(await read_json(request))
    with emulator.store.transaction() as tx:
        for item in items:
            user = find_user(tx, caller.tenant_id, item["userId"])
            if user is None:
                raise not_found(item["userId"])
            teams_voice.assign_policy(tx, user, item["policyType"], None)
    return Response(status_code=204)


@router.get("/policy/getPolicyId(type='{policy_type}',name='{name}')")
@router.get(f"/policy/{_NS}.getPolicyId(type='{{policy_type}}',name='{{name}}')")
async def get_policy_id(policy_type: str, name: str, caller: GraphCaller, emulator: EmulatorDep) -> JSONResponse:
    require(caller, *POLICY_WRITE, "TeamsPolicyUserAssign.Read.All")
    with emulator.store.transaction() as tx:
        if policy_type.lower() == voice_routing.VOICE_ROUTING_POLICY_TYPE.lower():
            # Online voice routing policies are the tenant's own objects: only an existing per-user one has an id.
            try:
                identifier, name = voice_routing.grant_policy_identifier(tx, caller.tenant_id, name)
            except CmdletError as exc:
                raise GraphError(404, "NotFound", exc.message) from exc
        else:
            identifier = teams_voice.register_policy(tx, caller.tenant_id, policy_type, name)
    return JSONResponse(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.teamsAdministration.policyIdentifierDetail)",
            "value": [{"id": identifier, "name": name, "policyId": identifier}],
        }
    )
