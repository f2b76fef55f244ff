"""A subscription's emergency (civic) addresses ("locations"), carried into Teams as emergency addresses.

Each location is recorded here first; once the subscription is linked to an MS Teams tenant it is created there
with New-CsOnlineLisCivicAddress (which gives it a default location, the LocationId of numbers), and kept in step
with Set-/Remove-CsOnlineLisCivicAddress (`TenantConnection.emergency_locations`). Microsoft is called only after
the database work is committed, and nothing stays half-written: should Teams refuse or fail a new location, its
record goes again (no job pushes it later; a failure that may pass says to send the request again); should Teams
refuse or fail a change, the changed fields go back to what they were. A location recorded while the subscription
had no linked tenant shows `msTeams: null` and is created in Teams the next time it is updated or given to a
number. A delete completes when Teams no longer has the address.

A user's number gets a location with Set-CsPhoneNumberAssignment -LocationId (Teams' emergency location of the
number); the choice is recorded in `FusionNumberLocation`, put back if Teams refuses it.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.db import end_transaction
from teamsvoice.core.errors import DomainError, NotFound, UpstreamError, ValidationFailed
from teamsvoice.domain.fusion import repository_locations as repository
from teamsvoice.domain.fusion.models import FusionLocation, FusionNumberLocation
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.teams_users.service import directory_user
from teamsvoice.microsoft.ports import CivicAddress, TenantConnection

LOCATION_NOT_FOUND = "location_not_found"
LOCATION_IN_USE = "location_in_use"
USER_HAS_NO_NUMBER = "user_has_no_number"


@dataclass(frozen=True)
class Address:
    """An emergency address as recorded (each value trimmed, the country an ISO 3166 alpha-2 code in capitals);
    without a company name the location takes the tenant's name."""

    street: str
    house_number: str
    postal_code: str
    city: str
    country: str
    postbox: str | None = None
    state: str | None = None
    company_name: str | None = None
    description: str | None = None


ADDRESS_FIELDS = tuple(f.name for f in fields(Address))
REQUIRED_FIELDS = ("street", "house_number", "postal_code", "city", "country")


@dataclass(frozen=True)
class AddressChange:
    """The fields of an address to change (`Address`'s names), the others left as they are: None clears an
    optional field (a cleared company name becomes the tenant's name)."""

    values: Mapping[str, str | None]

    def __post_init__(self) -> None:
        unknown = set(self.values) - set(ADDRESS_FIELDS)
        cleared = [name for name in REQUIRED_FIELDS if name in self.values and self.values[name] is None]
        if unknown or cleared:
            raise ValueError(f"not a change of an address: {sorted(unknown) or cleared}")


async def _in_subscription(session: AsyncSession, access: SubscriptionAccess, location_id: int) -> FusionLocation:
    row = await repository.location_of_subscription(session, access.subscription.id, location_id)
    if row is None:
        raise NotFound(f"Location {location_id} not found in this subscription", code=LOCATION_NOT_FOUND)
    return row


async def list_locations(session: AsyncSession, access: SubscriptionAccess) -> list[FusionLocation]:
    return await repository.locations_of_subscription(session, access.subscription.id)


async def get_location(session: AsyncSession, access: SubscriptionAccess, location_id: int) -> FusionLocation:
    return await _in_subscription(session, access, location_id)


async def numbers_at(session: AsyncSession, location_ids: list[int]) -> dict[int, list[str]]:
    """The numbers (of users that hold one) placed at each location."""
    found: dict[int, list[str]] = {i: [] for i in location_ids}
    for location_id, number in await repository.numbers_at(session, location_ids):
        found[location_id].append(number)
    return {k: sorted(v) for k, v in found.items()}


async def create_location(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection | None,
                          address: Address) -> FusionLocation:
    """Records the location, then (with a linked tenant) creates it in Teams. Should Teams refuse or fail, the
    record goes again and the error is raised: nothing of the location stays here, and a request sent again
    makes one location, not two."""
    values = asdict(address)
    values["company_name"] = values["company_name"] or access.tenant.name
    row = FusionLocation(subscription_id=access.subscription.id, **values)
    session.add(row)
    await session.flush()
    await end_transaction(session)  # recorded before Teams is called
    try:
        await push_to_teams(session, access, connection, row)
    except Exception as exc:
        if row.teams_civic_address_id is not None:  # Teams made it: only recording its ids failed
            raise
        await repository.forget_numbers_at(session, row.id)
        await session.delete(row)
        await end_transaction(session)
        raise _not_kept(exc, "the location was not recorded")
    return row


