"""Every property the emulator returns exists on Microsoft's Graph v1.0 type with a compatible JSON type."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_support import Tenant

SCHEMA_PATH = Path("/work/shared/microsoft/graph-v1.0-entities-subset.json")
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "Edm.String": (str,),
    "Edm.Guid": (str,),
    "Edm.DateTimeOffset": (str,),
    "Edm.Boolean": (bool,),
    "Edm.Int32": (int,),
    "Edm.Int64": (int,),
}

pytestmark = pytest.mark.skipif(not SCHEMA_PATH.exists(), reason="Graph schema subset not available")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def _qualified(type_name: str) -> str:
    if type_name.startswith("microsoft."):
        return type_name
    return "microsoft." + type_name if type_name.startswith("graph.") else "microsoft.graph." + type_name


def _properties(schema: dict[str, Any], type_name: str) -> dict[str, Any]:
    """Structural properties plus navigation properties (present when $expand-ed), inherited included."""
    definition = schema[_qualified(type_name)]
    inherited = _properties(schema, definition["baseType"]) if definition.get("baseType") else {}
    navigation = {name: {"type": target, "nullable": True} for name, target in definition.get("navigation", {}).items()}
    return {**inherited, **navigation, **definition.get("properties", {})}


def _check_value(schema: dict[str, Any], type_name: str, value: Any, path: str) -> None:
    if type_name.startswith("Collection("):
        assert isinstance(value, list), f"{path}: expected a collection"
        for index, item in enumerate(value):
            _check_value(schema, type_name[len("Collection(") : -1], item, f"{path}[{index}]")
        return
    if type_name in _PRIMITIVES:
        assert isinstance(value, _PRIMITIVES[type_name]), f"{path}: {value!r} is not {type_name}"
        assert not (type_name.startswith("Edm.Int") and isinstance(value, bool)), f"{path}: bool for {type_name}"
        return
    definition = schema.get(_qualified(type_name))
    if definition is None:  # an enum or complex type outside the subset (e.g. longRunningOperationStatus)
        assert isinstance(value, (str, dict)), f"{path}: unexpected {value!r} for {type_name}"
        return
    if definition["kind"] == "EnumType":
        assert value in definition["members"], f"{path}: {value!r} not in {type_name}"
        return
    assert isinstance(value, dict), f"{path}: expected an object of {type_name}"
    check_object(schema, type_name, value, path)


def check_object(schema: dict[str, Any], type_name: str, document: dict[str, Any], path: str = "") -> None:
    properties = _properties(schema, type_name)
    for name, value in document.items():
        if name.startswith("@odata."):
            continue
        assert name in properties, f"{path or type_name}.{name} is not a property of {type_name}"
        declared = properties[name]
        if value is None:
            assert declared["nullable"], f"{path or type_name}.{name} is null but not nullable"
            continue
        _check_value(schema, declared["type"], value, f"{path or type_name}.{name}")


def test_directory_objects_conform(schema: dict[str, Any], graph: httpx.Client, tenant: Tenant) -> None:
    all_user_fields = "id,accountEnabled,displayName,givenName,surname,userPrincipalName,mail,mailNickname,jobTitle,department,businessPhones,mobilePhone,officeLocation,preferredLanguage,usageLocation,userType,assignedLicenses,createdDateTime,deletedDateTime,city,country,companyName,employeeId,postalCode,state,streetAddress,faxNumber,onPremisesSyncEnabled,onPremisesImmutableId"
    for user in graph.get(f"/users?$top=5&$select={all_user_fields}").json()["value"]:
        check_object(schema, "graph.user", user)
    check_object(schema, "graph.user", graph.get(f"/users/{tenant.admin_id}").json())
    for group in graph.get("/groups").json()["value"]:
        check_object(schema, "graph.group", group)
    for domain in graph.get("/domains").json()["value"]:
        check_object(schema, "graph.domain", domain)
    for organization in graph.get("/organization").json()["value"]:
        check_object(schema, "graph.organization", organization)
    for item in graph.get(f"/users/{tenant.admin_id}/memberOf").json()["value"]:
        type_name = "graph." + item["@odata.type"].rsplit(".", 1)[-1]
        check_object(schema, type_name, item)
    roles = graph.get("/directoryRoles").json()["value"]
    for role in roles:
        check_object(schema, "graph.directoryRole", role)
    global_admin = next(r for r in roles if r["roleTemplateId"] == "62e90394-69f5-4237-9190-012177145e10")
    members = graph.get(f"/directoryRoles/{global_admin['id']}/members").json()["value"]
    assert [m["id"] for m in members] == [tenant.admin_id]
    for member in members:
        check_object(schema, "graph.user", member)
    for sku in graph.get("/subscribedSkus").json()["value"]:
        check_object(schema, "graph.subscribedSku", sku)
    for detail in graph.get(f"/users/{tenant.admin_id}/licenseDetails").json()["value"]:
        check_object(schema, "graph.licenseDetails", detail)


def test_teams_objects_conform(schema: dict[str, Any], graph: httpx.Client, tenant: Tenant) -> None:
    response = graph.post(
        "/admin/teams/telephoneNumberManagement/numberAssignments/assignNumber",
        json={"telephoneNumber": "+15551230000", "assignmentTargetId": tenant.admin_id, "numberType": "directRouting"},
    )
    check_object(schema, "teamsAdministration.telephoneNumberLongRunningOperation", graph.get(response.headers["location"]).json())
    graph.post(
        "/admin/teams/policy/userAssignments/assign",
        json={"value": [{"userId": tenant.admin_id, "policyType": "onlineVoiceRoutingPolicy", "policyId": "p1"}]},
    )
    for configuration in graph.get("/admin/teams/userConfigurations?$top=20").json()["value"]:
        check_object(schema, "teamsAdministration.teamsUserConfiguration", configuration)
    for number in graph.get("/admin/teams/telephoneNumberManagement/numberAssignments").json()["value"]:
        check_object(schema, "teamsAdministration.numberAssignment", number)
