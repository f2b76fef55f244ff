"""Queries over a subscription's emergency locations and the location chosen for each user's number
(`fusion/locations.py` holds the rules)."""

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.fusion.models import FusionLocation, FusionNumberLocation
from teamsvoice.domain.provisioning.models import TeamsVoiceUser


async def location_of_subscription(session: AsyncSession, subscription_id: int, location_id: int) -> FusionLocation | None:
    return await session.scalar(select(FusionLocation).where(
        FusionLocation.id == location_id, FusionLocation.subscription_id == subscription_id))


async def locations_of_subscription(session: AsyncSession, subscription_id: int) -> list[FusionLocation]:
    """The subscription's locations in the order they were added."""
    return list(await session.scalars(select(FusionLocation).where(
        FusionLocation.subscription_id == subscription_id).order_by(FusionLocation.id)))


async def numbers_at(session: AsyncSession, location_ids: list[int]) -> list[tuple[int, str]]:
    """(location id, number) for each user's number placed at one of the locations (users without a number
    left out)."""
    if not location_ids:
        return []
    rows = await session.execute(select(FusionNumberLocation.location_id, TeamsVoiceUser.phone_number).join(
        TeamsVoiceUser, TeamsVoiceUser.id == FusionNumberLocation.voice_user_id).where(
        FusionNumberLocation.location_id.in_(location_ids), TeamsVoiceUser.phone_number.is_not(None)))
    return [(location_id, number) for location_id, number in rows]


async def forget_numbers_at(session: AsyncSession, location_id: int) -> None:
    """No number's location is this one any more."""
    await session.execute(delete(FusionNumberLocation).where(FusionNumberLocation.location_id == location_id))


async def number_location(session: AsyncSession, voice_user_id: int) -> FusionNumberLocation | None:
    """The location chosen for the number of the Teams user's record, if any."""
    return await session.scalar(select(FusionNumberLocation).where(FusionNumberLocation.voice_user_id == voice_user_id))


async def forget_number_location(session: AsyncSession, voice_user_id: int) -> None:
    """The number of the Teams user's record has no location chosen any more."""
    await session.execute(delete(FusionNumberLocation).where(FusionNumberLocation.voice_user_id == voice_user_id))
