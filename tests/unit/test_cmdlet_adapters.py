"""The cmdlet adapters behind the resource-account, emergency-location and Teams-administration ports: what each
port call sends to Teams PowerShell (cmdlet and parameters as data) and how Teams' output is read back."""

from typing import Any

import pytest

from teamsvoice.core.errors import NotFound, UpstreamError, ValidationFailed
from teamsvoice.microsoft.cmdlets import says_not_found
from teamsvoice.microsoft.direct_routing import CmdletDirectRouting
from teamsvoice.microsoft.emergency_locations import CmdletEmergencyLocations
from teamsvoice.microsoft.ports import CivicAddress
from teamsvoice.microsoft.resource_accounts import CmdletResourceAccounts
from teamsvoice.microsoft.teams_admin import TeamsAdminAdapter


class Recorder:
    """The Cmdlets port: records each run and answers from a script (cmdlet -> output)."""

    def __init__(self, **answers: list[dict[str, Any]]) -> None:
        self.answers = {name.replace("_", "-"): output for name, output in answers.items()}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def run(self, cmdlet: str, parameters: dict[str, Any], *, idempotent: bool | None = None) -> list[dict[str, Any]]:
        self.sent.append((cmdlet, parameters))
        return self.answers.get(cmdlet, [])


INSTANCE = {"ObjectId": "0b5e", "UserPrincipalName": "queue@contoso.com", "DisplayName": "Queue",
            "ApplicationId": "11cd3e2e-fccb-42ad-ad00-878b93575e07", "PhoneNumber": "tel:+3222100001"}


async def test_a_resource_account_is_created_with_its_kind_and_name() -> None:
    cmdlets = Recorder(New_CsOnlineApplicationInstance=[INSTANCE])
    assert await CmdletResourceAccounts(cmdlets).create("queue@contoso.com", INSTANCE["ApplicationId"], "Queue") == "0b5e"
    assert cmdlets.sent == [("New-CsOnlineApplicationInstance", {
        "UserPrincipalName": "queue@contoso.com", "ApplicationId": INSTANCE["ApplicationId"], "DisplayName": "Queue"})]


async def test_resource_accounts_are_read_without_teams_tel_prefix() -> None:
    accounts = CmdletResourceAccounts(Recorder(Get_CsOnlineApplicationInstance=[INSTANCE, {**INSTANCE, "ObjectId": "1",
                                                                                          "PhoneNumber": None}]))
    listed = await accounts.all()
    assert [(a.object_id, a.phone_number) for a in listed] == [("0b5e", "+3222100001"), ("1", None)]
    assert (await accounts.get("0b5e")).application_id == INSTANCE["ApplicationId"]


async def test_a_resource_account_teams_does_not_return_is_not_found() -> None:
    with pytest.raises(NotFound):
        await CmdletResourceAccounts(Recorder()).get("0b5e")


async def test_only_the_given_resource_account_fields_are_set() -> None:
    cmdlets = Recorder()
    accounts = CmdletResourceAccounts(cmdlets)
    await accounts.update("0b5e", display_name="Sales")
    await accounts.update("0b5e")
    assert cmdlets.sent == [("Set-CsOnlineApplicationInstance", {"Identity": "0b5e", "DisplayName": "Sales"})]


ADDRESS = CivicAddress("Contoso", "12", "Rue Haute (PO box 42)", "Brussels", "1000", "BE", None, "HQ")


async def test_an_emergency_address_is_created_with_teams_parameter_names() -> None:
    cmdlets = Recorder(New_CsOnlineLisCivicAddress=[{"CivicAddressId": "c1", "DefaultLocationId": "l1"}])
    created = await CmdletEmergencyLocations(cmdlets).create_address(ADDRESS)
    assert (created.civic_address_id, created.default_location_id) == ("c1", "l1")
    assert cmdlets.sent == [("New-CsOnlineLisCivicAddress", {
        "CompanyName": "Contoso", "HouseNumber": "12", "StreetName": "Rue Haute (PO box 42)", "City": "Brussels",
        "PostalCode": "1000", "CountryOrRegion": "BE", "Description": "HQ"})]


async def test_an_address_teams_does_not_return_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="did not return"):
        await CmdletEmergencyLocations(Recorder()).create_address(ADDRESS)


