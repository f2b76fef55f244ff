"""Direct Routing configuration and resource accounts through the emulated MicrosoftTeams cmdlets."""

import httpx
import pytest
from emulator_support import Tenant

AUTO_ATTENDANT = "ce933385-9390-45d1-9512-c8d228074e07"
CALL_QUEUE = "11cd3e2e-fccb-42ad-ad00-878b93575e07"
VIRTUAL_USER = "440eaaa8-b3e0-484b-a8be-62870b9ba70a"


def _ok(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["output"]


def _error(response: httpx.Response) -> dict:
    assert response.status_code == 400, response.text
    return response.json()["error"]


def test_pstn_gateways(pwsh, tenant: Tenant) -> None:
    created = _ok(pwsh("New-CsOnlinePSTNGateway", Fqdn="SBC1.contoso.example", SipSignalingPort=5061, MaxConcurrentSessions=100, ForwardPai=True))[0]
    assert created["Identity"] == created["Fqdn"] == "sbc1.contoso.example"
    assert created["Enabled"] is False and created["SipSignalingPort"] == 5061 and created["ForwardPai"] is True
    assert created["SendSipOptions"] is True and created["FailoverTimeSeconds"] == 10
    duplicate = _error(pwsh("New-CsOnlinePSTNGateway", Fqdn="sbc1.contoso.example", SipSignalingPort=5061))
    assert "already exists" in duplicate["message"]
    foreign = _error(pwsh("New-CsOnlinePSTNGateway", Fqdn="sbc.fabrikam.example", SipSignalingPort=5061))
    assert foreign["message"] == 'Can not use the "sbc.fabrikam.example" domain as it was not configured for this tenant.'
    initial = _error(pwsh("New-CsOnlinePSTNGateway", Fqdn="sbc.contoso.onmicrosoft.com", SipSignalingPort=5061))
    assert "not configured for this tenant" in initial["message"]
    assert _error(pwsh("New-CsOnlinePSTNGateway", Fqdn="sbc9.contoso.example"))["errorId"].startswith("MissingMandatoryParameter")
    bad_port = _error(pwsh("New-CsOnlinePSTNGateway", Fqdn="sbc9.contoso.example", SipSignalingPort=70000))
    assert bad_port["errorId"].startswith("ParameterArgumentValidationError")
    assert _error(pwsh("New-CsOnlinePSTNGateway", Fqdn="sbc9.contoso.example", SipSignalingPort=5061, Colour="red"))["errorId"].startswith("NamedParameterNotFound")

    assert _ok(pwsh("New-CsOnlinePSTNGateway", Identity="sbc2.contoso.example", SipSignalingPort=5067, Enabled=True))[0]["Enabled"] is True
    assert _ok(pwsh("Set-CsOnlinePSTNGateway", Identity="sbc1.contoso.example", Enabled=True, MaxConcurrentSessions=None)) == []
    one = _ok(pwsh("Get-CsOnlinePSTNGateway", Identity="SBC1.contoso.example"))[0]
    assert one["Enabled"] is True and one["MaxConcurrentSessions"] is None and one["ForwardPai"] is True
    assert {g["Identity"] for g in _ok(pwsh("Get-CsOnlinePSTNGateway"))} == {"sbc1.contoso.example", "sbc2.contoso.example"}
    assert _ok(pwsh("Remove-CsOnlinePSTNGateway", Identity="sbc2.contoso.example")) == []
    assert _error(pwsh("Get-CsOnlinePSTNGateway", Identity="sbc2.contoso.example"))["category"] == "ObjectNotFound"


def test_usages_routes_and_policies(pwsh, http: httpx.Client, tenant: Tenant, graph: httpx.Client) -> None:
    _ok(pwsh("New-CsOnlinePSTNGateway", Fqdn="sbc-routes.contoso.example", SipSignalingPort=5061))
    assert _ok(pwsh("Set-CsOnlinePstnUsage", Identity="Global", Usage={"Add": ["BE-Local", "BE-Intl"]})) == []
    assert _ok(pwsh("Set-CsOnlinePstnUsage", Usage={"add": "Spare"})) == []
    assert _ok(pwsh("Set-CsOnlinePstnUsage", Identity="global", Usage={"Remove": "Spare"})) == []
    assert _ok(pwsh("Get-CsOnlinePstnUsage")) == [{"Identity": "Global", "Usage": ["BE-Local", "BE-Intl"]}]

    unknown_usage = _error(pwsh("New-CsOnlineVoiceRoute", Identity="r0", NumberPattern="^\\+32", OnlinePstnUsages="Nope"))
    assert '"Nope"' in unknown_usage["message"]
    unknown_gateway = _error(pwsh("New-CsOnlineVoiceRoute", Identity="r0", OnlinePstnGatewayList={"Add": "ghost.contoso.example"}))
    assert "ghost.contoso.example" in unknown_gateway["message"]
    bad_regex = _error(pwsh("New-CsOnlineVoiceRoute", Identity="r0", NumberPattern="^(\\+32"))
    assert bad_regex["errorId"].startswith("ParameterArgumentValidationError")

    local = _ok(pwsh("New-CsOnlineVoiceRoute", Identity="BE-Local", NumberPattern="^\\+32\\d{8}$",
                     OnlinePstnGatewayList={"Add": "sbc-routes.contoso.example"}, OnlinePstnUsages="BE-Local",
                     Description="Belgium"))[0]
    assert local == {"Identity": "BE-Local", "Priority": 0, "Description": "Belgium", "NumberPattern": "^\\+32\\d{8}$",
                     "OnlinePstnUsages": ["BE-Local"], "OnlinePstnGatewayList": ["sbc-routes.contoso.example"],
                     "BridgeSourcePhoneNumber": None, "Name": "BE-Local"}
    _ok(pwsh("New-CsOnlineVoiceRoute", Identity="BE-Intl", NumberPattern=".*", OnlinePstnUsages=["BE-Intl"],
             OnlinePstnGatewayList=["sbc-routes.contoso.example"]))
    _ok(pwsh("New-CsOnlineVoiceRoute", Identity="Emergency", NumberPattern="^\\+?112$", Priority=0, OnlinePstnUsages="BE-Local"))
    assert [(r["Identity"], r["Priority"]) for r in _ok(pwsh("Get-CsOnlineVoiceRoute"))] == [("Emergency", 0), ("BE-Local", 1), ("BE-Intl", 2)]
    assert _error(pwsh("New-CsOnlineVoiceRoute", Identity="be-local"))["errorId"] == "DuplicateKeyException"
    _ok(pwsh("Set-CsOnlineVoiceRoute", Identity="BE-Intl", OnlinePstnUsages={"Add": "BE-Local"}, Description="All"))
    assert _ok(pwsh("Get-CsOnlineVoiceRoute", Identity="BE-Intl"))[0]["OnlinePstnUsages"] == ["BE-Intl", "BE-Local"]
    in_use = _error(pwsh("Remove-CsOnlinePSTNGateway", Identity="sbc-routes.contoso.example"))
    assert "BE-Local" in in_use["message"]

    policy = _ok(pwsh("New-CsOnlineVoiceRoutingPolicy", Identity="BE-Users", OnlinePstnUsages=["BE-Local", "BE-Intl"], Description="Belgian users"))[0]
    assert policy == {"Identity": "Tag:BE-Users", "OnlinePstnUsages": ["BE-Local", "BE-Intl"], "Description": "Belgian users", "RouteType": "BYOT"}
    assert _error(pwsh("New-CsOnlineVoiceRoutingPolicy", Identity="Tag:BE-Users"))["errorId"] == "DuplicateKeyException"
    assert _error(pwsh("New-CsOnlineVoiceRoutingPolicy", Identity="X", OnlinePstnUsages="Nope"))["category"] == "InvalidArgument"
    identities = [p["Identity"] for p in _ok(pwsh("Get-CsOnlineVoiceRoutingPolicy"))]
    assert identities[0] == "Global" and "Tag:BE-Users" in identities
    tagged = [p["Identity"] for p in _ok(pwsh("Get-CsOnlineVoiceRoutingPolicy", Filter="tag:*"))]
    assert "Tag:BE-Users" in tagged and "Global" not in tagged
    _ok(pwsh("Set-CsOnlineVoiceRoutingPolicy", Identity="Global", OnlinePstnUsages={"Add": "BE-Local"}))
    assert _ok(pwsh("Get-CsOnlineVoiceRoutingPolicy", Identity="Global"))[0]["OnlinePstnUsages"] == ["BE-Local"]
    still_used = _error(pwsh("Set-CsOnlinePstnUsage", Usage={"Remove": "BE-Intl"}))
    assert "BE-Intl" in still_used["message"] and "Tag:BE-Users" in still_used["message"]

    user = graph.get("/users?$top=1&$filter=usageLocation eq 'BE'").json()["value"][0]
    missing = _error(pwsh("Grant-CsOnlineVoiceRoutingPolicy", Identity=user["id"], PolicyName="Nope"))
    assert missing["message"] == 'Policy "Nope" is not a user policy. You can assign only a policy that has per-user scope.'
    _ok(pwsh("Grant-CsOnlineVoiceRoutingPolicy", Identity=user["id"], PolicyName="Tag:BE-Users"))
    effective = graph.get(f"/admin/teams/userConfigurations/{user['id']}").json()["effectivePolicyAssignments"]
    voice = [e for e in effective if e["policyType"] == "onlineVoiceRoutingPolicy"]
    assert voice and voice[0]["policyAssignment"]["displayName"] == "BE-Users"
    lookup = graph.get("/admin/teams/policy/getPolicyId(type='onlineVoiceRoutingPolicy',name='BE-Users')").json()
    assert lookup["value"][0]["policyId"] == voice[0]["policyAssignment"]["policyId"]
    assert _ok(pwsh("Get-CsOnlineUser", Identity=user["id"]))[0]["OnlineVoiceRoutingPolicy"] == "BE-Users"
    # An object id is a GUID, found in any case, by Teams PowerShell and by Graph alike (it was "not found" in capitals)
    assert _ok(pwsh("Get-CsOnlineUser", Identity=user["id"].upper()))[0]["Identity"] == user["id"]
    assert graph.get(f"/users/{user['id'].upper()}").json()["id"] == user["id"]
    assert "assigned to 1 user" in _error(pwsh("Remove-CsOnlineVoiceRoutingPolicy", Identity="BE-Users"))["message"]

    voice_state = http.get(f"/_admin/tenants/{tenant.tenant_id}/voice").json()
    assert voice_state["usages"] == ["BE-Local", "BE-Intl"]
    assert [r["Identity"] for r in voice_state["routes"]] == ["Emergency", "BE-Local", "BE-Intl"]
    assert {"userId": user["id"], "policyType": "onlineVoiceRoutingPolicy", "policyName": "BE-Users",
            "policyId": voice[0]["policyAssignment"]["policyId"]} in voice_state["grants"]

    _ok(pwsh("Grant-CsOnlineVoiceRoutingPolicy", Identity=user["id"], PolicyName=None))
    assert _ok(pwsh("Remove-CsOnlineVoiceRoutingPolicy", Identity="Tag:BE-Users")) == []
    assert _ok(pwsh("Remove-CsOnlineVoiceRoute", Identity="Emergency")) == []
    assert [(r["Identity"], r["Priority"]) for r in _ok(pwsh("Get-CsOnlineVoiceRoute"))] == [("BE-Local", 0), ("BE-Intl", 1)]


def test_resource_accounts(pwsh, graph: httpx.Client, http: httpx.Client, tenant: Tenant) -> None:
    bad_app = _error(pwsh("New-CsOnlineApplicationInstance", UserPrincipalName="ra-bad@contoso.example",
                          ApplicationId="aaaaaaaa-0000-0000-0000-000000000000", DisplayName="Bad"))
    assert AUTO_ATTENDANT in bad_app["message"]
    foreign = _error(pwsh("New-CsOnlineApplicationInstance", UserPrincipalName="ra@fabrikam.example", ApplicationId=CALL_QUEUE))
    assert "verified domain" in foreign["message"]
    created = _ok(pwsh("New-CsOnlineApplicationInstance", UserPrincipalName="aa-main@contoso.example",
                       ApplicationId=AUTO_ATTENDANT, DisplayName="Main Auto Attendant"))[0]
    assert created["UserPrincipalName"] == "aa-main@contoso.example" and created["ApplicationId"] == AUTO_ATTENDANT
    assert created["DisplayName"] == "Main Auto Attendant" and created["PhoneNumber"] is None
    object_id = created["ObjectId"]
    assert _error(pwsh("New-CsOnlineApplicationInstance", UserPrincipalName="aa-main@contoso.example", ApplicationId=AUTO_ATTENDANT))["category"] == "ResourceExists"

    user = graph.get(f"/users/{object_id}?$select=id,accountEnabled,displayName").json()
    assert user == {"@odata.context": user["@odata.context"], "id": object_id, "accountEnabled": False, "displayName": "Main Auto Attendant"}
    assert graph.get(f"/admin/teams/userConfigurations/{object_id}").json()["accountType"] == "resourceAccount"
    assert _ok(pwsh("Get-CsOnlineUser", Identity=object_id))[0]["AccountType"] == "ResourceAccount"

    _ok(pwsh("Set-CsOnlineApplicationInstance", Identity="aa-main@contoso.example", DisplayName="Reception", ApplicationId=CALL_QUEUE))
    fetched = _ok(pwsh("Get-CsOnlineApplicationInstance", Identity=object_id))[0]
    assert fetched["DisplayName"] == "Reception" and fetched["ApplicationId"] == CALL_QUEUE
    assert graph.get(f"/users/{object_id}").json()["displayName"] == "Reception"
    assert object_id in [i["ObjectId"] for i in _ok(pwsh("Get-CsOnlineApplicationInstance"))]
    ordinary = graph.get("/users?$top=1&$filter=usageLocation eq 'US'").json()["value"][0]["id"]
    assert _error(pwsh("Get-CsOnlineApplicationInstance", Identity=ordinary))["category"] == "ObjectNotFound"

    # Created with an ApplicationId, the instance is already mapped; a second mapping is refused.
    assert _error(pwsh("Sync-CsOnlineApplicationInstance", ObjectId=object_id))["message"] == "An item with the same key has already been added."
    _ok(pwsh("Sync-CsOnlineApplicationInstance", ObjectId=object_id, ApplicationId="00000000-0000-0000-0000-000000000000"))
    assert _ok(pwsh("Sync-CsOnlineApplicationInstance", ObjectId=object_id)) == []

    unlicensed = _error(pwsh("Set-CsPhoneNumberAssignment", Identity=object_id, PhoneNumber="+3225559000", PhoneNumberType="DirectRouting"))
    assert "PHONESYSTEM_VIRTUALUSER" in unlicensed["message"]
    assert graph.patch(f"/users/{object_id}", json={"usageLocation": "BE"}).status_code == 204
    licensed = graph.post(f"/users/{object_id}/assignLicense", json={"addLicenses": [{"skuId": VIRTUAL_USER}], "removeLicenses": []})
    assert licensed.status_code == 200, licensed.text
    extension = _error(pwsh("Set-CsPhoneNumberAssignment", Identity=object_id, PhoneNumber="+3225559000;ext=12", PhoneNumberType="DirectRouting"))
    assert "extension" in extension["message"]
    _ok(pwsh("Set-CsPhoneNumberAssignment", Identity=object_id, PhoneNumber="+3225559000", PhoneNumberType="DirectRouting"))
    assert _ok(pwsh("Get-CsOnlineApplicationInstance", Identity=object_id))[0]["PhoneNumber"] == "tel:+3225559000"
    instances = http.get(f"/_admin/tenants/{tenant.tenant_id}/voice").json()["applicationInstances"]
    assert any(i["ObjectId"] == object_id and i["PhoneNumber"] == "tel:+3225559000" for i in instances)

    assert graph.delete(f"/users/{object_id}").status_code == 204
    assert _error(pwsh("Get-CsOnlineApplicationInstance", Identity=object_id))["category"] == "ObjectNotFound"
    assert object_id not in [i["ObjectId"] for i in _ok(pwsh("Get-CsOnlineApplicationInstance"))]


@pytest.mark.parametrize("cmdlet", ["New-CsOnlineVoiceRoute", "New-CsOnlineVoiceRoutingPolicy", "Set-CsOnlinePstnUsage"])
def test_unknown_parameters_are_refused(pwsh, cmdlet: str) -> None:
    error = _error(pwsh(cmdlet, Identity="x", Nonsense=True))
    assert error["errorId"] == f"NamedParameterNotFound,{cmdlet}"


def test_a_resource_accounts_upn_follows_entras_rule(pwsh, tenant: Tenant) -> None:
    """A resource account is an Entra user: its userPrincipalName takes the characters Graph's POST /users does
    (A-Z a-z 0-9 ' . - _ ! # ^ ~ before the @; graph-and-teams-notes 1.3). The cmdlet took any name with an @."""
    for name in ("a+b", "é", "a/b", "a b", "a,b"):
        refused = _error(pwsh("New-CsOnlineApplicationInstance", UserPrincipalName=f"{name}@{tenant.domain}",
                              ApplicationId=CALL_QUEUE, DisplayName="Queue"))
        assert refused["category"] == "InvalidArgument" and "not a valid user principal name" in refused["message"], refused
    created = _ok(pwsh("New-CsOnlineApplicationInstance", UserPrincipalName=f"o'neil.q-1_!#^~@{tenant.domain}",
                       ApplicationId=CALL_QUEUE, DisplayName="Queue"))[0]
    assert created["UserPrincipalName"] == f"o'neil.q-1_!#^~@{tenant.domain}"
