"""Graph v1.0 teamsAdministration: user configurations, number assignment operations, policy assignment."""

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .. import clock, teams_voice
from ..context import EmulatorDep
from ..directory import find_user
from ..store import Document, Transaction, public
from .auth import Caller, GraphCaller, require
from .errors import bad_request, not_found, read_json
from .query import collection, filter_predicate

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


@router.get("/userConfigurations")
def list_user_configurations(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *CONFIGURATION_READ)
    predicate = filter_predicate(request)
    with emulator.store.transaction() as tx:
        held = teams_voice.numbers_by_user(tx, caller.tenant_id)
        configurations = [teams_voice.user_configuration(tx, user, held) for user in tx.list("user", caller.tenant_id)]
    configurations = [c for c in configurations if predicate is None or predicate(c)]
    return collection(
        request, emulator.settings.base_url, "admin/teams/userConfigurations", configurations, lambda doc: doc
    )


@router.get("/userConfigurations/{user_id}")
def get_user_configuration(user_id: str, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *CONFIGURATION_READ)
    with emulator.store.transaction() as tx:
        user = find_user(tx, caller.tenant_id, user_id)
        if user is None:
            raise not_found(user_id)
        configuration = teams_voice.user_configuration(tx, user)
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#admin/teams/userConfigurations/$entity",
        **configuration,
    }


@router.get("/telephoneNumberManagement/numberAssignments")
def list_number_assignments(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
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


def _record_operation(tx: Transaction, caller: Caller, error: str | None) -> Document:
    """Number changes are long-running operations in Graph; the emulator completes them at once and
    records the outcome for the client to poll."""
    operation = {
        "id": str(uuid.uuid4()),
        "createdDateTime": clock.iso_now(),
        "status": "failed" if error else "succeeded",
        "numbers": [{"resourceLocation": None, "status": "failed" if error else "succeeded", "statusDetail": error}],
        "_tenantId": caller.tenant_id,
    }
    tx.put("number_operation", operation["id"], operation, caller.tenant_id)
    return operation


def _accepted(emulator_base: str, operation: Document) -> Response:
    location = f"{emulator_base}/v1.0/admin/teams/{_OPERATIONS}('{operation['id']}')"
    return Response(status_code=202, headers={"Location": location})


def _number_type(body: dict[str, Any]) -> str:
    number_type = body.get("numberType")
    if number_type not in teams_voice.NUMBER_TYPES:
        raise bad_request(f"Invalid value '{number_type}' for property 'numberType'.")
    return number_type


@router.post("/telephoneNumberManagement/numberAssignments/assignNumber")
@router.post(f"/telephoneNumberManagement/numberAssignments/{_NS}.assignNumber")
async def assign_number(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *NUMBER_WRITE)
    body = await read_json(request)
    number, target = body.get("telephoneNumber"), body.get("assignmentTargetId")
    if not isinstance(number, str) or not number or not isinstance(target, str) or not target:
        raise bad_request("The properties 'telephoneNumber' and 'assignmentTargetId' are required.")
    number_type = _number_type(body)
    category = body.get("assignmentCategory") or "primary"
    if category not in teams_voice.ASSIGNMENT_CATEGORIES:
        raise bad_request(f"Invalid value '{category}' for property 'assignmentCategory'.")
    with emulator.store.transaction() as tx:
        user = find_user(tx, caller.tenant_id, target)
        if user is None:
            raise not_found(target)
        try:
            teams_voice.assign_number(tx, user, number, number_type, category, body.get("locationId"))
            error = None
        except teams_voice.VoiceError as exc:
            error = str(exc)
    # The failure is reported through the operation, as Graph does; recorded after the rollback.
    with emulator.store.transaction() as tx:
        operation = _record_operation(tx, caller, error)
    return _accepted(emulator.settings.base_url, operation)


@router.post("/telephoneNumberManagement/numberAssignments/unassignNumber")
@router.post(f"/telephoneNumberManagement/numberAssignments/{_NS}.unassignNumber")
async def unassign_number(request: Request, caller: GraphCaller, emulator: EmulatorDep) -> Response:
    require(caller, *NUMBER_WRITE)
    body = await read_json(request)
    number = body.get("telephoneNumber")
    if not isinstance(number, str) or not number:
        raise bad_request("The property 'telephoneNumber' is required.")
    _number_type(body)
    error = None
    with emulator.store.transaction() as tx:
        try:
            teams_voice.unassign_number(tx, caller.tenant_id, number)
        except teams_voice.VoiceError as exc:
            error = str(exc)
    with emulator.store.transaction() as tx:
        operation = _record_operation(tx, caller, error)
    return _accepted(emulator.settings.base_url, operation)


def _operation(operation_id: str, caller: Caller, emulator: EmulatorDep) -> dict[str, Any]:
    require(caller, *NUMBER_READ)
    with emulator.store.transaction() as tx:
        operation = tx.get("number_operation", operation_id)
    if operation is None or operation["_tenantId"] != caller.tenant_id:
        raise not_found(operation_id)
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#admin/teams/telephoneNumberManagement/operations/$entity",
        **public(operation),
    }


@router.get("/telephoneNumberManagement/operations('{operation_id}')")
def get_operation_by_key(operation_id: str, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
    return _operation(operation_id, caller, emulator)


@router.get("/telephoneNumberManagement/operations/{operation_id}")
def get_operation(operation_id: str, caller: GraphCaller, emulator: EmulatorDep) -> dict[str, Any]:
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
def get_policy_id(policy_type: str, name: str, caller: GraphCaller, emulator: EmulatorDep) -> JSONResponse:
    require(caller, *POLICY_WRITE, "TeamsPolicyUserAssign.Read.All")
    with emulator.store.transaction() as tx:
        identifier = teams_voice.register_policy(tx, caller.tenant_id, policy_type, name)
    return JSONResponse(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.teamsAdministration.policyIdentifierDetail)",
            "value": [{"id": identifier, "name": name, "policyId": identifier}],
        }
    )