async def test_addresses_are_updated_removed_and_numbers_placed_by_id() -> None:
    cmdlets = Recorder()
    locations = CmdletEmergencyLocations(cmdlets)
    await locations.update_address("c1", ADDRESS)
    await locations.remove_address("c1")
    await locations.locate_number("ada@contoso.com", "+3222100001", "l1")
    await locations.locate_number("ada@contoso.com", "+3222100001", None)
    assert [(c, p.get("CivicAddressId"), p.get("LocationId", "-")) for c, p in cmdlets.sent] == [
        ("Set-CsOnlineLisCivicAddress", "c1", "-"), ("Remove-CsOnlineLisCivicAddress", "c1", "-"),
        ("Set-CsPhoneNumberAssignment", None, "l1"), ("Set-CsPhoneNumberAssignment", None, "-")]
    assert cmdlets.sent[2][1] == {"Identity": "ada@contoso.com", "PhoneNumber": "+3222100001",
                                  "PhoneNumberType": "DirectRouting", "LocationId": "l1"}


async def test_the_sip_address_and_the_powershell_probe_read_teams() -> None:
    cmdlets = Recorder(Get_CsOnlineUser=[{"SipAddress": "sip:ada@contoso.com"}])
    teams = TeamsAdminAdapter(None, cmdlets)  # type: ignore[arg-type]
    assert await teams.sip_address("id-ada") == "sip:ada@contoso.com"
    await teams.check_powershell(as_user="admin@contoso.com")
    await teams.check_powershell()
    assert cmdlets.sent == [("Get-CsOnlineUser", {"Identity": "id-ada"}), ("Get-CsOnlineUser", {"Identity": "admin@contoso.com"}),
                            ("Get-CsOnlineVoiceRoutingPolicy", {"Identity": "Global"})]
    assert await TeamsAdminAdapter(None, Recorder()).sip_address("id-bob") is None  # type: ignore[arg-type]


async def test_whether_a_policy_exists_is_read_once_a_while_and_again_for_a_name_not_among_those_read() -> None:
    """`has_policy` matches a name as a grant's -PolicyName does (any case, "Tag:" or not, never the global policy);
    the tenant's policies are read once for a bulk job's items, not once each (a cmdlet); a name not among them is
    asked again (a policy made since)."""
    policies = [{"Identity": "Global"}, {"Identity": "Tag:teamsvoice"}]
    cmdlets = Recorder(Get_CsOnlineVoiceRoutingPolicy=policies)
    routing = CmdletDirectRouting(cmdlets, "tenant-has-policy")
    assert [await routing.has_policy(name) for name in ("teamsvoice", "Tag:TeamsVoice", "TEAMSVOICE")] == [True] * 3
    assert len(cmdlets.sent) == 1
    policies.append({"Identity": "Tag:made-since"})
    assert await routing.has_policy("made-since") and not await routing.has_policy("Global")
    assert len(cmdlets.sent) == 3
    assert await CmdletDirectRouting(cmdlets, "another-tenant").has_policy("teamsvoice") and len(cmdlets.sent) == 4


def test_only_a_cmdlets_not_found_error_id_says_teams_has_no_such_object() -> None:
    def failure(code: str | None) -> UpstreamError:
        return UpstreamError("Remove-CsOnlineLisCivicAddress failed", retryable=False, status=400, upstream_code=code)

    assert all(says_not_found(failure(code)) for code in (
        "NotFound", "ObjectNotFound,Microsoft.Teams.RemoveCsOnlineLisCivicAddress", "ManagementObjectNotFound"))
    assert not any(says_not_found(failure(code)) for code in (
        None, "NamedParameterNotFound,Remove-CsOnlineLisCivicAddress", "CommandNotFoundException", "InvalidOperation"))


class Refusing(Recorder):
    """Teams answering every cmdlet with one error."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__()
        self.error = error

    async def run(self, cmdlet: str, parameters: dict[str, Any], *, idempotent: bool | None = None) -> list[dict[str, Any]]:
        await super().run(cmdlet, parameters)
        raise self.error


async def test_an_object_teams_does_not_have_is_not_found_and_other_refusals_stay_refusals() -> None:
    """A civic address or resource account Teams has no more is NotFound (a location's delete completes, an id
    adopts nothing), whichever runner said so; a refusal in other words stays the refusal."""
    gone = UpstreamError("failed: not found", retryable=False, status=400, upstream_code="ObjectNotFound,Remove")
    with pytest.raises(NotFound):
        await CmdletEmergencyLocations(Refusing(gone)).remove_address("c1")
    with pytest.raises(NotFound):
        await CmdletResourceAccounts(Refusing(gone)).get("0b5e")
    in_use = UpstreamError("failed: in use", retryable=False, status=400, upstream_code="InvalidOperation")
    with pytest.raises(UpstreamError, match="in use"):
        await CmdletEmergencyLocations(Refusing(in_use)).remove_address("c1")
    with pytest.raises(UpstreamError, match="in use"):
        await CmdletResourceAccounts(Refusing(in_use)).get("0b5e")
