"""A subscription's number inventory: E.164-validated and country-checked; assignment derived from the
shared `TeamsVoiceUser` rows (a number set through either API family is assigned for both)."""

from dataclasses import dataclass
from datetime import datetime

import pycountry
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import Conflict, NotFound, ValidationFailed
from teamsvoice.core.limits import is_digits
from teamsvoice.core.phone import ParsedNumber, parse_e164, parse_number
from teamsvoice.domain.fusion import repository as fusion_repository
from teamsvoice.domain.fusion.models import FusionNumber
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.inventory import ownership, repository
from teamsvoice.domain.provisioning.models import TeamsVoiceUser

MAX_NUMBERS_PER_REQUEST = 10_000  # added or removed by one request: `check_request_size`
NUMBER_TAKEN = "number_in_an_inventory"
NUMBER_ASSIGNED = "number_assigned"
NUMBER_NOT_IN_SUBSCRIPTION = "number_not_in_subscription"


def check_request_size(field: str, count: int) -> None:
    """The one bound on how many numbers one request adds to or removes from a subscription's inventory (all or
    nothing, in one transaction): a 400 naming `field` past MAX_NUMBERS_PER_REQUEST."""
    if count > MAX_NUMBERS_PER_REQUEST:
        raise ValidationFailed(f"{field}: at most {MAX_NUMBERS_PER_REQUEST} numbers per request")


def digits_of(text: str) -> str:
    """The ASCII digits of `text`, in order (`core.limits.is_digits`: "²" and "١" are not digits of a number)."""
    return "".join(ch for ch in text if is_digits(ch))


def check_iso_code(raw: object, field: str = "isoCode") -> str:
    """The one country rule of the Fusion API (numbers' isoCode, locations, users' and resource accounts'
    location and `filters.country`): an ISO 3166 alpha-2 code (any case), answered upper case, or 400 naming it."""
    if not isinstance(raw, str):  # said as the request wrote it (null, not Python's None)
        shown = "null" if raw is None else "a JSON " + {bool: "boolean", int: "number", float: "number", list: "array",
                                                       dict: "object"}.get(type(raw), "value")
        raise ValidationFailed(f"{field}: must be an ISO 3166 alpha-2 country code such as BE, not {shown}")
    if len(raw) != 2 or pycountry.countries.get(alpha_2=raw.upper()) is None:
        raise ValidationFailed(f"{field}: '{raw[:40]}' is not an ISO 3166 alpha-2 country code")
    return raw.upper()


def parse_full_number(raw: object, field: str) -> str:
    """A full number as the Fusion API takes it: E.164 with its leading `+` (spec 004 writes them so); the
    normalised E.164 string, or 400 naming `field`. National or bare digits are refused rather than guessed
    (`14139301601` for a GB user is not a GB number). ConnecttoTeams keeps its own rule (spec 003's digits)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationFailed(f"{field}: must be a phone number in E.164 format such as +3212345678")
    text = raw.strip()
    if not text.startswith("+"):
        raise ValidationFailed(f"{field}: '{raw}' is not in E.164 format: it must start with + and the country code "
                               f"(e.g. +{digits_of(text) or '3212345678'})")
    try:
        return parse_e164(text).e164
    except ValidationFailed as exc:
        raise ValidationFailed(f"{field}: {exc.message}") from None


def _range_end(value: object) -> str | None:
    """A range's start or end as its digits (a string keeps its leading zeros: "0612345670"), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and is_digits(value) and len(value) <= 15:
        return value
    return None


def expand_ranges(code: int, ranges: list[list[int | str]], iso_code: str | None) -> list[ParsedNumber]:
    """Each [rangeStart, rangeEnd] (integers, or strings of digits as spec 004's example writes them) expanded."""
    found: list[ParsedNumber] = []
    for position, pair in enumerate(ranges):
        ends = [_range_end(v) for v in pair] if isinstance(pair, list) and len(pair) == 2 else [None]
        if None in ends:
            raise ValidationFailed(f"ranges[{position}]: must be [rangeStart, rangeEnd] (two numbers: integers, or "
                                   "strings of digits)")
        first, last = ends
        assert first is not None and last is not None
        start, end = int(first), int(last)
        if end < start:
            raise ValidationFailed(f"ranges[{position}]: rangeEnd {last} is below rangeStart {first}")
        if len(first) != len(last):
            raise ValidationFailed(f"ranges[{position}]: rangeStart and rangeEnd must have the same number of digits")
        check_request_size("ranges", len(found) + (end - start + 1))
        found.extend(parse_number(code, f"{value:0{len(first)}d}", iso_code) for value in range(start, end + 1))
    return found


