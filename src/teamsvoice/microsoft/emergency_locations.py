"""Emergency addresses and numbers' emergency locations (ports.EmergencyLocations) through the Teams cmdlets:
New-/Set-/Remove-CsOnlineLisCivicAddress (a new address comes with its default location, the LocationId of
numbers) and Set-CsPhoneNumberAssignment -LocationId."""

from typing import Any

from teamsvoice.core.errors import NotFound, UpstreamError, ValidationFailed
from teamsvoice.microsoft.cmdlets import says_not_found
from teamsvoice.microsoft.ports import CivicAddress, Cmdlets, EmergencyAddress


def civic_parameters(address: CivicAddress) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "CompanyName": address.company_name, "HouseNumber": address.house_number, "StreetName": address.street_name,
        "City": address.city, "PostalCode": address.postal_code, "CountryOrRegion": address.country}
    if address.state:
        parameters["StateOrProvince"] = address.state
    if address.description:
        parameters["Description"] = address.description
    return parameters


class CmdletEmergencyLocations:
    def __init__(self, cmdlets: Cmdlets) -> None:
        self._cmdlets = cmdlets

    async def create_address(self, address: CivicAddress) -> EmergencyAddress:
        output = await self._cmdlets.run("New-CsOnlineLisCivicAddress", civic_parameters(address))
        if not output or not output[0].get("CivicAddressId"):
            raise ValidationFailed("Teams did not return the new civic address")
        return EmergencyAddress(str(output[0]["CivicAddressId"]), str(output[0].get("DefaultLocationId") or "") or None)

    async def update_address(self, civic_address_id: str, address: CivicAddress) -> None:
        await self._cmdlets.run("Set-CsOnlineLisCivicAddress",
                                {"CivicAddressId": civic_address_id, **civic_parameters(address)})

    async def remove_address(self, civic_address_id: str) -> None:
        """NotFound when Teams has no such address (removed there already)."""
        try:
            await self._cmdlets.run("Remove-CsOnlineLisCivicAddress", {"CivicAddressId": civic_address_id})
        except UpstreamError as exc:
            if says_not_found(exc):
                raise NotFound(f"Teams has no civic address {civic_address_id}") from exc
            raise

    async def locate_number(self, user_principal_name: str, phone_number: str, location_id: str | None) -> None:
        parameters = {"Identity": user_principal_name, "PhoneNumber": phone_number, "PhoneNumberType": "DirectRouting"}
        if location_id is not None:
            parameters["LocationId"] = location_id
        await self._cmdlets.run("Set-CsPhoneNumberAssignment", parameters)
