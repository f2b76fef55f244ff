"""MS Teams users of a subscription (spec 004): list, get, check, update and its sub-resources, licences
(full list), create, properties, templates applied, delete, sip address, SRE group filter, sync."""

import secrets
from typing import Annotated, Any

from fastapi import Body, Depends, Response
from teamsvoice.api.routing import APIRouter
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.docs import request_body
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion import templates as fusion_templates, users_wire
from teamsvoice.api.fusion.deps import subscription_access
from teamsvoice.api.fusion.query_filters import filter_conditions
from teamsvoice.api.fusion.wire import SUB_PATH
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.limits import check_name
from teamsvoice.domain.calling import jobs as calling_jobs, workflows as calling_workflows
from teamsvoice.domain.fusion import repository as fusion_repository
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.teams_users import repository, service, templates

router = APIRouter(prefix=SUB_PATH, tags=["Fusion: MS Teams users"])
_MST = "tenants.instance.subscriptions.instance.msteams"


def _access(role: str) -> Any:
    return Annotated[SubscriptionAccess, Depends(subscription_access(f"{_MST}.{role}"))]


# Fusion's names of a user's fields (spec 004) -> the domain's UserUpdate fields.
UPDATE_FIELDS = {"displayName": "display_name", "location": "location", "phoneNumber": "phone_number",
                 "groups": "groups", "vrp": "vrp", "licenses": "licenses", "customerLicenses": "customer_licenses"}


def parse_update(body: Any, fields: dict[str, str] = UPDATE_FIELDS) -> service.UserUpdate:
    """A user update from a Fusion body whose every key is one of `fields` (Fusion's name -> UserUpdate field);
    errors name Fusion's field."""
    if not isinstance(body, dict):
        raise ValidationFailed("body: must be a JSON object")
    unknown = set(body) - set(fields)
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field")
    return service.parse_changes({field: body[name] for name, field in fields.items() if name in body},
                                 {field: name for name, field in fields.items()})


def parse_filters(raw: str | None) -> service.UserFilters:
    """The users list's `filters` query: a JSON object (or an array of condition objects) with `country`
    (ISO alpha-2 codes), `is_voice_enabled` (yes, no, maybe) and `have_number` (yes, no)."""
    if not raw:
        return service.UserFilters()
    data = filter_conditions(raw, '{"country": ["BE"], "have_number": "yes"}')
    unknown = set(data) - {"country", "is_voice_enabled", "have_number"}
    if unknown:
        raise ValidationFailed(f"filters: unknown filter {sorted(unknown)[0]} (country, is_voice_enabled, have_number)")
    countries = data.get("country") or []
    if isinstance(countries, str):
        countries = [countries]
    if not isinstance(countries, list):
        raise ValidationFailed("filters.country: must be a list of ISO 3166 alpha-2 codes")
    countries = [service.parse_location("filters.country", c) for c in countries]
    voice = data.get("is_voice_enabled")
    if voice is not None and voice not in ("yes", "no", "maybe"):
        raise ValidationFailed("filters.is_voice_enabled: must be yes, no or maybe")
    have = data.get("have_number")
    if have is not None and have not in ("yes", "no"):
        raise ValidationFailed("filters.have_number: must be yes or no")
    return service.UserFilters(frozenset(c.upper() for c in countries), voice, have)


def parse_new_user(body: Any) -> service.NewUser:
    if not isinstance(body, dict):
        raise ValidationFailed("body: must be a JSON object")
    unknown = set(body) - {"displayName", "domain", "location", "username", "customerLicenses"}
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field")
    display_name = service.optional_string("displayName", body.get("displayName"), nullable=False)
    domain = service.optional_string("domain", body.get("domain"), nullable=False)
    username = service.optional_string("username", body.get("username"), nullable=False)
    location = service.parse_location("location", body.get("location"))
    licences = service.string_list("customerLicenses", body.get("customerLicenses", []), nullable=False) or []
    assert display_name and domain and username
    return service.NewUser(display_name, domain, username, location, licences)


def _connect(access: SubscriptionAccess, container: ContainerDep) -> Any:
    return container.connector.connect(access.require_ms_tenant())


async def _start_sync(uow: UnitOfWorkDep, access: SubscriptionAccess, record_ids: list[int]) -> None:
    """Syncs `record_ids` (TeamsVoiceUser ids): their records pushed to Teams."""
    job_id = await calling_jobs.add_users_sync(uow.session, access.enterprise.id, record_ids)
    uow.after_commit(lambda: calling_workflows.enqueue(job_id), swept=True)


