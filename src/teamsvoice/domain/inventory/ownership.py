"""One owner per number, whichever API family assigns it.

A number belongs to the enterprise whose inventory holds it (a Fusion subscription's numbers belong to the
enterprise backing the subscription); a number in no inventory belongs to the enterprise whose user holds it,
if any. Every write that gives a user a number asks `require_free` (both families, every kind of user: Teams
users, PBX connector users, resource accounts, the console's CSV preview), so a reseller can neither take
another reseller's number nor learn who holds it: a number owned elsewhere is simply "not found", a number in
quarantine after offboarding or an unlink waits (and stays in its inventory: `require_not_in_quarantine`), and a holder is only ever named to the owner of the number.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import Conflict, NotFound
from teamsvoice.domain.inventory import repository

NUMBER_NOT_AVAILABLE = "number_not_available"
NUMBER_IN_QUARANTINE = "number_in_quarantine"
NUMBER_TAKEN = "number_taken"  # held by another user of the enterprise (Fusion renders it as its code 2011)


async def owners(session: AsyncSession, e164s: list[str]) -> dict[str, int]:
    """The enterprise id owning each number that has an owner (`repository.OWNER_CLAIMS`: inventory first, then holders)."""
    found: dict[str, int] = {}
    for chunk in repository.chunks(e164s):
        found.update(await repository.owner_enterprises(session, chunk))
    return found


async def owned_elsewhere(session: AsyncSession, enterprise_id: int, e164s: list[str]) -> list[str]:
    """The numbers (sorted) that another enterprise owns."""
    return sorted(n for n, owner in (await owners(session, e164s)).items() if owner != enterprise_id)


async def require_assignable(session: AsyncSession, enterprise_id: int, e164: str, *, field: str = "phoneNumber") -> None:
    """A number another enterprise owns cannot be given to this enterprise's users: it answers exactly like a
    number the caller cannot see (the owner and any holder stay unnamed)."""
    _check_assignable(await repository.number_standing(session, enterprise_id, e164), enterprise_id, e164, field)


def _check_assignable(standing: repository.NumberStanding, enterprise_id: int, e164: str, field: str) -> None:
    if standing.owner_enterprise_id not in (None, enterprise_id):
        raise NotFound(f"{field}: {e164} not found among the numbers available to this enterprise",
                       code=NUMBER_NOT_AVAILABLE)
    until = standing.quarantined_until
    if until is not None:  # freed by offboarding (domain/voice_state) or an unlink: not given to anyone before the end
        raise in_quarantine(f"{field}: {e164}", until)


def in_quarantine(what: str, until: datetime) -> Conflict:
    return Conflict(f"{what} is in quarantine (its user was offboarded, or its tenant unlinked) until {until:%Y-%m-%d %H:%M} UTC",
                    code=NUMBER_IN_QUARANTINE)


async def quarantine_ends(session: AsyncSession, e164s: list[str]) -> dict[str, datetime]:
    """The end of the quarantine of each of the numbers that is in one now."""
    found: dict[str, datetime] = {}
    for chunk in repository.chunks(e164s):
        found.update(await repository.quarantine_ends(session, chunk))
    return found


async def require_not_in_quarantine(session: AsyncSession, e164s: list[str], *, field: str = "numbers") -> None:
    """A number in quarantine stays where it is until the end: it cannot leave its inventory (deleted, and so
    added to another customer's) any more than a user can get it (the quarantine exists so that nobody else
    reuses the number too soon). 400/409 naming the first such number and the end of its quarantine."""
    ends = await quarantine_ends(session, e164s)
    if ends:
        first = sorted(ends)[0]
        raise in_quarantine(f"{field}: {first}", ends[first])


async def require_free(
    session: AsyncSession, enterprise_id: int, e164: str, *, voice_user_id: int | None = None,
    pbx_user_id: int | None = None, field: str = "phoneNumber",
) -> None:
    """The one rule for giving `e164` to a user of the enterprise: `require_assignable`, then no other Teams
    user (resource accounts included) and no other PBX connector user of the enterprise holds it. The user being
    changed is left out by its Teams record id and/or PBX user id (a PBX user and its Teams user share one).
    One statement answers all of it (`repository.number_standing`)."""
    check_free(await repository.number_standing(session, enterprise_id, e164, except_voice_user_id=voice_user_id,
                                                except_pbx_user_id=pbx_user_id), enterprise_id, e164, field)


def check_free(standing: repository.NumberStanding, enterprise_id: int, e164: str, field: str = "phoneNumber") -> None:
    """`require_free`'s rule on a standing read by the caller (`repository.number_standing`, which a Fusion subscription's
    check of its inventory shares: `fusion.numbers.require_free_number`)."""
    _check_assignable(standing, enterprise_id, e164, field)
    holder = standing.teams_holder or standing.pbx_holder
    if holder is not None:
        raise Conflict(f"{field}: {e164} is already assigned to {holder}", code=NUMBER_TAKEN)
