"""The Fusion platform around the MS Teams section, as the vendor's portal calls it: the caller's own profile
(`/system/users/local`), distributors and resellers under its control, and the staff (admins) of each level."""

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep, read_json
from teamsvoice.api.docs import request_body
from teamsvoice.api.fusion import docs, login_bodies
from teamsvoice.api.fusion.deps import check_instance, current_principal, instance_checked, require
from teamsvoice.api.fusion.wire import render_login, render_owner
from teamsvoice.core.errors import NotFound
from teamsvoice.domain.fusion import accounts, organisations
from teamsvoice.api.fusion.paging import Page, check_page_size, decode_next
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.scope import org_uuid
from teamsvoice.domain.orgs import repository as orgs_repository
from teamsvoice.domain.orgs.models import Reseller

router = APIRouter(tags=["Fusion: platform (profile, organisation, staff)"])
DRAAS = "/api/v01/draas/{draas_instance}"
Principal = Annotated[FusionPrincipal, Depends(current_principal)]


# --- the caller's own profile ----------------------------------------------------------------------------


@router.get(
    "/api/v01/system/users/local", summary="The logged-in user: profile, admin_of, ui_profile and api_rules",
    description="`admin_of: [{level, reference, name}]` names the node the login administers; `ui_profile` is the "
    "portal's profile of its level (admin, distributor, reseller, customer); `profile.api_rules: [{name, allowed}]` lists every Fusion "
    "Required-role string with whether this login holds it (the same strings the routes check).",
    responses=docs.ok(docs.Login, "The logged-in user"),
)
async def get_local_user(principal: Principal, uow: UnitOfWorkDep) -> dict[str, Any]:
    return await render_login(uow.session, await accounts.me(uow.session, principal), with_rules=True)


@router.put(
    "/api/v01/system/users/local", summary="Update your own profile fields and/or password",
    description="Body: any of `first_name`, `last_name`, `email`, `mobile_number` (null clears); to change the "
    "password, `old_password` and `password` (8 to 200 characters). Answers the updated user.",
    openapi_extra=request_body(
        docs.ProfileRequest,
        example={"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com"}
    ),
    responses=docs.ok(docs.Login, "The updated user"),
)
async def put_local_user(request: Request, principal: Principal, uow: UnitOfWorkDep) -> dict[str, Any]:
    user = await accounts.update_me(uow.session, principal, login_bodies.own_change(await read_json(request)))
    return await render_login(uow.session, user, with_rules=True)


@router.put("/api/v01/system/users/{user_id}", summary="Update your own profile fields (the portal's account page)",
            description="Only your own id: the admins of a level are managed under "
            "`{draas}/<level>s/{uuid}/admins`.",
    openapi_extra=request_body(docs.ProfileRequest, example={"email": "john.doe@example.com"}),
    responses=docs.ok(docs.Login, "The updated user"),
)
async def put_user(user_id: int, request: Request, principal: Principal, uow: UnitOfWorkDep) -> dict[str, Any]:
    if user_id != principal.user_id:
        raise NotFound(f"User {user_id} not found")
    return await put_local_user(request, principal, uow)


# --- organisation lists --------------------------------------------------------------------------------


def _render_node(node: Reseller, parent: Reseller | None) -> dict[str, Any]:
    body: dict[str, Any] = {"uuid": org_uuid(node.id), "name": node.name}
    if parent is not None:
        body["owner"] = render_owner(parent)
    return body


async def _list(level: str, principal: FusionPrincipal, uow: UnitOfWorkDep, container: ContainerDep,
                search: str | None, parent: str | None, page_size: int, next: str | None) -> dict[str, Any]:
    check_page_size(page_size)
    context = {"search": search, "parent": parent, "page_size": page_size, "level": level}
    offset = decode_next(container.keyring, next, context)
    rows, total = await organisations.list_nodes(uow.session, principal, level, search=search, parent=parent,
                                                 offset=offset, limit=page_size)
    items = [_render_node(r, await orgs_repository.reseller_by_id(uow.session, r.parent_id) if r.parent_id else None)
             for r in rows]
    return {f"{level}s": items} | Page(offset, page_size, total).wire(container.keyring, context)


@router.get(DRAAS + "/distributors", summary="Distributors under your control (search, page_size, next)",
    description="Vendor-notes part 2 (the portal's organisation pages).",
    responses=docs.ok(docs.Distributors, "The distributors"),
)
async def list_distributors(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("distributors.list"))], uow: UnitOfWorkDep,
    container: ContainerDep, search: str | None = None, page_size: int = 10, next: str | None = None,
) -> dict[str, Any]:
    return await _list("distributor", principal, uow, container, search, None, page_size, next)


@router.get(DRAAS + "/distributors/{uuid}", summary="One distributor under your control",
    responses=docs.ok(docs.OrgNode, "The distributor"),
    description="404 when it is not under your control.",
)
async def get_distributor(
    uuid: str, principal: Annotated[FusionPrincipal, Depends(instance_checked("distributors.instance.read"))],
    uow: UnitOfWorkDep,
) -> dict[str, Any]:
    node = await organisations.node(uow.session, principal, "distributor", uuid)
    return _render_node(node, await orgs_repository.reseller_by_id(uow.session, node.parent_id) if node.parent_id else None)


@router.get(DRAAS + "/resellers", summary="Resellers under your control (search, parent, page_size, next)",
    description="`parent`: a distributor uuid.", responses=docs.ok(docs.Resellers, "The resellers"),
)
async def list_resellers(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("resellers.list"))], uow: UnitOfWorkDep,
    container: ContainerDep, search: str | None = None, parent: str | None = None, page_size: int = 10,
    next: str | None = None,
) -> dict[str, Any]:
    return await _list("reseller", principal, uow, container, search, parent, page_size, next)


