"""Tenants (vendor-notes 2.3): list, create, get, update, delete."""

from typing import Annotated, Any

from fastapi import Depends, Request

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.docs import body_example
from teamsvoice.api.deps import UnitOfWorkDep, container_of
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion.deps import current_principal, instance_checked, tenant_access
from teamsvoice.api.fusion.wire import TENANTS_PATH, TenantCreateBody, TenantUpdateBody, render_tenant
from teamsvoice.domain.fusion import tenants as service
from teamsvoice.domain.fusion.models import FusionTenant
from teamsvoice.api.fusion.paging import Page, check_page_size, decode_next
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.orgs import repository as orgs_repository

router = APIRouter(prefix=TENANTS_PATH, tags=["Fusion: tenants"])


async def _render(uow: UnitOfWorkDep, principal: FusionPrincipal, tenant: FusionTenant) -> dict[str, Any]:
    owner = await orgs_repository.reseller_by_id(uow.session, tenant.owner_reseller_id)
    return render_tenant(tenant, owner, direct=principal.reseller_id == tenant.owner_reseller_id)


@router.get("", summary="Tenants under your direct or indirect control",
    description="Vendor-notes 2.3: `search` (name), `sort` name, `dir` asc|desc, `parent` (an owner uuid), "
    "`page_size`, `next`.", responses=docs.ok(docs.TenantList, "The tenants"),
)
async def list_tenants(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("tenants.list"))], uow: UnitOfWorkDep,
    request: Request, search: str | None = None, sort: str = "name", dir: str = "asc",
    parent: str | None = None, page_size: int = 10, next: str | None = None,
) -> dict[str, Any]:
    check_page_size(page_size)
    container = container_of(request)
    context = {"search": search, "sort": sort, "dir": dir, "parent": parent, "page_size": page_size}
    offset = decode_next(container.keyring, next, context)
    query = service.TenantQuery(search=search, sort=sort, direction=dir, parent=parent)
    rows, total = await service.list_tenants(uow.session, principal, query, offset, page_size)
    return {"tenants": [await _render(uow, principal, t) for t in rows]} | Page(offset, page_size, total).wire(
        container.keyring, context)


@router.post("", summary="Create a tenant (owner: a distributor or reseller under your control; default: yours)",
    description="Vendor-notes 2.3: `name` required (not blank); `owner` `{type: distributor|reseller, uuid}` under "
    "your control; `markup` a percentage from 0 to 1000 or null.",
    responses=docs.ok(
        docs.Tenant, "The new tenant",
        example={
            "uuid": "5f0c1e7a-6d0b-4d3c-9a8e-1b2c3d4e5f60", "name": "Acme", "billingId": "B-1",
            "markup": None, "owner": {"type": "reseller", "uuid": "0b7e...", "name": "Reseller One"},
            "isDirectTenant": True
        }
    ),
    openapi_extra=body_example({"name": "Acme", "billingId": "B-1", "markup": 10}),
)
async def create_tenant(
    body: TenantCreateBody, principal: Annotated[FusionPrincipal, Depends(instance_checked("tenants.create"))],
    uow: UnitOfWorkDep,
) -> dict[str, Any]:
    tenant = await service.create_tenant(
        uow.session, principal, name=body.name, billing_id=body.billingId,
        markup=body.markup, owner=body.owner.model_dump() if body.owner else None)
    return await _render(uow, principal, tenant)


@router.get("/{uuid}", summary="One tenant",
    description="A tenant under your control.", responses=docs.ok(docs.Tenant, "The tenant"),
)
async def get_tenant(
    tenant: Annotated[FusionTenant, Depends(tenant_access("tenants.instance.read"))],
    principal: Annotated[FusionPrincipal, Depends(current_principal)], uow: UnitOfWorkDep,
) -> dict[str, Any]:
    return await _render(uow, principal, tenant)


@router.put("/{uuid}", summary="Update a tenant's name, billingId and markup",
    description="`name` required (not blank); `billingId` and `markup` set where given (null clears one, one left "
    "out is kept). Vendor-notes 2.3 gives the portal's body `{name, billingId, markup}` and no full-replace rule.",
    responses=docs.ok(docs.Tenant, "The updated tenant"),
    openapi_extra=body_example({"name": "Acme Europe", "billingId": "B-2", "markup": 12.5}),
)
async def update_tenant(
    body: TenantUpdateBody, tenant: Annotated[FusionTenant, Depends(tenant_access("tenants.instance.update"))],
    principal: Annotated[FusionPrincipal, Depends(current_principal)], uow: UnitOfWorkDep,
) -> dict[str, Any]:
    given = body.model_fields_set  # a field left out is kept; null clears it
    await service.update_tenant(uow.session, tenant, name=body.name,
                                billing_id=body.billingId if "billingId" in given else service.KEEP,
                                markup=body.markup if "markup" in given else service.KEEP)
    return await _render(uow, principal, tenant)


@router.delete("/{uuid}", summary="Delete a tenant that has no subscriptions left",
    description="400 while the tenant has subscriptions.",
    responses=docs.ok(docs.TenantUuid, "The deleted tenant's uuid"),
)
async def delete_tenant(
    tenant: Annotated[FusionTenant, Depends(tenant_access("tenants.instance.delete"))], uow: UnitOfWorkDep,
) -> dict[str, Any]:
    await service.delete_tenant(uow.session, tenant)
    return {"uuid": tenant.uuid}
