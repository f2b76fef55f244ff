"""The number inventory's queries, for both API families: the numbers a subscription holds (its ranges and single
numbers, one row per number), who holds a number (Teams users, resource accounts included, and PBX connector
users, whichever family gave it), numbers in quarantine after offboarding, and free numbers. The rules over them
live in `ownership.py` and `fusion/numbers.py`; these functions take a session and plain values and answer rows,
tuples or counts. Lists of numbers are looked up in chunks of `CHUNK` (bound parameters stay few)."""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Integer, Select, String, and_, bindparam, case, delete, exists, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from teamsvoice.core import search as text_search
from teamsvoice.core.clock import utcnow
from teamsvoice.domain.calling.models import PbxUser
from teamsvoice.domain.fusion.models import FusionNumber, FusionSubscription
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.voice_state.models import NumberQuarantine

CHUNK = 500


def chunks(e164s: Sequence[str]) -> list[list[str]]:
    """The numbers, deduplicated and sorted, in lists of at most CHUNK."""
    wanted = sorted(set(e164s))
    return [wanted[start:start + CHUNK] for start in range(0, len(wanted), CHUNK)]


# --- who owns or holds a number, across every inventory and both families --------------------------------


def _inventory_claim(number: Callable[[Any], Any], now: Any) -> Select[tuple[str, int]]:
    return (select(FusionNumber.e164, FusionSubscription.enterprise_id)
            .join(FusionSubscription, FusionSubscription.id == FusionNumber.subscription_id).where(number(FusionNumber.e164)))


def _quarantine_claim(number: Callable[[Any], Any], now: Any) -> Select[tuple[str, int]]:
    return select(NumberQuarantine.e164, NumberQuarantine.enterprise_id).where(
        number(NumberQuarantine.e164), NumberQuarantine.until > now)


def _teams_holder_claim(number: Callable[[Any], Any], now: Any) -> Select[tuple[str, int]]:
    return select(TeamsVoiceUser.phone_number, TeamsVoiceUser.enterprise_id).where(number(TeamsVoiceUser.phone_number))


def _pbx_holder_claim(number: Callable[[Any], Any], now: Any) -> Select[tuple[str, int]]:
    return select(PbxUser.phone_number, PbxUser.enterprise_id).where(number(PbxUser.phone_number))


# Who owns a number, strongest claim first: the enterprise whose subscription's inventory holds it, else the enterprise
# whose quarantine holds it now (the quarantine follows the number: nobody else claims it before the end), else the enterprise
# of a Teams user holding it (resource accounts included), else of a PBX connector user holding it. The one place of
# the rule: `owner_enterprises` (many numbers) and `number_standing` (one) both answer from it. Each claim is a query
# of (number, enterprise id) whose number column meets `number(column)`, at the time `now` (the quarantine's end).
OWNER_CLAIMS = (_inventory_claim, _quarantine_claim, _teams_holder_claim, _pbx_holder_claim)


async def owner_enterprises(session: AsyncSession, e164s: list[str]) -> dict[str, int]:
    """The enterprise owning each of the numbers (at most CHUNK) that has an owner: its strongest claim's (one
    statement per claim, while some number is still without an owner)."""
    found: dict[str, int] = {}
    now = utcnow()
    for claim in OWNER_CLAIMS:
        rest = [n for n in e164s if n not in found]
        if not rest:
            break
        for e164, enterprise_id in await session.execute(claim(lambda column: column.in_(rest), now)):
            found.setdefault(e164, enterprise_id)
    return found


# --- what keeps a number from a user of the enterprise: the conditions `number_standing` (one number, for
# `ownership.require_free`) and `free_in_subscription` (listing and counting an inventory's free numbers) share ---


def _in_quarantine(e164: Any, now: Any = None) -> list[ColumnElement[bool]]:
    """The number is in quarantine now (offboarding, an unlink): nobody gets it before `until`."""
    return [NumberQuarantine.e164 == e164, NumberQuarantine.until > (utcnow() if now is None else now)]


def _teams_held(enterprise_id: Any, e164: Any) -> list[ColumnElement[bool]]:
    """A Teams user of the enterprise (resource accounts included) holds the number."""
    return [TeamsVoiceUser.enterprise_id == enterprise_id, TeamsVoiceUser.phone_number == e164]


