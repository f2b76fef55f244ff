"""MS Teams users of a subscription (spec 004): list, get, check, update and its sub-resources, licences
(full list), create, properties, templates applied, delete, sip address, SRE group filter, sync."""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from sqlalchemy import delete, select

from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.fusion.deps import subscription_access
from teamsvoice.api.fusion.wire import SUB_PATH
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.calling import workflows as calling_workflows
from teamsvoice.domain.calling.models import CallingJob
from teamsvoice.domain.fusion.models import FusionGroupFilter
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.teams_users import service, templates
from teamsvoice.domain.teams_users.models import FusionResourceAccount

router = APIRouter(prefix=SUB_PATH, tags=["Fusion: MS Teams users"])
_MST = "tenants.instance.subscriptions.instance.msteams"


def _access(role: str) -> Any:
    return Annotated[SubscriptionAccess, Depends(subscription_access(f"{_MST}.{role}"))]


def _connect(access: SubscriptionAccess, container: ContainerDep) -> Any:
    return container.connector.connect(access.require_ms_tenant())


async def _start_sync(uow: UnitOfWorkDep, access: SubscriptionAccess, record_ids: list[int] | None = None) -> None:
    """Syncs the enterprise's users, or only `record_ids` (TeamsVoiceUser ids) when given."""
    job = CallingJob(enterprise_id=access.enterprise.id, kind=calling_workflows.SYNC_TEAMS_USERS,
                     detail={} if record_ids is None else {"voiceUserIds": record_ids})
    uow.session.add(job)
    await uow.session.flush()
    job_id = job.id
    uow.after_commit(lambda: calling_workflows.enqueue(job_id))


@router.get("/msteams/users", summary="MS Teams users, enriched with Fusion data (infinite scrolling with `next`)")
async def list_users(
    access: _access("users.list"), uow: UnitOfWorkDep, container: ContainerDep, page_size: int = 10,
    next: str | None = None, search: str | None = None, group: str | None = None, refresh: bool = False,
    filters: str | None = None,
) -> dict[str, Any]:
    parsed = service.UserFilters.parse(filters)
    connection = _connect(access, container)
    if refresh:
        await _start_sync(uow, access)
    await uow.session.commit()  # Microsoft is called with no transaction open
    return await service.list_users(uow.session, access, connection, container.keyring, page_size=page_size,
                                    next_token=next, search=search, group=group, filters=parsed)


@router.post("/msteams/users", status_code=201, summary="Create a MS Teams user (username@domain)")
async def create_user(body: Annotated[Any, Body()], access: _access("users.create"), uow: UnitOfWorkDep,
                      container: ContainerDep) -> dict[str, str]:
    connection = _connect(access, container)
    await uow.session.commit()
    password = secrets.token_urlsafe(12) + "!a1A"  # the user resets it at first sign-in; never returned
    return {"msTeamsId": await service.create_user(container.sessions, access, connection, body, password)}


