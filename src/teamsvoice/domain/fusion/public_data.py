"""Catalogues the Fusion portal reads (97_public_data) and the number stock around a subscription, as far as
teamsvoice has them.

teamsvoice keeps no provider number stock, no entitlements, no rating and no quarantine of released numbers:
a subscription's numbers are added to it directly (`POST .../numbers`) and a deleted number is free at once.
So the stock ranges, suggestions, entitlements, entitlement types, rate plans and reserved/disconnected
inventory are truthfully empty; writes that would need the stock answer 501 (see the routes).
"""

from typing import Any

import phonenumbers
import pycountry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.phone import calling_code
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.roles import FUSION_LEVEL_OF
from teamsvoice.domain.fusion.scope import org_uuid
from teamsvoice.domain.orgs.models import Reseller

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
    rows = await session.scalars(select(Reseller).where(Reseller.id.in_(principal.reseller_scope),
                                                        Reseller.level.in_(wanted)).order_by(Reseller.name, Reseller.id))
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
