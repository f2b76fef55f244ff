"""Around a subscription, as the vendor's portal calls it: its licences (an enforced quota), and what teamsvoice
does not do (number porting, Operator Connect numbers) answered truthfully instead of a bare 404."""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.deps import UnitOfWorkDep, read_json
from teamsvoice.api.docs import request_body
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion.deps import instance_checked, subscription_access
from teamsvoice.api.fusion.errors import fusion_error
from teamsvoice.api.fusion.wire import SUB_PATH
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.fusion import licences
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.scope import SubscriptionAccess

router = APIRouter(tags=["Fusion: subscription licences, porting, Operator Connect"])
_SUB = "tenants.instance.subscriptions.instance"
NOT_IMPLEMENTED = 1501  # docs/fusion-errors.md


def render_licences(counts: licences.Licences) -> dict[str, Any]:
    return {"msTeamsUsers": {"assigned": counts.users_assigned, "inUse": counts.users_in_use},
            "sipTrunkChannels": {"assigned": counts.channels_assigned}}


def _assigned(body: dict[str, Any], key: str) -> int | None:
    """`{key: {"assigned": N}}`'s N (None when the body has no `key`)."""
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, dict) or set(value) != {"assigned"}:
        raise ValidationFailed(f'{key}: must be {{"assigned": <integer>}}')
    return licences.check_count(value["assigned"], f"{key}.assigned")


def not_implemented(what: str) -> JSONResponse:
    return fusion_error(501, NOT_IMPLEMENTED, f"{what} is not implemented by teamsvoice")


@router.get(SUB_PATH + "/licenses", summary="The subscription's licences: {msTeamsUsers: {assigned, inUse}, sipTrunkChannels: {assigned}}",
            description="`msTeamsUsers.assigned` 0 means no limit is set (the default of subscriptions "
            "created without licences); `inUse` counts the subscription's users that hold a number.",
    responses=docs.ok(
        docs.LicencesInUse, "The licences",
        example={"msTeamsUsers": {"assigned": 10, "inUse": 3}, "sipTrunkChannels": {"assigned": 0}}
    ),
)
async def get_licences(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.licenses.read"))], uow: UnitOfWorkDep,
) -> dict[str, Any]:
    return render_licences(await licences.licences(uow.session, access))


@router.put(
    SUB_PATH + "/licenses", summary='Set a licence count: {"msTeamsUsers": {"assigned": N}} or {"sipTrunkChannels": {"assigned": N}}',
    description="The MS Teams users licence is enforced: giving a number to one user more than `assigned` answers "
    "400 (code 2060), for single updates and bulk items alike; `assigned` cannot go below `inUse` (code 2061). "
    "0 removes the limit.",
    openapi_extra=request_body(docs.LicencesUpdateRequest, example={"msTeamsUsers": {"assigned": 25}}),
    responses=docs.ok(docs.LicencesInUse, "The licences"),
)
async def put_licences(
    request: Request, access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.licenses.update"))],
    uow: UnitOfWorkDep,
) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict) or not body:
        raise ValidationFailed('The request body must be {"msTeamsUsers": {"assigned": N}} or '
                               '{"sipTrunkChannels": {"assigned": N}}')
    unknown = set(body) - {"msTeamsUsers", "sipTrunkChannels"}
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown licence type (msTeamsUsers, sipTrunkChannels)")
    return render_licences(await licences.update_licences(
        uow.session, access, users=_assigned(body, "msTeamsUsers"), channels=_assigned(body, "sipTrunkChannels")))


# --- what teamsvoice does not do -------------------------------------------------------------------------


@router.get(SUB_PATH + "/msteams/oc/numbers", summary="Operator Connect numbers: none (subscriptions are Direct Routing)",
            description="teamsvoice runs Direct Routing only: a subscription has no Operator Connect numbers.",
    responses=docs.ok(
        docs.InventoryNumbers, "None", example={"numbers": [], "page": 1, "pages": 1, "results": 0}
    ),
)
async def operator_connect_numbers(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.msteams.oc.numbers.list"))],
) -> dict[str, Any]:
    return {"numbers": [], "page": 1, "pages": 1, "results": 0}


@router.get(SUB_PATH + "/porting/requests", summary="Number porting requests: not implemented (501)",
    status_code=501, responses=docs.NOT_IMPLEMENTED,
    description="teamsvoice does not port numbers with external carriers: always 501 (code 1501).",
)
async def list_porting_requests(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.porting.requests.list"))],
) -> JSONResponse:
    return not_implemented("Number porting with external carriers")


@router.post(SUB_PATH + "/porting/requests", summary="Start a number porting request: not implemented (501)",
    status_code=501, responses=docs.NOT_IMPLEMENTED,
    description="teamsvoice does not port numbers with external carriers: always 501 (code 1501).",
)
async def create_porting_request(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.porting.requests.create"))],
) -> JSONResponse:
    return not_implemented("Number porting with external carriers")


@router.get("/api/v01/draas/{draas_instance}/public/postal_codes", summary="Postal code lookup: not implemented (501)",
    status_code=501, responses=docs.NOT_IMPLEMENTED,
    description="teamsvoice has no postal code database: always 501 (code 1501).",
)
async def postal_codes(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("public.country_codes.list"))],
) -> JSONResponse:
    return not_implemented("Postal code lookup")
