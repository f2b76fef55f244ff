"""One owner per number, whichever API family assigns it.

A number belongs to the enterprise whose inventory holds it (a Fusion subscription's numbers belong to the
enterprise backing the subscription); a number in no inventory belongs to the enterprise whose user holds it,
if any. Every write that gives a user a number asks `require_assignable` first, so a reseller can neither
take another reseller's number nor learn who holds it: a number owned elsewhere is simply "not found", and a
holder is only ever named to the owner of the number.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import Conflict, NotFound
from teamsvoice.domain.calling.models import PbxUser
from teamsvoice.domain.fusion.models import FusionNumber, FusionSubscription
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.voice_state.models import NumberQuarantine

NUMBER_NOT_AVAILABLE = "number_not_available"
NUMBER_IN_QUARANTINE = "number_in_quarantine"
_CHUNK = 500


async def owners(session: AsyncSession, e164s: list[str]) -> dict[str, int]:
    """The enterprise id owning each number that has an owner (inventory first, then holders)."""
    found: dict[str, int] = {}
    wanted = sorted(set(e164s))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        inventory = await session.execute(
            select(FusionNumber.e164, FusionSubscription.enterprise_id)
            .join(FusionSubscription, FusionSubscription.id == FusionNumber.subscription_id)
            .where(FusionNumber.e164.in_(chunk)))
        found.update({e164: enterprise_id for e164, enterprise_id in inventory})
        rest = [n for n in chunk if n not in found]
        if not rest:
            continue
        for model in (TeamsVoiceUser, PbxUser):
            held = await session.execute(select(model.phone_number, model.enterprise_id).where(model.phone_number.in_(rest)))
            for e164, enterprise_id in held:
                found.setdefault(e164, enterprise_id)
    return found


async def owned_elsewhere(session: AsyncSession, enterprise_id: int, e164s: list[str]) -> list[str]:
    """The numbers (sorted) that another enterprise owns."""
    return sorted(n for n, owner in (await owners(session, e164s)).items() if owner != enterprise_id)


async def require_assignable(session: AsyncSession, enterprise_id: int, e164: str, *, field: str = "phoneNumber") -> None:
    """A number another enterprise owns cannot be given to this enterprise's users: it answers exactly like a
    number the caller cannot see (the owner and any holder stay unnamed)."""
    if await owned_elsewhere(session, enterprise_id, [e164]):
        raise NotFound(f"{field}: {e164} not found among the numbers available to this enterprise",
                       code=NUMBER_NOT_AVAILABLE)
    until = await session.scalar(select(NumberQuarantine.until).where(
        NumberQuarantine.e164 == e164, NumberQuarantine.until > utcnow()))
    if until is not None:  # freed by offboarding (domain/voice_state): not given to anyone before the end
        raise Conflict(f"{field}: {e164} is in quarantine after offboarding until {until:%Y-%m-%d %H:%M} UTC",
                       code=NUMBER_IN_QUARANTINE)


async def holders_within(session: AsyncSession, enterprise_id: int, e164s: list[str]) -> dict[str, TeamsVoiceUser]:
    """Which of this enterprise's Teams users holds each number (users of other enterprises are never named)."""
    found: dict[str, TeamsVoiceUser] = {}
    wanted = sorted(set(e164s))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        for user in await session.scalars(select(TeamsVoiceUser).where(
                TeamsVoiceUser.enterprise_id == enterprise_id, TeamsVoiceUser.phone_number.in_(chunk))):
            found[user.phone_number or ""] = user
    return found
