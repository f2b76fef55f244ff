"""Number stock and catalogues around a subscription (vendor-notes 2.1, 2.5; 97_public_data, 07_entitlements).

teamsvoice has no provider number stock, entitlements or rate plans (see domain/fusion/public_data.py): the
lists answer what is true (empty; disconnected numbers are those in quarantine after offboarding), the writes
that need a stock answer 501 in Fusion's envelope, and one entitlement by id is "not found" (none exist)."""

from typing import Annotated, Any

from fastapi import Depends
from fastapi.responses import JSONResponse

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.deps import UnitOfWorkDep
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion.deps import instance_checked, subscription_access
from teamsvoice.api.fusion.subscription_extras import not_implemented
from teamsvoice.api.fusion.wire import SUB_PATH
from teamsvoice.core.errors import NotFound, ValidationFailed
from teamsvoice.domain.fusion import public_data
from teamsvoice.api.fusion.paging import check_page_size
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.scope import SubscriptionAccess

router = APIRouter(tags=["Fusion: number stock and catalogues"])
PUBLIC = "/api/v01/draas/{draas_instance}/public"
_SUB = "tenants.instance.subscriptions.instance"
EMPTY_PAGE = {"page": 1, "pages": 1, "results": 0}


@router.get(PUBLIC + "/country_codes", summary="Countries with their calling codes: {countryCodes: [{isoCode, countryCode, name}]}",
    responses=docs.ok(docs.CountryCodes, "The countries"),
    description="Every country with its calling code (ISO 3166 alpha-2, E.164 code, English name).",
)
async def list_country_codes(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("public.country_codes.list"))],
) -> dict[str, Any]:
    return {"countryCodes": public_data.country_codes()}


@router.get(PUBLIC + "/owners", summary="Possible owners of a new tenant or reseller under your control: {owners: [{id, name, uuid, type}]}",
    description="`level`: tenant (default) or reseller.",
    responses=docs.ok(docs.Owners, "The possible owners"),
)
async def list_owners(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("public.owners.list"))], uow: UnitOfWorkDep,
    level: str = "tenant",
) -> dict[str, Any]:
    return {"owners": await public_data.owners(uow.session, principal, level)}


@router.get(PUBLIC + "/rate_plans", summary="Rate plans: none (teamsvoice does not rate calls)",
    responses=docs.ok(docs.list_of("ratePlans"), "None", example={"ratePlans": []}),
    description="teamsvoice does not rate calls: always an empty list.",
)
async def list_rate_plans(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("public.rate_plans.list"))],
) -> dict[str, Any]:
    return {"ratePlans": []}


@router.get(PUBLIC + "/entitlement_types", summary="Entitlement types: none (teamsvoice keeps no number stock)",
    responses=docs.ok(docs.list_of("entitlementTypes"), "None", example={"entitlementTypes": []}),
    description="teamsvoice keeps no number stock: always an empty list.",
)
async def list_entitlement_types(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("public.entitlement_types.list"))],
) -> dict[str, Any]:
    return {"entitlementTypes": []}


@router.get(PUBLIC + "/number_inventory/ranges", summary="The provider's free number stock: none (numbers are added to subscriptions directly)",
    responses=docs.ok(docs.list_of("ranges"), "None", example={"ranges": []}),
    description="teamsvoice keeps no provider number stock: always an empty list; numbers are added to "
    "subscriptions with POST .../numbers.",
)
async def list_stock_ranges(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("public.number_inventory.ranges.list"))],
) -> dict[str, Any]:
    return {"ranges": []}


@router.get(PUBLIC + "/number_inventory/suggestion", summary="Free ranges of the stock to suggest: none (no stock)",
    responses=docs.ok(docs.list_of("suggestions"), "None", example={"suggestions": []}),
    description="The query is checked (`numberType`, `countryCode`, `rangeSize`, `numberOfResults`); there "
    "is no stock to suggest from: an empty list.",
)
async def suggest_ranges(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("public.number_inventory.suggestion.read"))],
    numberType: str | None = None, countryCode: str | None = None, rangeSize: int = 1, numberOfResults: int = 10,
) -> dict[str, Any]:
    public_data.check_suggestion_query(numberType, countryCode, rangeSize, numberOfResults)
    return {"suggestions": []}


@router.get(SUB_PATH + "/number_inventory", summary="Numbers reserved for the subscription (none), or disconnected",
            description="`status` reserved | disconnected; `page` (from 1), `page_size`, `search` (digits). "
            "reserved: none (teamsvoice reserves no stock numbers). disconnected: the subscription's numbers "
            "in quarantine after offboarding (TEAMSVOICE_NUMBER_QUARANTINE_SECONDS): `{numbers: [{id, "
            "countryCode, nsn, numberType, region, state, stateUpdatedOn, freeOn}], page, pages, results}`; `id` is "
            "the number's in `.../numbers` (null for a number in no inventory), `region` null (no stock regions).",
    responses=docs.ok(docs.InventoryNumbers, "The numbers"),
)
async def list_number_inventory(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.number_inventory.list"))],
    uow: UnitOfWorkDep, status: str | None = None, page: int = 1, page_size: int = 10, search: str | None = None,
) -> dict[str, Any]:
    public_data.check_inventory_status(status)
    check_page_size(page_size)
    if not 1 <= page <= 1_000_000:
        raise ValidationFailed("page: must be 1 or more")
    if status == "reserved":
        return {"numbers": [], **EMPTY_PAGE}
    rows, total = await public_data.disconnected(uow.session, access, search, (page - 1) * page_size, page_size)
    return {"numbers": rows, "page": page, "pages": max(1, -(-total // page_size)), "results": total}


@router.get(SUB_PATH + "/entitlements", summary="Number entitlements of the subscription: none (numbers are not drawn from a stock)",
    responses=docs.ok(docs.list_of("entitlements"), "None", example={"entitlements": []}),
    description="Numbers are not drawn from a stock: always an empty list.",
)
async def list_entitlements(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.entitlements.list"))],
) -> dict[str, Any]:
    return {"entitlements": []}


@router.post(SUB_PATH + "/entitlements", summary="Add a number entitlement: not implemented (501)",
    status_code=501, responses=docs.NOT_IMPLEMENTED,
    description="teamsvoice keeps no provider number stock: always 501 (code 1501).",
)
async def create_entitlement(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.entitlements.create"))],
) -> JSONResponse:
    return not_implemented("Number entitlements (a provider number stock)")


@router.put(SUB_PATH + "/entitlements/{entitlement_id}", summary="Update a number entitlement (none exist: 404)",
    status_code=404, responses={404: docs.answer("No entitlement exists", docs.FusionError)},
    description="No entitlement exists: always 404.",
)
async def update_entitlement(
    entitlement_id: int,
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.entitlements.update"))],
) -> JSONResponse:
    raise NotFound(f"Entitlement {entitlement_id} not found")


@router.delete(SUB_PATH + "/entitlements/{entitlement_id}", summary="Delete a number entitlement (none exist: 404)",
    status_code=404, responses={404: docs.answer("No entitlement exists", docs.FusionError)},
    description="No entitlement exists: always 404.",
)
async def delete_entitlement(
    entitlement_id: int,
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.entitlements.delete"))],
) -> JSONResponse:
    raise NotFound(f"Entitlement {entitlement_id} not found")
