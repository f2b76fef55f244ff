"""Subscriptions of a tenant (vendor-notes 2.4) and their numbers (2.5)."""

from typing import Annotated, Any

from fastapi import Depends, Request

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.docs import body_example
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep, read_json
from teamsvoice.api.docs import request_body
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion.deps import current_principal, subscription_access, tenant_access
from teamsvoice.api.fusion.wire import (
    SUB_PATH,
    TENANTS_PATH,
    NumbersDeleteBody,
    SubscriptionCreateBody,
    render_number,
    render_subscription_summary,
)
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core import phone
from teamsvoice.domain.fusion import licences, numbers, onboarding
from teamsvoice.domain.fusion import repository as fusion_repository, tenants as service
from teamsvoice.domain.fusion.models import FusionTenant
from teamsvoice.api.fusion.paging import Page, check_page_size, decode_next
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.scope import SubscriptionAccess

router = APIRouter(tags=["Fusion: subscriptions and numbers"])
_SUB = "tenants.instance.subscriptions"


@router.get(TENANTS_PATH + "/{uuid}/subscriptions", summary="Subscriptions of a tenant",
    description="Vendor-notes 2.4: `search` (name), `page_size`, `next`.",
    responses=docs.ok(docs.SubscriptionList, "The subscriptions"),
)
async def list_subscriptions(
    tenant: Annotated[FusionTenant, Depends(tenant_access(f"{_SUB}.list"))], uow: UnitOfWorkDep,
    container: ContainerDep, page_size: int = 10, search: str | None = None, next: str | None = None,
) -> dict[str, Any]:
    check_page_size(page_size)
    context = {"search": search, "page_size": page_size}
    offset = decode_next(container.keyring, next, context)
    rows, total = await service.list_subscriptions(uow.session, tenant, search, offset, page_size)
    return {"subscriptions": [render_subscription_summary(s) for s in rows]} | Page(offset, page_size, total).wire(
        container.keyring, context)


async def _detail(uow: UnitOfWorkDep, access: SubscriptionAccess) -> dict[str, Any]:
    session = uow.session
    total, free, linked = await numbers.count_numbers(session, access.subscription.id)
    body = render_subscription_summary(access.subscription) | {
        # The users of `licenses.msTeamsUsers.inUse`, one count: resource accounts hold numbers but are no users.
        "numberOfUsers": await licences.users_in_use(session, access.enterprise.id),
        "numberOfTrunkgroups": 0,
        "phoneNumbers": {"total": total, "free": free, "linkedToUsers": linked, "linkedToTrunkgroups": 0,
                         "linkedToOperatorConnect": 0},
        "isDeletable": await service.is_deletable(session, access),
    }
    admin = await onboarding.get_admin(session, access)
    if admin is not None:
        run = await onboarding.latest_run(session, access.subscription.id)
        body["msteamsAdmin"] = {"msUsername": admin.ms_username, "status": onboarding.status_of(access, run)}
    if access.ms_tenant_id is not None:
        body["msteamsTenant"] = {"id": access.ms_tenant_id, "mode": access.subscription.mode}
    return body


@router.post(TENANTS_PATH + "/{uuid}/subscriptions", summary="Create a subscription (backed by a new enterprise)",
    description="Vendor-notes 2.4: `name` required; `licenses` `{msTeamsUsers, sipTrunkChannels}` (0: no "
    "limit).", responses=docs.ok(docs.SubscriptionDetail, "The new subscription"),
    openapi_extra=body_example(
        {"name": "Teams", "billingId": "B-1", "licenses": {"msTeamsUsers": 25, "sipTrunkChannels": 0}}
    ),
)
async def create_subscription(
    body: SubscriptionCreateBody, tenant: Annotated[FusionTenant, Depends(tenant_access(f"{_SUB}.create"))],
    principal: Annotated[FusionPrincipal, Depends(current_principal)], uow: UnitOfWorkDep,
) -> dict[str, Any]:
    licenses = body.licenses
    subscription = await service.create_subscription(
        uow.session, tenant, name=body.name, billing_id=body.billingId,
        ms_teams_users=licenses.msTeamsUsers if licenses else 0, sip_trunk_channels=licenses.sipTrunkChannels if licenses else 0)
    enterprise = await fusion_repository.enterprise_of(uow.session, subscription)
    return await _detail(uow, SubscriptionAccess(principal, tenant, subscription, enterprise))


@router.get(SUB_PATH, summary="A subscription with its licences, MS Teams link and number counts",
    description="With `msteamsTenant` once linked and `msteamsAdmin` once an administrator is set.",
    responses=docs.ok(docs.SubscriptionDetail, "The subscription"),
)
async def get_subscription(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.instance.read"))], uow: UnitOfWorkDep,
) -> dict[str, Any]:
    return await _detail(uow, access)


@router.delete(SUB_PATH, summary="Delete a subscription that is not linked and holds no numbers",
    description="400 while it is linked to a MS Teams tenant or holds numbers.",
    responses=docs.ok(docs.IdOnly, "The deleted subscription's id"),
)
async def delete_subscription(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.instance.delete"))], uow: UnitOfWorkDep,
) -> dict[str, Any]:
    subscription_id = access.subscription.id
    await service.delete_subscription(uow.session, access)
    return {"id": subscription_id}


# --- numbers --------------------------------------------------------------------------------------


