"""User templates (vendor-notes 2.6): per subscription, a name, a product key, a description and the
properties they set: country, MS licences, MS groups, voice routing policy. Template 0 is the built-in
default ("the minimum requirements for a Fusion user": a Phone System licence) and cannot be changed."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.db import transaction
from teamsvoice.core.errors import Conflict, NotFound, ValidationFailed
from teamsvoice.core.limits import check_name
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.teams_users import repository, service
from teamsvoice.domain.teams_users.models import FusionTemplate
from teamsvoice.microsoft.ports import TenantConnection

TEMPLATE_NAME_TAKEN = "template_name_taken"
DEFAULT_TEMPLATE_READ_ONLY = "default_template_read_only"
DEFAULT = {"id": 0, "name": "Default", "productKey": "default",
           "description": "The minimum requirements for a Fusion user: a Teams Phone System licence",
           "location": None, "vrp": None, "groups": [], "licenses": ["MCOEV"]}
FIELDS = {"name", "productKey", "description", "location", "vrp", "groups", "licenses"}


def render(template: FusionTemplate) -> dict[str, Any]:
    return {"id": template.id, "name": template.name, "productKey": template.product_key,
            "description": template.description, "location": template.location, "vrp": template.vrp,
            "groups": list(template.groups), "licenses": list(template.licenses),
            "createdOn": template.created_on.isoformat(), "updatedOn": template.updated_on.isoformat()}


async def list_templates(session: AsyncSession, access: SubscriptionAccess, search: str | None) -> list[dict[str, Any]]:
    needle = (search or "").strip().lower()
    found = [render(t) for t in await repository.templates_of(session, access.subscription.id, needle)]
    default = [dict(DEFAULT)] if not needle or needle in DEFAULT["name"].lower() else []
    return default + found


async def get_template(session: AsyncSession, access: SubscriptionAccess, template_id: int) -> dict[str, Any]:
    if template_id == 0:
        return dict(DEFAULT)
    return render(await _row(session, access, template_id))


async def _row(session: AsyncSession, access: SubscriptionAccess, template_id: int) -> FusionTemplate:
    row = await repository.template_by_id(session, access.subscription.id, template_id)
    if row is None:
        raise NotFound("The template does not exist", code=service.TEMPLATE_NOT_FOUND)
    return row


async def by_name(session: AsyncSession, subscription_id: int, name: str) -> dict[str, Any]:
    """A template by name (bulk items name templates); the default one answers to its name too."""
    if name.lower() == DEFAULT["name"].lower():
        return dict(DEFAULT)
    row = await repository.template_by_name(session, subscription_id, name)
    if row is None:
        raise NotFound("The template does not exist", code=service.TEMPLATE_NOT_FOUND)
    return render(row)


def _values(body: Any, *, creating: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed("body: must be a JSON object")
    unknown = set(body) - FIELDS
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field")
    if creating:
        for required in ("name", "productKey"):
            if required not in body:
                raise ValidationFailed(f"{required}: is required")
    values: dict[str, Any] = {}
    for name in ("name", "productKey"):
        if name in body:
            values[name] = check_name(name, service.optional_string(name, body[name], nullable=False) or "")
    if "description" in body:
        if body["description"] is not None and not isinstance(body["description"], str):
            raise ValidationFailed("description: must be a string")
        values["description"] = body["description"]
    if "location" in body:
        values["location"] = None if body["location"] is None else service.parse_location("location", body["location"])
    if "vrp" in body:
        values["vrp"] = service.optional_string("vrp", body["vrp"])
    for name in ("groups", "licenses"):
        if name in body:
            values[name] = service.string_list(name, body[name], nullable=False)
    return values


async def _check_name(session: AsyncSession, access: SubscriptionAccess, name: str, keep_id: int | None = None) -> None:
    if name.lower() == DEFAULT["name"].lower():
        raise Conflict(f"name: {name} is the default template's name", code=TEMPLATE_NAME_TAKEN)
    clash = await repository.template_by_name(session, access.subscription.id, name)
    if clash is not None and clash.id != keep_id:
        raise Conflict(f"name: a template named {name} already exists", code=TEMPLATE_NAME_TAKEN)


async def create_template(session: AsyncSession, access: SubscriptionAccess, body: Any) -> FusionTemplate:
    values = _values(body, creating=True)
    await _check_name(session, access, values["name"])
    row = FusionTemplate(subscription_id=access.subscription.id, name=values["name"], product_key=values["productKey"],
                         description=values.get("description"), location=values.get("location"), vrp=values.get("vrp"),
                         groups=values.get("groups", []), licenses=values.get("licenses", []))
    session.add(row)
    await session.flush()
    return row


async def update_template(session: AsyncSession, access: SubscriptionAccess, template_id: int, body: Any) -> None:
    if template_id == 0:
        raise ValidationFailed("The default template cannot be changed", code=DEFAULT_TEMPLATE_READ_ONLY)
    row = await _row(session, access, template_id)
    values = _values(body, creating=False)
    if "name" in values:
        await _check_name(session, access, values["name"], keep_id=row.id)
        row.name = values["name"]
    if "productKey" in values:
        row.product_key = values["productKey"]
    for wire, attr in (("description", "description"), ("location", "location"), ("vrp", "vrp"),
                       ("groups", "groups"), ("licenses", "licenses")):
        if wire in values:
            setattr(row, attr, values[wire])


async def delete_template(session: AsyncSession, access: SubscriptionAccess, template_id: int) -> None:
    if template_id == 0:
        raise ValidationFailed("The default template cannot be deleted", code=DEFAULT_TEMPLATE_READ_ONLY)
    await session.delete(await _row(session, access, template_id))


async def snapshot(connection: TenantConnection, user: service.DirectoryUser) -> dict[str, Any]:
    """The user's properties managed by templating."""
    admin = connection.directory_admin
    groups = sorted(m.id for m in await admin.member_of(user.id) if m.kind == "group")
    state = await connection.voice.voice_state(user.id)
    return {"groups": groups, "licenses": list(user.assigned_sku_ids), "location": user.usage_location,
            "vrp": state.voice_routing_policy or "Global"}


def update_from(template: dict[str, Any], *, override: bool, current: dict[str, Any] | None = None) -> service.UserUpdate:
    """override: the template's values replace the user's; otherwise they are added (lists) or fill what
    the user lacks (location, VRP)."""
    update = service.UserUpdate(replace_groups=override, replace_licenses=override)
    update.groups, update.licenses = list(template["groups"]), list(template["licenses"])
    if template["location"] and (override or not (current or {}).get("location")):
        update.location = template["location"]
    if template["vrp"] and (override or (current or {}).get("vrp") in (None, "Global")):
        update.vrp = template["vrp"]
    return update


async def apply_template(
    sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection,
    ms_user_id: str, template_id: int, override: bool,
) -> dict[str, Any]:
    async with transaction(sessions) as session:
        template = await get_template(session, access, template_id)
    admin = connection.directory_admin
    user = await service.directory_user(admin, ms_user_id)
    before = await snapshot(connection, user)
    await service.apply_update(sessions, access, connection, user, update_from(template, override=override, current=before))
    after = await snapshot(connection, await admin.user(user.id))
    return {"before": before, "after": after}