def _pbx_held(enterprise_id: Any, e164: Any) -> list[ColumnElement[bool]]:
    """A PBX connector user of the enterprise holds the number."""
    return [PbxUser.enterprise_id == enterprise_id, PbxUser.phone_number == e164]


def free_in_subscription() -> ColumnElement[bool]:
    """The rule of a free number of a subscription's inventory, in SQL over `FusionNumber` (joined to its
    `FusionSubscription`): what `ownership.require_free` lets a user of the subscription's enterprise take. Its
    owner is that enterprise (the inventory's claim is the strongest), so free means: not in quarantine, and no Teams
    user and no PBX connector user of the enterprise holds it. `free_numbers`, the counts of a subscription (API
    and console) and the console's number picker all ask this."""
    enterprise_id = FusionSubscription.enterprise_id
    return and_(~exists().where(*_in_quarantine(FusionNumber.e164)),
                ~exists().where(*_teams_held(enterprise_id, FusionNumber.e164)),
                ~exists().where(*_pbx_held(enterprise_id, FusionNumber.e164)))


@dataclass(frozen=True)
class NumberStanding:
    """What decides whether a number may go to a user of one enterprise (`ownership.require_free`): the
    enterprise owning it (its inventory's, else a holder's), the end of its quarantine if it is in one now, and
    the enterprise's Teams user (resource accounts included) and PBX connector user holding it, if any."""

    owner_enterprise_id: int | None
    quarantined_until: datetime | None
    teams_holder: str | None  # user principal name
    pbx_holder: str | None  # the PBX user's Teams user id
    in_subscription: bool | None = None  # whether the subscription asked about has it in its inventory (None: not asked)


async def number_standing(session: AsyncSession, enterprise_id: int, e164: str, *, except_voice_user_id: int | None = None,
                          except_pbx_user_id: int | None = None, subscription_id: int | None = None) -> NumberStanding:
    """The number's standing for the enterprise in ONE statement (a bulk item asks it for every user it gives a
    number, inside the transaction that records the wish: four round trips there held a pooled connection four
    times as long). The Teams holder leaves out the record `except_voice_user_id`; the PBX holder leaves out the PBX
    user `except_pbx_user_id` and any PBX user of that Teams record. The owner is its strongest claim's (OWNER_CLAIMS).
    With `subscription_id`, it also answers whether that Fusion subscription's inventory has the number (a read of its
    own before: one statement per user of a bulk job)."""
    statement = _standing_statement(except_voice_user_id is not None, subscription_id is not None)
    row = (await session.execute(statement, {
        "e164": e164, "enterprise_id": enterprise_id, "now": utcnow(),
        "except_voice": except_voice_user_id if except_voice_user_id is not None else -1,
        "except_pbx": except_pbx_user_id if except_pbx_user_id is not None else -1,
        **({"subscription_id": subscription_id} if subscription_id is not None else {}),
    })).one()
    return NumberStanding(*row[:4], in_subscription=row[4] is not None if subscription_id is not None else None)


@cache
def _standing_statement(leaves_out_a_voice_user: bool, asks_a_subscription: bool = False) -> Select[Any]:
    """`number_standing`'s statement, built once per shape with its values as parameters (e164, enterprise_id,
    now, except_voice, except_pbx, subscription_id): built for each call, its nine subqueries and its cache key cost a
    bulk item about half a millisecond of CPU, more than the statement's own execution in the worker."""
    e164, enterprise_id = bindparam("e164", type_=String), bindparam("enterprise_id", type_=Integer)
    now, except_voice = bindparam("now", type_=DateTime), bindparam("except_voice", type_=Integer)

    def first(column: Any, *where: Any) -> Any:
        return select(column).where(*where).limit(1).scalar_subquery()

    def claimed(claim: Callable[[Callable[[Any], Any], Any], Select[tuple[str, int]]]) -> Any:
        query = claim(lambda column: column == e164, now)
        return query.with_only_columns(query.selected_columns[1]).limit(1).scalar_subquery()

    return select(
        func.coalesce(*(claimed(claim) for claim in OWNER_CLAIMS)),
        first(NumberQuarantine.until, *_in_quarantine(e164, now)),
        first(TeamsVoiceUser.user_principal_name, *_teams_held(enterprise_id, e164), TeamsVoiceUser.id != except_voice),
        first(PbxUser.teams_user_id, *_pbx_held(enterprise_id, e164), PbxUser.id != bindparam("except_pbx", type_=Integer),
              PbxUser.voice_user_id.is_distinct_from(except_voice) if leaves_out_a_voice_user else true()),
        *([first(FusionNumber.id, FusionNumber.subscription_id == bindparam("subscription_id", type_=Integer),
                 FusionNumber.e164 == e164)] if asks_a_subscription else []),
    )