async def add_numbers(session: AsyncSession, access: SubscriptionAccess, parsed: list[ParsedNumber], source: str) -> list[FusionNumber]:
    """All or nothing: a duplicate in the request, or a number another owner has (in a subscription's inventory,
    or held by a user of another customer), refuses the lot without naming that owner."""
    if not parsed:
        raise ValidationFailed("numbers: nothing to add")
    wanted = [p.e164 for p in parsed]
    if len(set(wanted)) != len(wanted):
        duplicate = next(n for n in wanted if wanted.count(n) > 1)
        raise ValidationFailed(f"numbers: {duplicate} appears twice in the request")
    taken: list[str] = []
    for chunk in repository.chunks(wanted):
        taken += await repository.in_any_inventory(session, chunk)
    taken = sorted(set(taken) | set(await ownership.owned_elsewhere(session, access.enterprise.id, wanted)))
    if taken:
        raise Conflict(f"numbers: {', '.join(taken[:10])} already belong to an inventory", code=NUMBER_TAKEN)
    rows = [FusionNumber(subscription_id=access.subscription.id, e164=p.e164, iso_code=p.iso_code,
                         country_code=p.country_code, nsn=p.nsn, number_type=p.number_type, source=source)
            for p in parsed]
    session.add_all(rows)
    await session.flush()
    return rows


def search_digits(search: str | None) -> str | None:
    """The digits to look for in numbers (None: no search), for every search of numbers by digits."""
    if not search:
        return None
    digits = digits_of(search)
    if not digits:
        raise ValidationFailed("search: give some digits of the number")
    return digits


async def list_numbers(
    session: AsyncSession, access: SubscriptionAccess, *, search: str | None, offset: int, limit: int,
    free_only: bool = False,
) -> tuple[list[FusionNumber], int]:
    """A page of the subscription's numbers (E.164 order) and how many there are in all; `free_only`: those a
    user of the subscription could be given (`inventory.repository.free_in_subscription`: not held by any user of
    the enterprise, whichever family gave it, and not in quarantine)."""
    return await repository.numbers_page(session, access.subscription.id, digits=search_digits(search),
                                         free_only=free_only, offset=offset, limit=limit)


async def quarantine_ends(session: AsyncSession, e164s: list[str]) -> dict[str, datetime]:
    """The end of the quarantine of each of the numbers that is in one now."""
    return await ownership.quarantine_ends(session, e164s)


@dataclass(frozen=True)
class NumberHolder:
    """Who holds a number: a voice record of the subscription's customer and, when the record is a resource
    account's (call queue, auto attendant), that account's id (the `draas.id` the resource accounts list answers)."""

    user: TeamsVoiceUser
    resource_account_id: int | None


async def holders(session: AsyncSession, access: SubscriptionAccess, e164s: list[str]) -> dict[str, NumberHolder]:
    """Which voice record of the subscription's customer holds each number (never one of another customer): one
    read per `repository.CHUNK` numbers."""
    found: dict[str, NumberHolder] = {}
    for chunk in repository.chunks(e164s):
        for user, account_id in await fusion_repository.number_holders(session, access.enterprise.id,
                                                                       access.subscription.id, chunk):
            found[user.phone_number or ""] = NumberHolder(user, account_id)
    return found


def not_in_subscription(e164: str) -> ValidationFailed:
    return ValidationFailed(f"{e164} is not a number of this subscription", code=NUMBER_NOT_IN_SUBSCRIPTION)


async def in_inventory(session: AsyncSession, access: SubscriptionAccess, e164s: list[str]) -> set[str]:
    """Which of the numbers (E.164) the subscription's inventory has: a read per chunk, not one per number."""
    found: set[str] = set()
    for chunk in repository.chunks(e164s):
        found.update(r.e164 for r in await repository.subscription_numbers(session, access.subscription.id, chunk))
    return found


async def require_free_number(
    session: AsyncSession, access: SubscriptionAccess, raw: str, *, for_user_id: int | None = None
) -> str:
    """A number (E.164) of the subscription's inventory that no other user holds (`ownership.require_free`), both
    asked in one statement."""
    e164 = parse_e164(raw).e164
    standing = await repository.number_standing(session, access.enterprise.id, e164, except_voice_user_id=for_user_id,
                                                subscription_id=access.subscription.id)
    if not standing.in_subscription:
        raise not_in_subscription(e164)
    ownership.check_free(standing, access.enterprise.id, e164)
    return e164


async def delete_numbers(session: AsyncSession, access: SubscriptionAccess, parsed: list[ParsedNumber]) -> list[str]:
    """All or nothing: every number must be the subscription's, unassigned and out of quarantine (a quarantined
    number stays until its end: `ownership.require_not_in_quarantine`)."""
    wanted = sorted({p.e164 for p in parsed})
    if not wanted:
        raise ValidationFailed("numbers: nothing to delete")
    rows = await repository.subscription_numbers(session, access.subscription.id, wanted)
    missing = sorted(set(wanted) - {r.e164 for r in rows})
    if missing:
        raise NotFound(f"numbers: {', '.join(missing[:10])} not found in this subscription", code=NUMBER_NOT_IN_SUBSCRIPTION)
    held = await holders(session, access, wanted)
    if held:
        first = sorted(held)[0]
        raise Conflict(f"numbers: {first} is assigned to {held[first].user_principal_name}; free it first",
                       code=NUMBER_ASSIGNED)
    await ownership.require_not_in_quarantine(session, wanted)
    await repository.delete_numbers(session, [r.id for r in rows])
    return wanted


async def count_numbers(session: AsyncSession, subscription_id: int) -> tuple[int, int, int]:
    """(total, free, linked to users): free as `free_numbers` lists them (a number in quarantine is neither free
    nor linked)."""
    return await repository.count_numbers(session, subscription_id)

