"""Catalogues the Fusion portal reads (97_public_data) and the number stock around a subscription, as far as
teamsvoice has them.

teamsvoice keeps no provider number stock, no entitlements and no rating: a subscription's numbers are added
to it directly (`POST .../numbers`). So the stock ranges, suggestions, entitlements, entitlement types, rate plans
and reserved inventory are truthfully empty; writes that would need the stock answer 501 (see the routes).
Disconnected numbers are those in quarantine after offboarding (`voice_state`'s NumberQuarantine: a user deleted
in Entra ID left its number, no one may get it before `until`).
"""

from typing import Any

import phonenumbers
import pycountry
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.phone import calling_code, parse_e164
from teamsvoice.domain.fusion import repository
from teamsvoice.domain.fusion.numbers import search_digits
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.roles import FUSION_LEVEL_OF
from teamsvoice.domain.fusion.scope import SubscriptionAccess, org_uuid

NUMBER_TYPES = ("geographic", "mobile", "toll_free", "premium", "national", "voip", "shared_cost", "other")
INVENTORY_STATES = ("reserved", "disconnected")


def country_codes() -> list[dict[str, Any]]:
    """Every ISO 3166 country with its calling code, by name."""
    found = []
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            country = pycountry.countries.get(alpha_2=region)
            if country is not None:
                found.append({"isoCode": region, "countryCode": f"+{code}", "name": country.name})
    return sorted(found, key=lambda c: (c["name"], c["countryCode"]))


async def owners(session: AsyncSession, principal: FusionPrincipal, level: str) -> list[dict[str, Any]]:
    """Who may own a new object of `level` (tenant: a distributor or reseller; reseller: a distributor), among
    the nodes under the caller's control."""
    if level not in ("tenant", "reseller"):
        raise ValidationFailed("level: must be tenant or reseller")
    wanted = ["MASTER_RESELLER", "RESELLER"] if level == "tenant" else ["MASTER_RESELLER"]
    rows = await repository.resellers_among(session, principal.reseller_scope, wanted)
    return [{"id": r.id, "name": r.name, "uuid": org_uuid(r.id), "type": FUSION_LEVEL_OF[r.level]} for r in rows]


def check_inventory_status(status: str | None) -> str:
    if status not in INVENTORY_STATES:
        raise ValidationFailed(f"status: must be one of {', '.join(INVENTORY_STATES)}")
    return status


def check_suggestion_query(number_type: str | None, country_code: str | None, range_size: int,
                           number_of_results: int) -> None:
    if number_type is not None and number_type not in NUMBER_TYPES:
        raise ValidationFailed(f"numberType: must be one of {', '.join(NUMBER_TYPES)}")
    if country_code is not None:
        calling_code(country_code)
    if not 1 <= range_size <= 10_000:
        raise ValidationFailed("rangeSize: must be between 1 and 10000")
    if not 1 <= number_of_results <= 100:
        raise ValidationFailed("numberOfResults: must be between 1 and 100")


async def disconnected(session: AsyncSession, access: SubscriptionAccess, search: str | None, offset: int,
                       limit: int) -> tuple[list[dict[str, Any]], int]:
    """The subscription's customer's numbers in quarantine now, as number_inventory items: `id` the number's own in
    the subscription's inventory (the one `.../numbers` answers; null for a number in none); `region` null, since
    teamsvoice's inventory has no regions (vendor-notes 2.5: a stock range's `region?: int`; it keeps no stock)."""
    rows, total = await repository.quarantined_numbers(session, access.enterprise.id, access.subscription.id,
                                                       now=utcnow(), digits=search_digits(search),
                                                       offset=offset, limit=limit)
    items = []
    for row, number in rows:
        parsed = parse_e164(row.e164)
        items.append({"id": number.id if number is not None else None, "countryCode": f"+{parsed.country_code}",
                      "nsn": parsed.nsn, "numberType": parsed.number_type, "region": None, "state": "disconnected",
                      "stateUpdatedOn": row.created_at.isoformat() + "Z", "freeOn": row.until.isoformat() + "Z"})
    return items, total
