"""The cmdlet adapters behind the resource-account, emergency-location and Teams-administration ports: what each
port call sends to Teams PowerShell (cmdlet and parameters as data) and how Teams' output is read back."""

from typing import Any

import pytest

from teamsvoice.core.errors import NotFound, ValidationFailed
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