async def _start_refresh(uow: UnitOfWorkDep, access: SubscriptionAccess) -> None:
    """Refreshes the enterprise's records from Teams in the background (Teams read, never written), unless a refresh
    of them all waits or runs already (`calling_jobs.start_users_refresh`: the scroll's every page asked for it, a
    whole-tenant job each, and two at the same moment each recorded one)."""
    job_id = await calling_jobs.start_users_refresh(uow.session, access.enterprise.id)
    if job_id is not None:
        uow.after_commit(lambda: calling_workflows.enqueue(job_id), swept=True)


@router.get("/msteams/users", summary="MS Teams users, enriched with Fusion data (infinite scrolling with `next`)",
    description="Spec 004: `page_size` (default 10), `next` (continuation token: keep page_size and search), "
    "`search` (displayName prefix), `group` (a group id), `refresh` (refresh the users' phone numbers from MS Teams "
    "in the background: each user's number, voice routing policy and calling as Teams holds them are recorded; "
    "nothing is written to Teams), `filters` (JSON).",
    responses=docs.ok(
        docs.MsTeamsUsers, "The users", example={"users": [docs.USER_EXAMPLE]}
    ) | docs.MICROSOFT,
)
async def list_users(
    access: _access("users.list"), uow: UnitOfWorkDep, container: ContainerDep, page_size: int = 10,
    next: str | None = None, search: str | None = None, group: str | None = None, refresh: bool = False,
    filters: str | None = None,
) -> dict[str, Any]:
    parsed = parse_filters(filters)
    connection = _connect(access, container)
    await uow.end_transaction()  # Microsoft is called with no transaction open
    page = await users_wire.users_page(uow.session, access, connection, container.keyring, page_size=page_size,
                                       next_token=next, search=search, group=group, filters=parsed)
    if refresh:  # started once the list is answered: a refused list (a bad next, page_size, group) starts nothing
        await uow.end_transaction()  # (the list's reads; the job is recorded in a transaction of its own)
        await _start_refresh(uow, access)
    return page


@router.post("/msteams/users", status_code=201, summary="Create a MS Teams user (username@domain)",
    description="Spec 004: the UPN is username@domain; the password is random and never returned. Sent again after "
    "an answer that never came, it answers the user made then: a user of that UPN with the display name and "
    "location sent, no licence, unknown to teamsvoice; any other user of the UPN is a conflict (400). A record "
    "teamsvoice kept of a deleted user of the UPN is not the new user's: its number goes to quarantine.",
    openapi_extra=request_body(docs.CreateUserRequest, example=docs.CREATE_USER_EXAMPLE),
    responses=docs.ok(
        docs.CreatedUser, "Created", status=201, example={"msTeamsId": "645474c6-57f2-47b0-b824-1b591cc6873a"}
    ) | docs.MICROSOFT,
)
async def create_user(body: Annotated[Any, Body()], access: _access("users.create"), uow: UnitOfWorkDep,
                      container: ContainerDep) -> dict[str, str]:
    connection = _connect(access, container)
    new = parse_new_user(body)
    await uow.end_transaction()
    password = secrets.token_urlsafe(12) + "!a1A"  # the user resets it at first sign-in; never returned
    return {"msTeamsId": await service.create_user(container.sessions, access, connection, new, password,
                                                   container.settings.number_quarantine_seconds)}


