"""Teams voice through Graph's teamsAdministration and the PowerShell stand-in: one shared state."""

import httpx
import pytest
from emulator_support import App, Tenant, app_token


@pytest.fixture(scope="module")
def users(graph: httpx.Client) -> list[dict]:
    return graph.get("/users?$top=10&$filter=usageLocation eq 'GB'").json()["value"]


def _operation(graph: httpx.Client, response: httpx.Response) -> dict:
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert "/v1.0/admin/teams/telephoneNumberManagement/operations('" in location
    return graph.get(location).json()


def test_user_configurations_reflect_number_and_policy_assignment(graph: httpx.Client, users: list[dict]) -> None:
    first, second = users[0]["id"], users[1]["id"]
    configuration = graph.get(f"/admin/teams/userConfigurations/{first}").json()
    assert configuration["isEnterpriseVoiceEnabled"] is False and configuration["telephoneNumbers"] == []
    assert configuration["accountType"] == "user"

    assign = {"telephoneNumber": "+442071234567", "assignmentTargetId": first, "numberType": "directRouting", "assignmentCategory": "primary"}
    operation = _operation(graph, graph.post("/admin/teams/telephoneNumberManagement/numberAssignments/assignNumber", json=assign))
    assert operation["status"] == "succeeded"
    configuration = graph.get(f"/admin/teams/userConfigurations/{first}").json()
    assert configuration["isEnterpriseVoiceEnabled"] is True
    assert configuration["telephoneNumbers"] == [{"telephoneNumber": "+442071234567", "assignmentCategory": "primary"}]

    taken = _operation(
        graph,
        graph.post("/admin/teams/telephoneNumberManagement/numberAssignments/assignNumber", json={**assign, "assignmentTargetId": second}),
    )
    assert taken["status"] == "failed"
    assert "has already been assigned to another user" in taken["numbers"][0]["statusDetail"]

    numbers = graph.get("/admin/teams/telephoneNumberManagement/numberAssignments").json()["value"]
    assert any(n["telephoneNumber"] == "+442071234567" and n["assignmentTargetId"] == first for n in numbers)

    policy = {"@odata.type": "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment", "userId": first,
              "policyType": "teamsMeetingPolicy", "policyId": "c7a5d3a6-0000-4000-8000-000000000001"}
    assert graph.post("/admin/teams/policy/userAssignments/assign", json={"value": [policy]}).status_code == 204
    effective = graph.get(f"/admin/teams/userConfigurations/{first}").json()["effectivePolicyAssignments"]
    assert effective[0]["policyType"] == "teamsMeetingPolicy"
    assert effective[0]["policyAssignment"]["assignmentType"] == "direct"
    assert graph.post("/admin/teams/policy/userAssignments/unassign", json={"value": [policy]}).status_code == 204
    assert graph.get(f"/admin/teams/userConfigurations/{first}").json()["effectivePolicyAssignments"] == []

    released = _operation(
        graph,
        graph.post("/admin/teams/telephoneNumberManagement/numberAssignments/unassignNumber",
                   json={"telephoneNumber": "+442071234567", "numberType": "directRouting"}),
    )
    assert released["status"] == "succeeded"
    assert graph.get(f"/admin/teams/userConfigurations/{first}").json()["isEnterpriseVoiceEnabled"] is False
    page = graph.get("/admin/teams/userConfigurations?$top=5").json()
    assert len(page["value"]) == 5 and "@odata.nextLink" in page


def test_cmdlets_share_state_with_graph(pwsh, graph: httpx.Client, users: list[dict]) -> None:
    upn, other = users[2]["userPrincipalName"], users[3]["userPrincipalName"]
    assert pwsh("New-CsOnlineVoiceRoutingPolicy", Identity="BE-International").status_code == 200
    assert pwsh("Set-CsPhoneNumberAssignment", Identity=upn, PhoneNumber="+3225551234", PhoneNumberType="DirectRouting").json() == {"output": []}
    assert pwsh("Grant-CsOnlineVoiceRoutingPolicy", Identity=upn, PolicyName="BE-International").status_code == 200
    online = pwsh("Get-CsOnlineUser", Identity=upn).json()["output"][0]
    assert online["EnterpriseVoiceEnabled"] is True and online["LineUri"] == "tel:+3225551234"
    assert online["OnlineVoiceRoutingPolicy"] == "BE-International" and online["UserPrincipalName"] == upn

    configuration = graph.get(f"/admin/teams/userConfigurations/{upn}").json()
    assert configuration["telephoneNumbers"][0]["telephoneNumber"] == "+3225551234"
    assert configuration["effectivePolicyAssignments"][0]["policyAssignment"]["displayName"] == "BE-International"

    taken = pwsh("Set-CsPhoneNumberAssignment", Identity=other, PhoneNumber="+3225551234", PhoneNumberType="DirectRouting")
    assert taken.status_code == 400
    assert taken.json()["error"]["message"] == "Telephone Number '+3225551234' has already been assigned to another user"

    assert pwsh("Grant-CsOnlineVoiceRoutingPolicy", Identity=upn, PolicyName=None).status_code == 200
    assert pwsh("Get-CsOnlineUser", Identity=upn).json()["output"][0]["OnlineVoiceRoutingPolicy"] is None
    assert pwsh("Remove-CsPhoneNumberAssignment", Identity=upn, RemoveAll=True).status_code == 200
    online = pwsh("Get-CsOnlineUser", Identity=upn).json()["output"][0]
    assert online["EnterpriseVoiceEnabled"] is False and online["LineUri"] is None

    assert pwsh("Set-CsPhoneNumberAssignment", Identity=other, EnterpriseVoiceEnabled=True).status_code == 200
    assert graph.get(f"/admin/teams/userConfigurations/{other}").json()["isEnterpriseVoiceEnabled"] is True


def test_cmdlet_errors(pwsh, http: httpx.Client, users: list[dict]) -> None:
    unknown = pwsh("Get-CsNothing").json()["error"]
    assert unknown["errorId"] == "CommandNotFoundException"
    assert unknown["message"].startswith("The term 'Get-CsNothing' is not recognized as a name of a cmdlet")
    parameter = pwsh("Get-CsOnlineUser", Bogus=1).json()["error"]
    assert parameter["errorId"].startswith("NamedParameterNotFound")
    assert parameter["message"] == "A parameter cannot be found that matches parameter name 'Bogus'."
    bad_type = pwsh("Set-CsPhoneNumberAssignment", Identity=users[4]["id"], PhoneNumber="+3225550000", PhoneNumberType="Pstn")
    assert bad_type.json()["error"]["errorId"].startswith("ParameterArgumentValidationError")
    missing = pwsh("Get-CsOnlineUser", Identity="ghost@contoso.example").json()["error"]
    assert missing["category"] == "ObjectNotFound"
    assert http.post("/_powershell/invoke", json={"cmdlet": "Get-CsOnlineUser"}).status_code == 401


def test_graph_token_is_refused_by_cmdlet_endpoint(http: httpx.Client, tenant: Tenant, consented_app: App) -> None:
    graph_token = app_token(http, tenant, consented_app)
    response = http.post("/_powershell/invoke", json={"cmdlet": "Get-CsOnlineUser"}, headers={"Authorization": f"Bearer {graph_token}"})
    assert response.status_code == 401
