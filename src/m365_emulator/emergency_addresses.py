"""Emergency addresses of Teams (the Location Information Service): civic addresses, each created with a default
location, managed by the MicrosoftTeams module's *-CsOnlineLisCivicAddress / Get-CsOnlineLisLocation cmdlets.
A number's emergency location is the `LocationId` of Set-CsPhoneNumberAssignment, which must name a location of
the tenant; a civic address whose locations numbers still use cannot be removed."""

import uuid
from typing import Any

from .cmdlet_support import CmdletError, Output, Parameters, missing, string
from .store import Document, Transaction

_FIELDS = ("CompanyName", "CompanyTaxId", "HouseNumber", "HouseNumberSuffix", "StreetName", "StreetSuffix",
           "PreDirectional", "PostDirectional", "City", "CityAlias", "StateOrProvince", "PostalCode", "CountryOrRegion",
           "Description", "Latitude", "Longitude", "Elin")


def _address_fields(cmdlet: str, parameters: Parameters) -> dict[str, Any]:
    fields = {name: string(cmdlet, parameters, name) for name in _FIELDS if name in parameters}
    country = fields.get("CountryOrRegion")
    if country is not None and (len(country) != 2 or not country.isalpha()):
        raise CmdletError("BadRequest", "InvalidArgument",
                          f"CountryOrRegion '{country}' is not a valid ISO 3166-1 alpha-2 country code.")
    if country is not None:
        fields["CountryOrRegion"] = country.upper()
    return fields


def _address(tx: Transaction, tenant_id: str, cmdlet: str, parameters: Parameters) -> Document:
    address_id = string(cmdlet, parameters, "CivicAddressId", required=True)
    address = tx.get("lis_civic_address", str(address_id))
    if address is None or address.get("_tenantId") != tenant_id:
        raise CmdletError("NotFound", "ObjectNotFound", f"Civic address '{address_id}' was not found.")
    return address


def _output(tx: Transaction, address: Document) -> dict[str, Any]:
    body = {name: address.get(name) for name in _FIELDS}
    locations = {loc["id"] for loc in tx.list("lis_location", address["_tenantId"]) if loc["civicAddressId"] == address["id"]}
    return {"CivicAddressId": address["id"], "DefaultLocationId": address["defaultLocationId"], **body,
            "ValidationStatus": "Validated",
            "NumberOfTelephoneNumbers": len(_numbers_at(tx, address["_tenantId"], locations))}


def new_civic_address(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "New-CsOnlineLisCivicAddress"
    for required in ("CompanyName", "CountryOrRegion"):
        if required not in parameters:
            raise missing(cmdlet, required)
    fields = _address_fields(cmdlet, parameters)
    address_id, location_id = str(uuid.uuid4()), str(uuid.uuid4())
    address = {"id": address_id, "_tenantId": tenant_id, "defaultLocationId": location_id, **fields}
    tx.put("lis_civic_address", address_id, address, tenant_id)
    tx.put("lis_location", location_id, {"id": location_id, "_tenantId": tenant_id, "civicAddressId": address_id,
                                         "location": "", "isDefault": True}, tenant_id)
    return [_output(tx, address)]


def set_civic_address(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Set-CsOnlineLisCivicAddress"
    address = _address(tx, tenant_id, cmdlet, parameters)
    address.update(_address_fields(cmdlet, parameters))
    tx.put("lis_civic_address", address["id"], address, tenant_id)
    return []


def get_civic_address(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    if "CivicAddressId" in parameters:
        return [_output(tx, _address(tx, tenant_id, "Get-CsOnlineLisCivicAddress", parameters))]
    return [_output(tx, a) for a in tx.list("lis_civic_address", tenant_id)]


def _numbers_at(tx: Transaction, tenant_id: str, location_ids: set[str]) -> list[str]:
    return sorted(n["telephoneNumber"] for n in tx.list("number", tenant_id) if n.get("locationId") in location_ids)


def remove_civic_address(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    address = _address(tx, tenant_id, "Remove-CsOnlineLisCivicAddress", parameters)
    locations = [loc for loc in tx.list("lis_location", tenant_id) if loc["civicAddressId"] == address["id"]]
    used = _numbers_at(tx, tenant_id, {loc["id"] for loc in locations})
    if used:
        raise CmdletError("BadRequest", "InvalidOperation",
                          f"Civic address '{address['id']}' cannot be removed: its locations are assigned to "
                          f"{len(used)} phone number(s).")
    for location in locations:
        tx.delete("lis_location", location["id"])
    tx.delete("lis_civic_address", address["id"])
    return []


def get_location(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Get-CsOnlineLisLocation"
    found = tx.list("lis_location", tenant_id)
    if "LocationId" in parameters:
        wanted = string(cmdlet, parameters, "LocationId")
        found = [loc for loc in found if loc["id"] == wanted]
        if not found:
            raise CmdletError("NotFound", "ObjectNotFound", f"Location '{wanted}' was not found.")
    if "CivicAddressId" in parameters:
        wanted = string(cmdlet, parameters, "CivicAddressId")
        found = [loc for loc in found if loc["civicAddressId"] == wanted]
    return [{"LocationId": loc["id"], "CivicAddressId": loc["civicAddressId"], "Location": loc["location"],
             "IsDefault": loc["isDefault"]} for loc in found]


def require_location(tx: Transaction, tenant_id: str, location_id: Any) -> str:
    """The LocationId given to a number: a location of this tenant."""
    location = tx.get("lis_location", str(location_id)) if isinstance(location_id, str) and location_id else None
    if location is None or location.get("_tenantId") != tenant_id:
        raise CmdletError("BadRequest", "InvalidArgument", f"Location '{location_id}' was not found in the tenant.")
    return location["id"]


CMDLETS = {
    "New-CsOnlineLisCivicAddress": (new_civic_address, _FIELDS),
    "Set-CsOnlineLisCivicAddress": (set_civic_address, ("CivicAddressId", *_FIELDS)),
    "Get-CsOnlineLisCivicAddress": (get_civic_address, ("CivicAddressId",)),
    "Remove-CsOnlineLisCivicAddress": (remove_civic_address, ("CivicAddressId",)),
    "Get-CsOnlineLisLocation": (get_location, ("LocationId", "CivicAddressId")),
}
