"""A subscription's emergency (civic) addresses (`locations`, as the vendor's portal calls them), carried into
Teams as emergency addresses, and the emergency location of a user's number."""

from typing import Annotated, Any

import pycountry
from fastapi import Depends, Request, Response

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep, read_json
from teamsvoice.api.docs import request_body
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion.deps import subscription_access
from teamsvoice.api.fusion.wire import SUB_PATH
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.limits import check_name
from teamsvoice.domain.fusion import locations, numbers
from teamsvoice.domain.fusion.models import FusionLocation
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.microsoft.ports import TenantConnection

router = APIRouter(prefix=SUB_PATH, tags=["Fusion: locations (emergency addresses)"])
_ROLE = "tenants.instance.subscriptions.instance.locations"


def _access(action: str) -> Any:
    return Annotated[SubscriptionAccess, Depends(subscription_access(f"{_ROLE}.{action}"))]


def _connection(container: ContainerDep, access: SubscriptionAccess) -> TenantConnection | None:
    return container.connector.connect(access.ms_tenant_id) if access.ms_tenant_id else None


# Fusion's field -> (the address's field, max length)
FIELDS = {"street": ("street", 200), "number": ("house_number", 40), "postbox": ("postbox", 40),
          "postalCode": ("postal_code", 20), "city": ("city", 100), "state": ("state", 100), "country": ("country", 2),
          "companyName": ("company_name", 200), "description": ("description", 200)}


def _address_values(body: Any, *, partial: bool) -> dict[str, str | None]:
    """The address's field -> value for Fusion's fields sent (all required ones unless `partial`)."""
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    unknown = set(body) - set(FIELDS)
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field (allowed: {', '.join(FIELDS)})")
    values: dict[str, str | None] = {}
    for wire, (attribute, limit) in FIELDS.items():
        required = attribute in locations.REQUIRED_FIELDS
        if wire not in body:
            if required and not partial:
                raise ValidationFailed(f"{wire}: is required")
            continue
        value = body[wire]
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise ValidationFailed(f"{wire}: must not be empty")
            values[attribute] = None
            continue
        if not isinstance(value, str):
            raise ValidationFailed(f"{wire}: must be a string of at most {limit} characters")
        values[attribute] = check_name(wire, value.strip(), limit)  # (no NUL nor other control characters)
    if values.get("country") is not None:
        values["country"] = numbers.check_iso_code(values["country"], "country")
    return values


def parse_address(body: Any) -> locations.Address:
    """A new location's address from Fusion's request body (400 naming the field at fault)."""
    return locations.Address(**_address_values(body, partial=False))  # type: ignore[arg-type]


def parse_address_change(body: Any) -> locations.AddressChange:
    """The fields of a location to change, from Fusion's request body (400 naming the field at fault)."""
    return locations.AddressChange(_address_values(body, partial=True))


def render_location(row: FusionLocation, numbers: list[str]) -> dict[str, Any]:
    country = pycountry.countries.get(alpha_2=row.country)
    return {
        "id": row.id, "street": row.street, "number": row.house_number, "postbox": row.postbox,
        "postalCode": {"code": row.postal_code, "city": row.city, "state": row.state,
                       "country": {"isoCode": row.country, "name": country.name if country else row.country}},
        "companyName": row.company_name, "description": row.description,
        "msTeams": ({"civicAddressId": row.teams_civic_address_id, "locationId": row.teams_location_id}
                    if row.teams_civic_address_id else None),
        "phoneNumbers": numbers,
    }


async def _rendered(uow: UnitOfWorkDep, row: FusionLocation) -> dict[str, Any]:
    return render_location(row, (await locations.numbers_at(uow.session, [row.id]))[row.id])


@router.get("/locations", summary="The subscription's emergency addresses: {locations: [...]}",
    responses=docs.ok(docs.Locations, "The locations"),
    description="Each with `phoneNumbers` placed there and, once in Teams, `msTeams` {civicAddressId, "
    "locationId}.",
)
async def list_locations(access: _access("list"), uow: UnitOfWorkDep) -> dict[str, Any]:
    rows = await locations.list_locations(uow.session, access)
    placed = await locations.numbers_at(uow.session, [r.id for r in rows])
    return {"locations": [render_location(r, placed[r.id]) for r in rows]}


