"""A subscription's emergency (civic) addresses ("locations"), carried into Teams as emergency addresses.

Each location is recorded here first; once the subscription is linked to an MS Teams tenant it is created there
with New-CsOnlineLisCivicAddress (which gives it a default location, the LocationId of numbers), and kept in step
with Set-/Remove-CsOnlineLisCivicAddress (`TenantConnection.emergency_locations`). Microsoft is called only after the database work is committed. A
location whose Teams counterpart could not be created yet (no linked tenant, or Teams failing) shows
`msTeams: null` and is created in Teams the next time it is updated or given to a number.

A user's number gets a location with Set-CsPhoneNumberAssignment -LocationId (Teams' emergency location of the
number); the choice is recorded in `FusionNumberLocation`, put back if Teams refuses it.
"""

from typing import Any

import pycountry
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.db import end_transaction
from teamsvoice.core.errors import DomainError, NotFound, ValidationFailed
from teamsvoice.domain.fusion.models import FusionLocation, FusionNumberLocation
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.microsoft.ports import CivicAddress, TenantConnection

LOCATION_NOT_FOUND = "location_not_found"
LOCATION_IN_USE = "location_in_use"
USER_HAS_NO_NUMBER = "user_has_no_number"
# wire field -> (model attribute, max length, required)
FIELDS = {"street": ("street", 200, True), "number": ("house_number", 40, True), "postbox": ("postbox", 40, False),
          "postalCode": ("postal_code", 20, True), "city": ("city", 100, True), "state": ("state", 100, False),
          "country": ("country", 2, True), "companyName": ("company_name", 200, False),
          "description": ("description", 200, False)}


def parse_location(body: Any, *, partial: bool) -> dict[str, Any]:
    """Model attribute -> value for the fields sent (all required ones unless `partial`)."""
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    unknown = set(body) - set(FIELDS)
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field (allowed: {', '.join(FIELDS)})")
    values: dict[str, Any] = {}
    for wire, (attribute, limit, required) in FIELDS.items():
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
        if not isinstance(value, str) or len(value.strip()) > limit:
            raise ValidationFailed(f"{wire}: must be a string of at most {limit} characters")
        values[attribute] = value.strip()
    if values.get("country") is not None:
        country = pycountry.countries.get(alpha_2=values["country"].upper())
        if country is None or len(values["country"]) != 2:
            raise ValidationFailed(f"country: '{values['country']}' is not an ISO 3166 alpha-2 country code")
        values["country"] = values["country"].upper()
    return values


async def _in_subscription(session: AsyncSession, access: SubscriptionAccess, location_id: int) -> FusionLocation:
    row = await session.scalar(select(FusionLocation).where(
        FusionLocation.id == location_id, FusionLocation.subscription_id == access.subscription.id))
    if row is None:
        raise NotFound(f"Location {location_id} not found in this subscription", code=LOCATION_NOT_FOUND)
    return row


async def list_locations(session: AsyncSession, access: SubscriptionAccess) -> list[FusionLocation]:
    return list(await session.scalars(select(FusionLocation).where(
        FusionLocation.subscription_id == access.subscription.id).order_by(FusionLocation.id)))


async def get_location(session: AsyncSession, access: SubscriptionAccess, location_id: int) -> FusionLocation:
    return await _in_subscription(session, access, location_id)


async def numbers_at(session: AsyncSession, location_ids: list[int]) -> dict[int, list[str]]:
    """The numbers (of users that hold one) placed at each location."""
    found: dict[int, list[str]] = {i: [] for i in location_ids}
    if not location_ids:
        return found
    rows = await session.execute(select(FusionNumberLocation.location_id, TeamsVoiceUser.phone_number).join(
        TeamsVoiceUser, TeamsVoiceUser.id == FusionNumberLocation.voice_user_id).where(
        FusionNumberLocation.location_id.in_(location_ids), TeamsVoiceUser.phone_number.is_not(None)))
    for location_id, number in rows:
        found[location_id].append(number)
    return {k: sorted(v) for k, v in found.items()}


async def create_location(session: AsyncSession, access: SubscriptionAccess, body: Any) -> FusionLocation:
    values = parse_location(body, partial=False)
    values["company_name"] = values.get("company_name") or access.tenant.name
    row = FusionLocation(subscription_id=access.subscription.id, **values)
    session.add(row)
    await session.flush()
    return row