async def update_location(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection | None,
                          location_id: int, change: AddressChange) -> FusionLocation:
    """Records the change, then (with a linked tenant) makes Teams' civic address follow. Should Teams refuse or
    fail, the changed fields go back to what they were and the error is raised."""
    values = dict(change.values)
    if not values:
        raise ValidationFailed("Nothing to update: send the fields to change")
    row = await _in_subscription(session, access, location_id)
    if "company_name" in values and values["company_name"] is None:
        values["company_name"] = access.tenant.name
    before = {attribute: getattr(row, attribute) for attribute in (*values, "updated_at")}
    had_teams_address = row.teams_civic_address_id is not None
    for attribute, value in values.items():
        setattr(row, attribute, value)
    await session.flush()
    await end_transaction(session)  # recorded before Teams is called
    try:
        await push_to_teams(session, access, connection, row)
    except Exception as exc:
        if not had_teams_address and row.teams_civic_address_id is not None:  # Teams made it: recording failed
            raise
        for attribute, value in before.items():
            setattr(row, attribute, value)
        await end_transaction(session)
        raise _not_kept(exc, "the location was left as it was")
    return row


def _not_kept(exc: Exception, what: str) -> Exception:
    """The error to answer once the database is back where it was: a failure of Teams that may pass says so and
    that the request can be sent again; anything else (a refusal) as it is."""
    if isinstance(exc, UpstreamError) and exc.retryable and not exc.is_refusal:
        again = UpstreamError(f"{exc.message}; {what}: send the request again", retryable=True, status=exc.status,
                              upstream_code=exc.upstream_code)
        again.__cause__ = exc
        return again
    return exc


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
    """Refused while a number is placed there; removed from Teams first (done already when Teams has it no more),
    then here."""
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
        try:
            await connection.emergency_locations.remove_address(row.teams_civic_address_id)
        except NotFound:
            pass  # Teams has it no more (removed there, or by a delete whose recording failed): the delete completes
    await repository.forget_numbers_at(session, row.id)
    await session.delete(row)
    await session.flush()


async def set_number_location(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection,
                              ms_user_id: str, location_id: Any) -> dict[str, Any]:
    """Gives the user's number an emergency location (None: removes it) in Teams and records it."""
    if location_id is not None and (isinstance(location_id, bool) or not isinstance(location_id, int)):
        raise ValidationFailed("locationId: must be the id of a location of the subscription, or null")
    record = (await voice_users.by_microsoft_ids(session, access.enterprise.id, [ms_user_id])).get(ms_user_id)
    if record is None:  # named otherwise than by its id as teamsvoice stores it (its UPN, its id in capitals)
        await end_transaction(session)  # no transaction held while Microsoft answers
        user = await directory_user(connection.directory_admin, ms_user_id)  # (unknown: a 404 naming it)
        record = (await voice_users.by_microsoft_ids(session, access.enterprise.id, [user.id])).get(user.id)
    if record is None or not record.phone_number:
        raise ValidationFailed(f"MS Teams user {ms_user_id} has no phone number to locate; assign one first",
                               code=USER_HAS_NO_NUMBER)
    location = await _in_subscription(session, access, location_id) if location_id is not None else None
    if location is not None and location.teams_location_id is None:
        await end_transaction(session)
        await push_to_teams(session, access, connection, location)
    current = await repository.number_location(session, record.id)
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
        await connection.emergency_locations.locate_number(record.user_principal_name, record.phone_number,
                                                           location.teams_location_id if location is not None else None)
    except DomainError:
        await repository.forget_number_location(session, record.id)
        if before is not None:
            session.add(FusionNumberLocation(voice_user_id=record.id, location_id=before))
        await end_transaction(session)
        raise
    return {"phoneNumber": record.phone_number, "locationId": location.id if location else None}