@router.get("/msteams/user/{ms_user_id}", summary="One MS Teams user, enriched with Fusion data")
async def get_user(ms_user_id: str, access: _access("users.read"), uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    connection = _connect(access, container)
    await uow.session.commit()
    return await service.get_user(uow.session, access, connection, ms_user_id)


@router.get("/msteams/users/{ms_user_id}/check", summary="Whether the MS Teams user is eligible to voice services")
async def check_user(ms_user_id: str, access: _access("users.instance.check"), uow: UnitOfWorkDep,
                     container: ContainerDep) -> dict[str, bool]:
    connection = _connect(access, container)
    await uow.session.commit()
    return {"voiceEnabled": await service.check_voice(connection, ms_user_id)}


async def _update(access: SubscriptionAccess, uow: UnitOfWorkDep, container: ContainerDep, ms_user_id: str,
                  update: service.UserUpdate) -> None:
    connection = _connect(access, container)
    await uow.session.commit()
    user = await service.directory_user(connection.directory_admin, ms_user_id)
    await service.apply_update(container.sessions, access, connection, user, update)


@router.put("/msteams/users/{ms_user_id}", response_model=None,
            summary="Update a MS Teams user (200 enabled, 204 disabled: phoneNumber null)")
async def update_user(ms_user_id: str, body: Annotated[Any, Body()], access: _access("users.instance.update"),
                      uow: UnitOfWorkDep, container: ContainerDep) -> Response:
    update = service.parse_update(body, keys=service.USER_UPDATE_KEYS)
    await _update(access, uow, container, ms_user_id, update)
    return Response(status_code=204 if update.phone_number is None else 200)


def _field(body: Any, name: str) -> Any:
    if not isinstance(body, dict) or name not in body:
        raise ValidationFailed(f"{name}: is required")
    if set(body) - {name}:
        raise ValidationFailed(f"{sorted(set(body) - {name})[0]}: unknown field")
    return body[name]


@router.put("/msteams/users/{ms_user_id}/groups", status_code=204, response_model=None,
            summary="Set the user's groups (the full list; [] removes all)")
async def update_groups(ms_user_id: str, body: Annotated[Any, Body()], access: _access("users.instance.groups.update"),
                        uow: UnitOfWorkDep, container: ContainerDep) -> None:
    groups = service.string_list("groups", _field(body, "groups"), nullable=False)
    await _update(access, uow, container, ms_user_id, service.UserUpdate(groups=groups, replace_groups=True))


@router.put("/msteams/users/{ms_user_id}/licenses", status_code=204, response_model=None,
            summary="Set the user's Microsoft licences (the full list; [] removes all)")
async def update_licenses(ms_user_id: str, body: Annotated[Any, Body()],
                          access: _access("users.instance.licenses.update"), uow: UnitOfWorkDep,
                          container: ContainerDep) -> None:
    licences = service.string_list("licenses", _field(body, "licenses"), nullable=False)
    await _update(access, uow, container, ms_user_id, service.UserUpdate(licenses=licences, replace_licenses=True))


@router.put("/msteams/{ms_user_id}/licenses", status_code=204, response_model=None,
            summary="Manage user licences: send the full list of skuIds (one left out is unassigned)")
async def manage_licenses(ms_user_id: str, body: Annotated[Any, Body()],
                          access: _access("licenses.instance.update"), uow: UnitOfWorkDep,
                          container: ContainerDep) -> None:
    licences = service.string_list("skuIds", _field(body, "skuIds"), nullable=False)
    await _update(access, uow, container, ms_user_id, service.UserUpdate(licenses=licences, replace_licenses=True))


@router.put("/msteams/users/{ms_user_id}/phone_number", status_code=204, response_model=None,
            summary="Set (from the subscription's free numbers) or free (null) the user's phone number")
async def update_phone_number(ms_user_id: str, body: Annotated[Any, Body()],
                              access: _access("users.instance.phone_number.update"), uow: UnitOfWorkDep,
                              container: ContainerDep) -> None:
    update = service.parse_update({"phoneNumber": _field(body, "phoneNumber")}, keys=service.USER_UPDATE_KEYS)
    await _update(access, uow, container, ms_user_id, update)


@router.put("/msteams/users/{ms_user_id}/vrp", status_code=204, response_model=None,
            summary="Set (or, with null, remove) the user's voice routing policy")
async def update_vrp(ms_user_id: str, body: Annotated[Any, Body()], access: _access("users.instance.vrp.update"),
                     uow: UnitOfWorkDep, container: ContainerDep) -> None:
    update = service.parse_update({"vrp": _field(body, "vrp")}, keys=service.USER_UPDATE_KEYS)
    await _update(access, uow, container, ms_user_id, update)


@router.put("/msteams/users/{ms_user_id}/properties", status_code=204, response_model=None,
            summary="Update the user's displayName and/or location")
async def update_properties(ms_user_id: str, body: Annotated[Any, Body()], access: _access("users.instance.update"),
                            uow: UnitOfWorkDep, container: ContainerDep) -> None:
    update = service.parse_update(body, keys={"displayName": "display_name", "location": "location"})
    if update.display_name is service.UNSET and update.location is service.UNSET:
        raise ValidationFailed("displayName and/or location: nothing to update")
    await _update(access, uow, container, ms_user_id, update)


@router.put("/msteams/users/{ms_user_id}/templates/{template_id}",
            summary="Apply a template (override: default true) and answer the before/after snapshots")
async def apply_template(ms_user_id: str, template_id: int, access: _access("users.instance.template.instance.update"),
                         uow: UnitOfWorkDep, container: ContainerDep,
                         body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    override = True
    if body is not None:
        if not isinstance(body, dict) or set(body) - {"override"}:
            raise ValidationFailed("body: only {\"override\": true|false} is accepted")
        override = body.get("override", True)
        if not isinstance(override, bool):
            raise ValidationFailed("override: must be true or false")
    connection = _connect(access, container)
    await uow.session.commit()
    return await templates.apply_template(container.sessions, access, connection, ms_user_id, template_id, override)


@router.delete("/msteams/users/{ms_user_id}", status_code=204, response_model=None,
               summary="Delete a MS Teams user (its number is freed)")
async def delete_user(ms_user_id: str, access: _access("users.instance.delete"), uow: UnitOfWorkDep,
                      container: ContainerDep) -> None:
    connection = _connect(access, container)
    await uow.session.commit()
    await service.delete_user(container.sessions, access, connection, ms_user_id)


@router.get("/users/{ms_user_id}/sip_address", summary="The sip address of a MS Teams user")
async def get_sip_address(ms_user_id: str, access: _access("users.instance.sip_address.read"), uow: UnitOfWorkDep,
                          container: ContainerDep) -> dict[str, str]:
    connection = _connect(access, container)
    await uow.session.commit()
    return {"sipAddress": await service.sip_address(connection, ms_user_id)}


@router.post("/msteams/groups", status_code=204, response_model=None,
             summary="Replace the SRE group filter as a whole (delete and recreate)")
async def set_group_filter(body: Annotated[Any, Body()], access: _access("groups.create"), uow: UnitOfWorkDep) -> None:
    groups = _field(body, "groups")
    if not isinstance(groups, list):
        raise ValidationFailed("groups: must be a list of {id, displayName}")
    rows, seen = [], set()
    for index, group in enumerate(groups):
        if not isinstance(group, dict) or set(group) - {"id", "displayName"}:
            raise ValidationFailed(f"groups[{index}]: must be an object {{id, displayName}}")
        group_id = service.optional_string(f"groups[{index}].id", group.get("id"), nullable=False)
        name = service.optional_string(f"groups[{index}].displayName", group.get("displayName"), nullable=False)
        if group_id in seen:
            raise ValidationFailed(f"groups[{index}].id: {group_id} appears twice")
        seen.add(group_id)
        rows.append(FusionGroupFilter(subscription_id=access.subscription.id, group_id=group_id, display_name=name))
    await uow.session.execute(delete(FusionGroupFilter).where(FusionGroupFilter.subscription_id == access.subscription.id))
    uow.session.add_all(rows)


@router.post("/msteams/sync", summary="Synchronise the users' phone numbers with MS Teams (runs in background)")
async def sync_users(body: Annotated[Any, Body()], access: _access("sync"), uow: UnitOfWorkDep) -> dict[str, Any]:
    kind = _field(body, "type")
    if kind not in ("normal", "resource_account", "all"):
        raise ValidationFailed("type: must be normal, resource_account or all")
    access.require_ms_tenant()
    accounts = set(await uow.session.scalars(select(FusionResourceAccount.voice_user_id).where(
        FusionResourceAccount.subscription_id == access.subscription.id, FusionResourceAccount.voice_user_id.is_not(None))))
    records = await uow.session.scalars(select(TeamsVoiceUser).where(
        TeamsVoiceUser.enterprise_id == access.enterprise.id, TeamsVoiceUser.microsoft_user_id.is_not(None)).order_by(TeamsVoiceUser.id))
    chosen = [r for r in records if kind == "all" or (r.id in accounts) == (kind == "resource_account")]
    await _start_sync(uow, access, [r.id for r in chosen])  # only the requested type is synchronised
    return {"msteams_user_ids": [{"id": r.microsoft_user_id, "status": "syncing"} for r in chosen]}