@router.get(DRAAS + "/resellers/{uuid}", summary="One reseller under your control",
    responses=docs.ok(docs.OrgNode, "The reseller"),
    description="404 when it is not under your control.",
)
async def get_reseller(
    uuid: str, principal: Annotated[FusionPrincipal, Depends(instance_checked("resellers.instance.read"))],
    uow: UnitOfWorkDep,
) -> dict[str, Any]:
    node = await organisations.node(uow.session, principal, "reseller", uuid)
    return _render_node(node, await orgs_repository.reseller_by_id(uow.session, node.parent_id) if node.parent_id else None)


# --- staff ---------------------------------------------------------------------------------------------


@router.get(DRAAS + "/users", summary="Every login (admin) at or under your level (search, page_size, next)",
    responses=docs.ok(docs.Logins, "The logins"),
    description="`search` (username or name), `page_size` (default 50), `next`.",
)
async def list_users(
    principal: Annotated[FusionPrincipal, Depends(instance_checked("users.list"))], uow: UnitOfWorkDep,
    container: ContainerDep, search: str | None = None, page_size: int = 50, next: str | None = None,
) -> dict[str, Any]:
    check_page_size(page_size)
    context = {"search": search, "page_size": page_size}
    offset = decode_next(container.keyring, next, context)
    rows, total = await accounts.users_in_scope(uow.session, principal, search, offset, page_size)
    await accounts.read_logins(uow.session, rows)  # (the page's profiles and nodes in one statement)
    return {"users": [await render_login(uow.session, u) for u in rows]} | Page(offset, page_size, total).wire(
        container.keyring, context)


def _admins_route(verb: str):  # type: ignore[no-untyped-def]
    """The admin target of `{draas}/{level}s/{uuid}/admins`, once the caller holds `<level>s.instance.admins.<verb>`."""

    async def resolve(
        request: Request, uow: UnitOfWorkDep, principal: Principal,
        draas_instance: Annotated[str, Path()], level: Annotated[str, Path()], uuid: Annotated[str, Path()],
    ) -> tuple[FusionPrincipal, accounts.AdminTarget]:
        if level not in accounts.ADMIN_LEVELS:
            raise NotFound(f"Unknown level '{level}' (distributors, resellers or tenants)")
        await require(f"{level}.instance.admins.{verb}")(principal)
        check_instance(request, draas_instance)
        return principal, await accounts.admin_target(uow.session, principal, level, uuid)

    resolve.required_roles = tuple(f"{level}.instance.admins.{verb}" for level in accounts.ADMIN_LEVELS)  # type: ignore[attr-defined]
    return resolve


AdminsPath = DRAAS + "/{level}/{uuid}/admins"


@router.get(AdminsPath, summary="The admins (logins) of a distributor, reseller or tenant under your control",
    description="`level`: distributors, resellers or tenants.", responses=docs.ok(docs.Admins, "The admins"),
)
async def list_admins(
    target: Annotated[tuple[FusionPrincipal, accounts.AdminTarget], Depends(_admins_route("list"))], uow: UnitOfWorkDep,
) -> dict[str, Any]:
    admins = await accounts.list_admins(uow.session, target[1])
    await accounts.read_logins(uow.session, admins)  # (their profiles and node in one statement)
    return {"admins": [await render_login(uow.session, u) for u in admins]}


@router.post(
    AdminsPath, summary="Create an admin: {username, password, first_name?, last_name?, email?, mobile_number?}",
    description="The login gets the default Required roles of its level, which you must hold yourself (else 403); "
    "the password is stored hashed (argon2) and never returned.",
    openapi_extra=request_body(
        docs.AdminRequest,
        example={
            "username": "jane", "password": "A-long-passw0rd", "first_name": "Jane",
            "email": "jane@example.com"
        }
    ), responses=docs.ok(docs.Login, "The new admin"),
)
async def create_admin(
    request: Request, target: Annotated[tuple[FusionPrincipal, accounts.AdminTarget], Depends(_admins_route("create"))],
    uow: UnitOfWorkDep,
) -> dict[str, Any]:
    admin = login_bodies.new_admin(await read_json(request))
    user = await accounts.create_admin(uow.session, target[0], target[1], admin)
    return await render_login(uow.session, user)


@router.put(AdminsPath + "/{admin_id}",
            summary="Update an admin: profile fields, password (ends its sessions), status active|disabled",
    openapi_extra=request_body(docs.AdminRequest, example={"status": "disabled"}),
    responses=docs.ok(docs.Login, "The updated admin"),
    description="Any of the profile fields, `password` (8 to 200 characters; ends the admin's sessions) and "
    "`status` active|disabled. 403 for an admin holding a Required role you do not hold.",
)
async def update_admin(
    admin_id: int, request: Request,
    target: Annotated[tuple[FusionPrincipal, accounts.AdminTarget], Depends(_admins_route("update"))], uow: UnitOfWorkDep,
) -> dict[str, Any]:
    body = login_bodies.check_admin_fields(await read_json(request))
    admin = await accounts.get_admin(uow.session, target[1], admin_id)
    user = await accounts.update_admin(uow.session, target[0], admin, login_bodies.admin_change(body))
    return await render_login(uow.session, user)


@router.delete(AdminsPath + "/{admin_id}", summary="Delete an admin (not yourself)", status_code=204,
    responses=docs.NO_CONTENT,
    description="Its sessions end; you cannot delete your own login.",
)
async def delete_admin(
    admin_id: int, target: Annotated[tuple[FusionPrincipal, accounts.AdminTarget], Depends(_admins_route("delete"))],
    uow: UnitOfWorkDep,
) -> Response:
    await accounts.delete_admin(uow.session, target[0], target[1], admin_id)
    return Response(status_code=204)