async def update_location(session: AsyncSession, access: SubscriptionAccess, location_id: int, body: Any) -> FusionLocation:
    values = parse_location(body, partial=True)
    if not values:
        raise ValidationFailed("Nothing to update: send the fields to change")
    row = await _in_subscription(session, access, location_id)
    if "company_name" in values and values["company_name"] is None:
        values["company_name"] = access.tenant.name
    for attribute, value in values.items():
        setattr(row, attribute, value)
    await session.flush()
    return row


def civic_address(row: FusionLocation) -> CivicAddress:
    """The location as Teams holds it: a PO box goes with the street (Teams has no field for it)."""
    street = f"{row.street} (PO box {row.postbox})" if row.postbox else row.street
    return CivicAddress(row.company_name, row.house_number, street, row.city, row.postal_code, row.country,
                        row.state or None, row.description or None)


async def push_to_teams(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection | None,
                        row: FusionLocation) -> None:
    """Creates or updates the location's civic address in Teams (call with the database work committed).
    Without a linked tenant it stays local; a Teams failure is raised after what succeeded is recorded."""
    if connection is None:
        return
    if row.teams_civic_address_id is None:
        created = await connection.emergency_locations.create_address(civic_address(row))
        row.teams_civic_address_id, row.teams_location_id = created.civic_address_id, created.default_location_id
        await end_transaction(session)
    else:
        await connection.emergency_locations.update_address(row.teams_civic_address_id, civic_address(row))


async def delete_location(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection | None,
                          location_id: int) -> None:
    """Refused while a number is placed there; removed from Teams first, then here."""
    row = await _in_subscription(session, access, location_id)
    used = (await numbers_at(session, [row.id]))[row.id]
    if used:
        raise ValidationFailed(f"Location {location_id} is the emergency location of {len(used)} number(s) "
                               f"({', '.join(used[:5])}); give them another location first", code=LOCATION_IN_USE)
    await end_transaction(session)
    if row.teams_civic_address_id is not None:
        if connection is None:
            raise ValidationFailed("The location exists in an MS Teams tenant that is no longer linked; link it "
                                   "again to remove the address there")
        await connection.emergency_locations.remove_address(row.teams_civic_address_id)
    await session.execute(delete(FusionNumberLocation).where(FusionNumberLocation.location_id == row.id))
    await session.delete(row)
    await session.flush()


async def set_number_location(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection,
                              ms_user_id: str, location_id: Any) -> dict[str, Any]:
    """Gives the user's number an emergency location (None: removes it) in Teams and records it."""
    if location_id is not None and (isinstance(location_id, bool) or not isinstance(location_id, int)):
        raise ValidationFailed("locationId: must be the id of a location of the subscription, or null")
    record = await session.scalar(select(TeamsVoiceUser).where(
        TeamsVoiceUser.enterprise_id == access.enterprise.id, TeamsVoiceUser.microsoft_user_id == ms_user_id))
    if record is None or not record.phone_number:
        raise ValidationFailed(f"MS Teams user {ms_user_id} has no phone number to locate; assign one first",
                               code=USER_HAS_NO_NUMBER)
    location = await _in_subscription(session, access, location_id) if location_id is not None else None
    if location is not None and location.teams_location_id is None:
        await end_transaction(session)
        await push_to_teams(session, access, connection, location)
    current = await session.scalar(select(FusionNumberLocation).where(FusionNumberLocation.voice_user_id == record.id))
    before = current.location_id if current is not None else None
    if location is None:
        if current is not None:
            await session.delete(current)
    elif current is None:
        session.add(FusionNumberLocation(voice_user_id=record.id, location_id=location.id))
    else:
        current.location_id = location.id
    await end_transaction(session)  # recorded before Teams is called
    try:
        await connection.emergency_locations.locate_number(
            record.user_principal_name, record.phone_number, location.teams_location_id if location is not None else None)
    except DomainError:
        await session.execute(delete(FusionNumberLocation).where(FusionNumberLocation.voice_user_id == record.id))
        if before is not None:
            session.add(FusionNumberLocation(voice_user_id=record.id, location_id=before))
        await end_transaction(session)
        raise
    return {"phoneNumber": record.phone_number, "locationId": location.id if location else None}