@router.get("/locations/{location_id}", summary="One emergency address, with the numbers placed there",
    responses=docs.ok(docs.Location, "The location"),
    description="404 when not of this subscription.",
)
async def get_location(location_id: int, access: _access("list"), uow: UnitOfWorkDep) -> dict[str, Any]:
    return await _rendered(uow, await locations.get_location(uow.session, access, location_id))


@router.post(
    "/locations", summary="Add an emergency address: {street, number, postbox?, postalCode, city, state?, country, "
    "companyName?, description?}",
    description="`country` is ISO 3166 alpha-2; `companyName` defaults to the tenant's name. With a linked MS Teams "
    "tenant it is created there (New-CsOnlineLisCivicAddress); `msTeams` then names its civic address and location. "
    "Should Teams refuse or fail, nothing is recorded (a failure that may pass: 503, send the request again).",
    openapi_extra=request_body(docs.LocationRequest, example=docs.LOCATION_EXAMPLE),
    responses=docs.ok(docs.Location, "The new location") | docs.MICROSOFT,
)
async def create_location(request: Request, access: _access("create"), uow: UnitOfWorkDep,
                          container: ContainerDep) -> dict[str, Any]:
    address = parse_address(await read_json(request))
    row = await locations.create_location(uow.session, access, _connection(container, access), address)
    return await _rendered(uow, row)


@router.put("/locations/{location_id}", summary="Change an emergency address (the fields sent)",
    openapi_extra=request_body(docs.LocationRequest, example={"description": "Head office, 2nd floor"}),
    responses=docs.ok(docs.Location, "The changed location") | docs.MICROSOFT,
    description="Only the fields sent change; with a linked tenant the civic address in Teams follows (should Teams "
    "refuse or fail, the location stays as it was).",
)
async def update_location(location_id: int, request: Request, access: _access("update"), uow: UnitOfWorkDep,
                          container: ContainerDep) -> dict[str, Any]:
    change = parse_address_change(await read_json(request))
    row = await locations.update_location(uow.session, access, _connection(container, access), location_id, change)
    return await _rendered(uow, row)


@router.delete("/locations/{location_id}", status_code=204,
               summary="Remove an emergency address no number uses (in Teams too)",
    responses=docs.NO_CONTENT | docs.MICROSOFT,
    description="400 while a number uses it; with a linked tenant it is removed in Teams too (an address Teams no "
    "longer has counts as removed).",
)
async def delete_location(location_id: int, access: _access("delete"), uow: UnitOfWorkDep,
                          container: ContainerDep) -> Response:
    await locations.delete_location(uow.session, access, _connection(container, access), location_id)
    return Response(status_code=204)


@router.put(
    "/msteams/users/{ms_user_id}/location", summary="Set the emergency location of the user's number: {locationId}",
    description="`locationId`: a location of the subscription, or null to remove it. Teams gets it with "
    "Set-CsPhoneNumberAssignment -LocationId. The user must hold a number.",
    openapi_extra=request_body(docs.UserLocationRequest, example={"locationId": 3}),
    responses=docs.ok(docs.NumberLocation, "The number's emergency location") | docs.MICROSOFT,
)
async def set_user_location(
    ms_user_id: str, request: Request, uow: UnitOfWorkDep, container: ContainerDep,
    access: Annotated[SubscriptionAccess, Depends(subscription_access(
        "tenants.instance.subscriptions.instance.msteams.users.instance.location.update"))],
) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict) or set(body) != {"locationId"}:
        raise ValidationFailed('The request body must be {"locationId": <id> | null}')
    connection = container.connector.connect(access.require_ms_tenant())
    return await locations.set_number_location(uow.session, access, connection, ms_user_id, body["locationId"])