async def quarantine_ends(session: AsyncSession, e164s: list[str]) -> dict[str, datetime]:
    """The end of the quarantine of each of the numbers (at most CHUNK) in one now."""
    return dict((await session.execute(select(NumberQuarantine.e164, NumberQuarantine.until).where(
        NumberQuarantine.e164.in_(e164s), NumberQuarantine.until > utcnow()))).tuples().all())


# --- a subscription's inventory ---------------------------------------------------------------------------


async def in_any_inventory(session: AsyncSession, e164s: list[str]) -> list[str]:
    """Which of the numbers (at most CHUNK) some subscription's inventory holds."""
    return list(await session.scalars(select(FusionNumber.e164).where(FusionNumber.e164.in_(e164s))))


async def numbers_page(session: AsyncSession, subscription_id: int, *, digits: str | None, free_only: bool,
                       offset: int, limit: int) -> tuple[list[FusionNumber], int]:
    """A page of the subscription's numbers in E.164 order, and how many there are in all: those containing
    `digits` if given, and only the free ones (`free_in_subscription`) if `free_only`."""
    query = select(FusionNumber).where(FusionNumber.subscription_id == subscription_id)
    if digits:
        query = query.where(text_search.contains(FusionNumber.e164, digits))
    if free_only:
        query = query.join(FusionSubscription, FusionSubscription.id == FusionNumber.subscription_id).where(
            free_in_subscription())
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(await session.scalars(query.order_by(FusionNumber.e164).offset(offset).limit(limit)))
    return rows, total


async def subscription_numbers(session: AsyncSession, subscription_id: int, e164s: list[str]) -> list[FusionNumber]:
    """The subscription's inventory rows of the numbers given (those it has)."""
    if not e164s:
        return []
    return list(await session.scalars(select(FusionNumber).where(
        FusionNumber.subscription_id == subscription_id, FusionNumber.e164.in_(e164s))))


async def inventory_e164s(session: AsyncSession, subscription_id: int) -> frozenset[str]:
    """Every number of the subscription's inventory."""
    return frozenset(await session.scalars(select(FusionNumber.e164).where(FusionNumber.subscription_id == subscription_id)))


async def delete_numbers(session: AsyncSession, number_ids: list[int]) -> None:
    await session.execute(delete(FusionNumber).where(FusionNumber.id.in_(number_ids)))


async def count_numbers(session: AsyncSession, subscription_id: int) -> tuple[int, int, int]:
    """(numbers in the subscription's inventory, of which free (`free_in_subscription`), held by a Teams user).
    A number in quarantine is neither free nor held. One rule with the Customers page's counts (`count_numbers_of`)."""
    return (await count_numbers_of(session, [subscription_id]))[subscription_id]


async def count_numbers_of(session: AsyncSession, subscription_ids: Collection[int]) -> dict[int, tuple[int, int, int]]:
    """(numbers, free, held by a Teams user) of each of the subscriptions, in one statement (a GROUP BY): free as
    `free_in_subscription` says, held as the Teams users holding the number count. A subscription without a number
    is (0, 0, 0)."""
    if not subscription_ids:
        return {}
    holder = aliased(TeamsVoiceUser)  # (apart from the Teams users `free_in_subscription` asks about)
    rows = await session.execute(
        select(FusionNumber.subscription_id, func.count(FusionNumber.id.distinct()),
               func.count(case((free_in_subscription(), FusionNumber.id)).distinct()), func.count(holder.id))
        .join(FusionSubscription, FusionSubscription.id == FusionNumber.subscription_id)
        .outerjoin(holder, holder.phone_number == FusionNumber.e164)
        .where(FusionNumber.subscription_id.in_(sorted(subscription_ids))).group_by(FusionNumber.subscription_id))
    counted = {subscription_id: (total, free, linked) for subscription_id, total, free, linked in rows}
    return {subscription_id: counted.get(subscription_id, (0, 0, 0)) for subscription_id in subscription_ids}
