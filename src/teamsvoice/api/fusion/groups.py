"""Fusion's `groups/{uuid}` routes (a group is a node of the organisation tree: system, distributor or reseller;
`domain/fusion/groups.py`) and the number inventory type of a group or subscription (vendor-notes 2.5, 2.9).

- `GET groups/{uuid}/licenses?detailed=bool` (06_licenses): documented as `{msTeamsUsers, sipTrunkChannels,
  group}`, the inner shapes not; they follow the closest documented sibling, a subscription's licences
  (`subscription_extras.render_licences`), summed over the subscriptions under the group; `group` is the
  vendor's Owner object (99_generic). What `detailed=true` adds is not documented: ours, each subscription's
  licences in the sibling's shape.
- `GET groups/{uuid}/number_inventory_type` and `GET .../subscriptions/{sub_id}/number_inventory_type` (08.1_numbers):
  only their roles and purpose are documented ("the service used to manage numbers", the value of the config
  key `draas_external_number_inventory_management_system`), not the body nor its values. teamsvoice has no
  such service (numbers are added to subscriptions directly), so rather than invent a body it answers 501
  (code 1501) saying so, once the caller's role and the path are checked.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from teamsvoice.api.deps import UnitOfWorkDep
from teamsvoice.api.docs import Doc
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion.deps import check_instance, require, subscription_access
from teamsvoice.api.fusion.subscription_extras import not_implemented, render_licences
from teamsvoice.api.fusion.wire import SUB_PATH, render_owner
from teamsvoice.api.routing import APIRouter
from teamsvoice.domain.fusion import groups
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.orgs.models import Reseller

router = APIRouter(tags=["Fusion: groups (licences, number inventory type)"])
GROUP_PATH = "/api/v01/draas/{draas_instance}/groups/{uuid}"
_SUB = "tenants.instance.subscriptions.instance"
NO_INVENTORY_TYPE = ("The number inventory type (the vendor documents neither its body nor its values; teamsvoice "
                     "uses no external number inventory system: numbers are added to subscriptions with POST "
                     ".../subscriptions/{sub_id}/numbers)")


def group_access(permission: str) -> Callable[..., Awaitable[Reseller]]:
    """Role check (403 whatever the path), then `{draas_instance}/groups/{uuid}` resolved to a group the caller
    controls (404 otherwise, as for a group that does not exist)."""
    checker = require(permission)

    async def resolve(
        request: Request, principal: Annotated[FusionPrincipal, Depends(checker)], uow: UnitOfWorkDep,
        draas_instance: Annotated[str, Path()], uuid: Annotated[str, Path()],
    ) -> Reseller:
        check_instance(request, draas_instance)
        return await groups.group_in_scope(uow.session, principal, uuid)

    return resolve


class GroupLicencesTenant(Doc):
    uuid: str
    name: str


class GroupSubscriptionLicences(Doc):
    id: int
    name: str
    tenant: GroupLicencesTenant
    msTeamsUsers: dict[str, int] = Field(examples=[{"assigned": 10, "inUse": 3}])
    sipTrunkChannels: dict[str, int] = Field(examples=[{"assigned": 0}])


class GroupLicences(Doc):
    msTeamsUsers: dict[str, int] = Field(examples=[{"assigned": 25, "inUse": 3}],
                                         description="`assigned`: the subscriptions' sum, 0 (no limit) when one of "
                                         "them has no limit; `inUse`: their users holding a number")
    sipTrunkChannels: dict[str, int] = Field(examples=[{"assigned": 0}], description="`assigned` as for msTeamsUsers")
    group: docs.OwnerInfo
    subscriptions: list[GroupSubscriptionLicences] | None = Field(
        default=None, description="With `detailed=true` only (ours): each subscription under the group")


GROUP_LICENCES_EXAMPLE = {
    "msTeamsUsers": {"assigned": 25, "inUse": 3}, "sipTrunkChannels": {"assigned": 0},
    "group": {"type": "reseller", "uuid": "5b1f0c4e-3d1a-5c55-9a43-8f1e2b7c9d10", "name": "Northwind Telecom"},
    "subscriptions": [
        {"id": 7, "name": "MS Teams Direct Routing", "tenant": {"uuid": "0d9c3f52-6a0e-4bb1-9d5e-2f4c1a7b8e63",
                                                                "name": "Acme"},
         "msTeamsUsers": {"assigned": 10, "inUse": 3}, "sipTrunkChannels": {"assigned": 0}},
        {"id": 9, "name": "Teams", "tenant": {"uuid": "7e2b4a91-1c3d-4f5e-8a6b-9c0d1e2f3a4b", "name": "Globex"},
         "msTeamsUsers": {"assigned": 15, "inUse": 0}, "sipTrunkChannels": {"assigned": 0}},
    ],
}


def _render_subscription(found: groups.SubscriptionLicences) -> dict[str, Any]:
    return {"id": found.subscription_id, "name": found.subscription_name,
            "tenant": {"uuid": found.tenant_uuid, "name": found.tenant_name}, **render_licences(found.licences)}


@router.get(
    GROUP_PATH + "/licenses",
    summary="A group's licences: {msTeamsUsers: {assigned, inUse}, sipTrunkChannels: {assigned}, group}",
    description="The licences of the subscriptions of every tenant the group (a distributor, reseller or the "
    "system root under your control) controls, directly or through the resellers below it. Documented by the "
    "vendor (06_licenses) as `{msTeamsUsers, sipTrunkChannels, group}` without the inner shapes: they follow "
    "the subscription's `GET .../licenses` (`assigned`, `inUse`; `sipTrunkChannels` has no in-use count). "
    "`assigned` is the subscriptions' sum, or 0 (no limit, as on a subscription) when one of them has no limit; "
    "`inUse` counts their users holding a number (resource accounts take no licence). `group`: the vendor's "
    "Owner object `{type, uuid, name}`. `detailed` (true|false, default false): what it adds is not documented; "
    "true adds ours, `subscriptions: [{id, name, tenant: {uuid, name}, msTeamsUsers, sipTrunkChannels}]`, each "
    "in the subscription licences' shape. Another value of `detailed` is a 400; a group not under your control "
    "is a 404.",
    responses=docs.ok(GroupLicences, "The group's licences", example=GROUP_LICENCES_EXAMPLE),
)
async def get_group_licences(
    group: Annotated[Reseller, Depends(group_access("groups.instance.licenses.list"))], uow: UnitOfWorkDep,
    detailed: Annotated[bool, Query(description="true: each subscription's licences too")] = False,
) -> dict[str, Any]:
    found = await groups.group_licences(uow.session, group)
    body = {**render_licences(found.total), "group": render_owner(found.group)}
    if detailed:
        body["subscriptions"] = [_render_subscription(s) for s in found.subscriptions]
    return body


@router.get(
    GROUP_PATH + "/number_inventory_type", summary="A group's number inventory type: not implemented (501)",
    status_code=501, responses=docs.NOT_IMPLEMENTED,
    description="Documented by the vendor (08.1_numbers) only as returning the service used to manage numbers "
    "(config `draas_external_number_inventory_management_system`), without its body or values. teamsvoice uses "
    "no external number inventory system (numbers are added to subscriptions directly), so it answers 501 "
    "(code 1501) saying so rather than invent a body; 403 without the role, 404 for a group not under your "
    "control.",
)
async def group_number_inventory_type(
    group: Annotated[Reseller, Depends(group_access("groups.instance.number_inventory_type.read"))],
) -> JSONResponse:
    return not_implemented(NO_INVENTORY_TYPE)


@router.get(
    SUB_PATH + "/number_inventory_type", summary="A subscription's number inventory type: not implemented (501)",
    status_code=501, responses=docs.NOT_IMPLEMENTED,
    description="As `GET .../groups/{uuid}/number_inventory_type`: the vendor documents neither the body nor "
    "its values; teamsvoice uses no external number inventory system, so 501 (code 1501) saying so; 403 "
    "without the role, 404 for a tenant or subscription not yours.",
)
async def subscription_number_inventory_type(
    access: Annotated[SubscriptionAccess, Depends(subscription_access(f"{_SUB}.number_inventory_type.read"))],
) -> JSONResponse:
    return not_implemented(NO_INVENTORY_TYPE)