@router.get("/msteams/user/{ms_user_id}", summary="One MS Teams user, enriched with Fusion data",
    description="Spec 004: `msTeams` always, `draas` when voice enabled with a number.",
    responses=docs.ok(docs.MsTeamsUser, "The user", example=docs.USER_EXAMPLE) | docs.MICROSOFT,
)
async def get_user(ms_user_id: str, access: _access("users.read"), uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    connection = _connect(access, container)
    await uow.end_transaction()
    return users_wire.render_user(await service.get_user(uow.session, access, connection, ms_user_id))


@router.get("/msteams/users/{ms_user_id}/check", summary="Whether the MS Teams user is eligible to voice services",
    description="Spec 004.",
    responses=docs.ok(docs.VoiceEnabled, "The eligibility", example={"voiceEnabled": True}) | docs.MICROSOFT,
)
async def check_user(ms_user_id: str, access: _access("users.instance.check"), uow: UnitOfWorkDep,
                     container: ContainerDep) -> dict[str, bool]:
    connection = _connect(access, container)
    await uow.end_transaction()
    return {"voiceEnabled": await service.check_voice(connection, ms_user_id)}


async def _update(access: SubscriptionAccess, uow: UnitOfWorkDep, container: ContainerDep, ms_user_id: str,
                  update: service.UserUpdate) -> None:
    connection = _connect(access, container)
    await uow.end_transaction()
    user = await service.directory_user(connection.directory_admin, ms_user_id)
    await service.apply_update(container.sessions, access, connection, user, update)


@router.put("/msteams/users/{ms_user_id}", response_model=None,
            summary="Update a MS Teams user (200 enabled, 204 disabled: phoneNumber null)",
    description="Spec 004: any of the fields; `phoneNumber` a free number of the subscription enables voice "
    "(200), null disables it and frees the number (204). A number held by another user is 400.",
    openapi_extra=request_body(docs.UpdateUserRequest, example=docs.UPDATE_USER_EXAMPLE),
    responses={200: {"description": "The user was enabled (no body)"}, 204: {"description": "The user was "
    "disabled (no body)"}} | docs.MICROSOFT,
)
async def update_user(ms_user_id: str, body: Annotated[Any, Body()], access: _access("users.instance.update"),
                      uow: UnitOfWorkDep, container: ContainerDep) -> Response:
    update = parse_update(body)
    await _update(access, uow, container, ms_user_id, update)
    return Response(status_code=204 if update.phone_number is None else 200)


def _field(body: Any, name: str) -> Any:
    if not isinstance(body, dict) or name not in body:
        raise ValidationFailed(f"{name}: is required")
    if set(body) - {name}:
        raise ValidationFailed(f"{sorted(set(body) - {name})[0]}: unknown field")
    return body[name]


@router.put("/msteams/users/{ms_user_id}/groups", status_code=204, response_model=None,
            summary="Set the user's groups (the full list; [] removes all)",
    description="Spec 004.",
    openapi_extra=request_body(
        docs.GroupsRequest, example={"groups": ["e54f3c3f-d705-451d-96ff-7fbe7ff15e1e"]}
    ),
    responses=docs.NO_CONTENT | docs.MICROSOFT,
)
async def update_groups(ms_user_id: str, body: Annotated[Any, Body()], access: _access("users.instance.groups.update"),
                        uow: UnitOfWorkDep, container: ContainerDep) -> None:
    groups = service.string_list("groups", _field(body, "groups"), nullable=False)
    await _update(access, uow, container, ms_user_id, service.UserUpdate(groups=groups, replace_groups=True))


@router.put("/msteams/users/{ms_user_id}/licenses", status_code=204, response_model=None,
            summary="Set the user's Microsoft licences (the full list; [] removes all)",
    description="Spec 004.",
    openapi_extra=request_body(
        docs.LicensesRequest, example={"licenses": ["18181a46-0d4e-45cd-891e-60aabd171b4e"]}
    ),
    responses=docs.NO_CONTENT | docs.MICROSOFT,
)
async def update_licenses(ms_user_id: str, body: Annotated[Any, Body()],
                          access: _access("users.instance.licenses.update"), uow: UnitOfWorkDep,
                          container: ContainerDep) -> None:
    licences = service.string_list("licenses", _field(body, "licenses"), nullable=False)
    await _update(access, uow, container, ms_user_id, service.UserUpdate(licenses=licences, replace_licenses=True))


@router.put("/msteams/{ms_user_id}/licenses", status_code=204, response_model=None,
            summary="Manage user licences: send the full list of skuIds (one left out is unassigned)",
    description="Spec 004 (manage user licences).",
    openapi_extra=request_body(
        docs.SkuIdsRequest, example={"skuIds": ["18181a46-0d4e-45cd-891e-60aabd171b4e"]}
    ),
    responses=docs.NO_CONTENT | docs.MICROSOFT,
)
async def manage_licenses(ms_user_id: str, body: Annotated[Any, Body()],
                          access: _access("licenses.instance.update"), uow: UnitOfWorkDep,
                          container: ContainerDep) -> None:
    licences = service.string_list("skuIds", _field(body, "skuIds"), nullable=False)
    await _update(access, uow, container, ms_user_id, service.UserUpdate(licenses=licences, replace_licenses=True))


@router.put("/msteams/users/{ms_user_id}/phone_number", status_code=204, response_model=None,
            summary="Set (from the subscription's free numbers) or free (null) the user's phone number",
    description="Spec 004: a free number of the subscription, or null.",
    openapi_extra=request_body(docs.PhoneNumberRequest, example={"phoneNumber": "+31302861233"}),
    responses=docs.NO_CONTENT | docs.MICROSOFT,
)
async def update_phone_number(ms_user_id: str, body: Annotated[Any, Body()],
                              access: _access("users.instance.phone_number.update"), uow: UnitOfWorkDep,
                              container: ContainerDep) -> None:
    update = parse_update({"phoneNumber": _field(body, "phoneNumber")})
    await _update(access, uow, container, ms_user_id, update)


@router.put("/msteams/users/{ms_user_id}/vrp", status_code=204, response_model=None,
            summary="Set (or, with null, remove) the user's voice routing policy",
    description="Spec 004.", openapi_extra=request_body(docs.VrpRequest, example={"vrp": "World-DRaaS"}),
    responses=docs.NO_CONTENT | docs.MICROSOFT,
)
async def update_vrp(ms_user_id: str, body: Annotated[Any, Body()], access: _access("users.instance.vrp.update"),
                     uow: UnitOfWorkDep, container: ContainerDep) -> None:
    update = parse_update({"vrp": _field(body, "vrp")})
    await _update(access, uow, container, ms_user_id, update)


@router.put("/msteams/users/{ms_user_id}/properties", status_code=204, response_model=None,
            summary="Update the user's displayName and/or location",
    description="Spec 004: `displayName` and/or `location` (ISO 3166 alpha-2).",
    openapi_extra=request_body(docs.PropertiesRequest, example={"displayName": "John Doe", "location": "BE"}),
    responses=docs.NO_CONTENT | docs.MICROSOFT,
)
async def update_properties(ms_user_id: str, body: Annotated[Any, Body()], access: _access("users.instance.update"),
                            uow: UnitOfWorkDep, container: ContainerDep) -> None:
    update = parse_update(body, {"displayName": "display_name", "location": "location"})
    if update.display_name is service.UNSET and update.location is service.UNSET:
        raise ValidationFailed("displayName and/or location: nothing to update")
    await _update(access, uow, container, ms_user_id, update)


@router.put("/msteams/users/{ms_user_id}/templates/{template_id}",
            summary="Apply a template (override: default true) and answer the before/after snapshots",
    description="Spec 004: body optional, `{override: false}` keeps what the user already has. `after` is read from "
    "Microsoft once the template is applied; should that read fail, the template stays applied and the answer is "
    "still 200, its `after` the user's `before` with the template's changes made.",
    openapi_extra=request_body(docs.OverrideRequest, required=False, example={"override": True}),
    responses=docs.ok(
        docs.TemplateApplied, "The user before and after",
        example={
            "before": {"groups": [], "licenses": [], "location": "BE", "vrp": "Global"},
            "after": {
                "groups": ["e54f3c3f-d705-451d-96ff-7fbe7ff15e1e"],
                "licenses": ["18181a46-0d4e-45cd-891e-60aabd171b4e"], "location": "ES", "vrp": "World-DRaaS"
            }
        }
    ) | docs.MICROSOFT,
)
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
    await uow.end_transaction()
    applied = await templates.apply_template(container.sessions, access, connection, ms_user_id, template_id, override)
    return {"before": fusion_templates.render_properties(applied.before),
            "after": fusion_templates.render_properties(applied.after)}


@router.delete("/msteams/users/{ms_user_id}", status_code=204, response_model=None,
               summary="Delete a MS Teams user (its number then rests in quarantine)",
    description="Spec 004. Microsoft deletes the user first; only then does its number go to quarantine "
    "(`TEAMSVOICE_NUMBER_QUARANTINE_SECONDS`) and its customer licences go. Should Microsoft fail, nothing changed. "
    "Sent again once the user is gone from the directory, it finishes.",
    responses=docs.NO_CONTENT | docs.MICROSOFT,
)
async def delete_user(ms_user_id: str, access: _access("users.instance.delete"), uow: UnitOfWorkDep,
                      container: ContainerDep) -> None:
    connection = _connect(access, container)
    await uow.end_transaction()
    await service.delete_user(container.sessions, access, connection, ms_user_id,
                              container.settings.number_quarantine_seconds)


@router.get("/users/{ms_user_id}/sip_address", summary="The sip address of a MS Teams user",
    description="Spec 004.",
    responses=docs.ok(
        docs.SipAddress, "The sip address", example={"sipAddress": "sip:sipAddress@msteams.com"}
    ) | docs.MICROSOFT,
)
async def get_sip_address(ms_user_id: str, access: _access("users.instance.sip_address.read"), uow: UnitOfWorkDep,
                          container: ContainerDep) -> dict[str, str]:
    connection = _connect(access, container)
    await uow.end_transaction()
    return {"sipAddress": await service.sip_address(connection, ms_user_id)}


# What `GET msteams/groups` says of a group beyond its id and displayName: a script may post the list's entries
# back as the filter (spec 004: "a list of group objects"); these are checked, then ignored.
GROUP_LISTED_FLAGS = ("filter", "teamsEnabled", "orphan")
# What a filter entry's id and displayName may hold (the fusion_group_filters columns: an Entra group's id is a GUID,
# its displayName at most 256 characters); beyond, PostgreSQL refused the row ("cannot be stored") and SQLite kept it.
GROUP_ID_MAX, GROUP_NAME_MAX = 64, 255


def parse_group_entry(where: str, group: Any) -> tuple[str, str]:
    """A group of the SRE filter's body: (id, displayName), from `{id, displayName}` or an entry of the groups list."""
    if not isinstance(group, dict):
        raise ValidationFailed(f"{where}: must be an object {{id, displayName}}")
    group_id = check_name(f"{where}.id", service.optional_string(f"{where}.id", group.get("id"), nullable=False) or "",
                          GROUP_ID_MAX)
    name = check_name(f"{where}.displayName", service.optional_string(
        f"{where}.displayName", group.get("displayName"), nullable=False) or "", GROUP_NAME_MAX)
    unknown = set(group) - {"id", "displayName", "description", *GROUP_LISTED_FLAGS}
    if unknown:
        raise ValidationFailed(f"{where}.{sorted(unknown)[0]}: unknown field (a group has id, displayName, "
                               f"description, {', '.join(GROUP_LISTED_FLAGS)})")
    if group.get("description") is not None and not isinstance(group["description"], str):
        raise ValidationFailed(f"{where}.description: must be a string or null")
    for flag in GROUP_LISTED_FLAGS:
        if flag in group and not isinstance(group[flag], bool):
            raise ValidationFailed(f"{where}.{flag}: must be true or false")
    assert group_id and name
    return group_id, name


@router.post("/msteams/groups", status_code=204, response_model=None,
             summary="Replace the SRE group filter as a whole (delete and recreate)",
    description="Spec 004: the whole filter, `[]` clears it. A group is `{id, displayName}`; an entry of `GET "
    "msteams/groups` is taken as it is (its description, filter, teamsEnabled and orphan are ignored).",
    openapi_extra=request_body(docs.GroupFilterRequest, example=docs.GROUP_FILTER_EXAMPLE),
    responses=docs.NO_CONTENT,
)
async def set_group_filter(body: Annotated[Any, Body()], access: _access("groups.create"), uow: UnitOfWorkDep) -> None:
    groups = _field(body, "groups")
    if not isinstance(groups, list):
        raise ValidationFailed("groups: must be a list of {id, displayName}")
    chosen: dict[str, str] = {}
    for index, group in enumerate(groups):
        group_id, name = parse_group_entry(f"groups[{index}]", group)
        if group_id in chosen:
            raise ValidationFailed(f"groups[{index}].id: {group_id} appears twice")
        chosen[group_id] = name
    await fusion_repository.replace_group_filter(uow.session, access.subscription.id, chosen)


@router.post("/msteams/sync", summary="Synchronise the users' phone numbers with MS Teams (runs in background)",
    description="Spec 004: `type` normal (users), resource_account or all. The users' numbers as recorded are synced "
    "into MS Teams (what Teams holds otherwise is replaced); the lists' `refresh` takes them from Teams instead.",
    openapi_extra=request_body(docs.SyncRequest, example={"type": "normal"}),
    responses=docs.ok(docs.SyncStarted, "The users being synchronised"),
)
async def sync_users(body: Annotated[Any, Body()], access: _access("sync"), uow: UnitOfWorkDep) -> dict[str, Any]:
    kind = _field(body, "type")
    if kind not in ("normal", "resource_account", "all"):
        raise ValidationFailed("type: must be normal, resource_account or all")
    await access.lock_linked(uow.session)
    accounts = set(await repository.resource_account_voice_user_ids(uow.session, access.subscription.id))
    records = await voice_users.with_microsoft_user(uow.session, access.enterprise.id)
    chosen = [r for r in records if kind == "all" or (r.id in accounts) == (kind == "resource_account")]
    await _start_sync(uow, access, [r.id for r in chosen])  # only the requested type is synchronised
    return {"msteams_user_ids": [{"id": r.microsoft_user_id, "status": "syncing"} for r in chosen]}