@router.get(SUB_PATH + "/numbers", summary="The subscription's numbers (search: digits of the number)",
    description="Vendor-notes 2.5: `search` (digits), `page_size`, `next`. A number in quarantine (not assigned, not "
    "free) also has `freeOn`, the end of its quarantine.",
    responses=docs.ok(docs.NumberList, "The numbers"),
)
async def list_numbers(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.instance.numbers.list"))],
    uow: UnitOfWorkDep, container: ContainerDep, page_size: int = 10, search: str | None = None, next: str | None = None,
) -> dict[str, Any]:
    check_page_size(page_size)
    context = {"search": search, "page_size": page_size}
    offset = decode_next(container.keyring, next, context)
    rows, total = await numbers.list_numbers(uow.session, access, search=search, offset=offset, limit=page_size)
    held = await numbers.holders(uow.session, access, [r.e164 for r in rows])
    resting = await numbers.quarantine_ends(uow.session, [r.e164 for r in rows])
    return {"numbers": [render_number(r, held.get(r.e164), resting.get(r.e164)) for r in rows]} | Page(offset, page_size, total).wire(
        container.keyring, context)


@router.get(
    SUB_PATH + "/free_numbers", summary="The subscription's numbers a user can be given, as E.164 strings",
    description="`{freeNumbers: [\"+3222100100\", ...], page, pages, results, next?}`: the strings are what the "
    "portal renders and what a user's `phoneNumber` takes. A number held by a user or in quarantine is not free.",
    responses=docs.ok(docs.FreeNumbers, "The free numbers"),
)
async def free_numbers(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.instance.free_numbers.list"))],
    uow: UnitOfWorkDep, container: ContainerDep, page_size: int = 100, search: str | None = None, next: str | None = None,
) -> dict[str, Any]:
    check_page_size(page_size)
    context = {"search": search, "page_size": page_size, "free": True}
    offset = decode_next(container.keyring, next, context)
    rows, total = await numbers.list_numbers(uow.session, access, search=search, offset=offset, limit=page_size,
                                             free_only=True)
    return {"freeNumbers": [r.e164 for r in rows]} | Page(offset, page_size, total).wire(
        container.keyring, context)


@router.post(
    SUB_PATH + "/numbers", summary="Add numbers: {countryCode, ranges: [[start, end], ...]} or {countryCode, numbers: [nsn, ...]}",
    description="countryCode is the calling code (\"+32\"); optional isoCode (ISO 3166 alpha-2) checks every number's "
    "country. All or nothing; at most 10,000 numbers per request.",
    openapi_extra=request_body(
        docs.AddNumbersRequest, example={"countryCode": "+32", "ranges": [["22100100", "22100199"]]}
    ),
    responses=docs.ok(docs.NumbersAdded, "The numbers added"),
)
async def add_numbers(
    request: Request,
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.instance.numbers.create"))],
    uow: UnitOfWorkDep,
) -> dict[str, Any]:
    body = await _json_object(request)
    unknown = set(body) - {"countryCode", "ranges", "numbers", "isoCode"}
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field")
    if "countryCode" not in body:
        raise ValidationFailed("countryCode: is required")
    code = phone.calling_code(body["countryCode"])
    iso = numbers.check_iso_code(body["isoCode"]) if body.get("isoCode") is not None else None
    if ("ranges" in body) == ("numbers" in body):
        raise ValidationFailed("Give either ranges or numbers")
    if "ranges" in body:
        if not isinstance(body["ranges"], list) or not body["ranges"]:
            raise ValidationFailed("ranges: must be a non-empty list of [rangeStart, rangeEnd]")
        parsed, source = numbers.expand_ranges(code, body["ranges"], iso), "ranges"
    else:
        if not isinstance(body["numbers"], list) or not body["numbers"]:
            raise ValidationFailed("numbers: must be a non-empty list of national significant numbers")
        numbers.check_request_size("numbers", len(body["numbers"]))
        parsed, source = [phone.parse_number(code, n, iso) for n in body["numbers"]], "numbers"
    rows = await numbers.add_numbers(uow.session, access, parsed, source)
    return {"added": len(rows), "numbers": [render_number(r, None) for r in rows]}


@router.delete(SUB_PATH + "/numbers", summary="Remove unassigned numbers: {numbers: [{countryCode, nsn}]}",
    description="Only numbers no user holds and not in quarantine (400 code 1009 naming the number and the end of "
    "its quarantine); all or nothing; at most 10,000 numbers per request.",
    responses=docs.ok(docs.NumbersDeleted, "The numbers removed"),
    openapi_extra=body_example({"numbers": [{"countryCode": "+32", "nsn": "22100100"}]}),
)
async def delete_numbers(
    body: NumbersDeleteBody,
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.instance.numbers.delete"))],
    uow: UnitOfWorkDep,
) -> dict[str, Any]:
    numbers.check_request_size("numbers", len(body.numbers))
    parsed = [phone.parse_number(phone.calling_code(n.countryCode, "numbers.countryCode"), n.nsn) for n in body.numbers]
    return {"deleted": await numbers.delete_numbers(uow.session, access, parsed)}


async def _json_object(request: Request) -> dict[str, Any]:
    value = await read_json(request)
    if not isinstance(value, dict):
        raise ValidationFailed("The request body must be a JSON object")
    return value
