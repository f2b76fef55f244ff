"""User templates (vendor-notes 2.6): per subscription, a name, a product key, a description and the
properties they set: country, MS licences, MS groups, voice routing policy. Template 0 is the built-in
default ("the minimum requirements for a Fusion user": a Phone System licence) and cannot be changed. A template
manages only what it names: an empty list of groups or licences leaves the user's alone, and the default
template's licence is a requirement (met by any licence carrying Teams Phone, `update_from`), not a set to hold.

The groups, licences and voice routing policy a template names are checked against the subscription's MS Teams
tenant when it is created or changed (`check_in_tenant`); a subscription not linked to a tenant yet has nothing
to check them against, so its templates' names are checked when they are applied (an unknown one then fails the
user's update or bulk item, as it would sent directly)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.db import end_transaction, transaction
from teamsvoice.core.errors import Conflict, NotFound, UpstreamError, ValidationFailed
from teamsvoice.domain.provisioning.service import per_user_policy, unknown_policy
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.teams_users import repository, service
from teamsvoice.domain.teams_users.models import FusionTemplate
from teamsvoice.domain.tenant_voice import rules
from teamsvoice.microsoft.directory_ports import DirectoryAdministration
from teamsvoice.microsoft.ports import TenantConnection

TEMPLATE_NAME_TAKEN = "template_name_taken"
DEFAULT_TEMPLATE_READ_ONLY = "default_template_read_only"
UNSET: Any = service.UNSET
# The description column is TEXT, unbounded: a description is a sentence or two, never a document.
DESCRIPTION_MAX_LENGTH = 1000


@dataclass(frozen=True)
class Template:
    """A template as read: the built-in default (id 0, no dates) or a subscription's row."""

    id: int
    name: str
    product_key: str
    description: str | None
    location: str | None
    vrp: str | None
    groups: tuple[str, ...]
    licenses: tuple[str, ...]
    created_on: datetime | None = None
    updated_on: datetime | None = None
    # The default template's: its licence (MCOEV) is the Teams Phone requirement, met by any licence carrying it.
    requires_teams_phone: bool = False


DEFAULT = Template(0, "Default", "default", "The minimum requirements for a Fusion user: a Teams Phone System licence",
                   None, None, (), (rules.USER_PHONE_PLAN,), requires_teams_phone=True)


@dataclass
class TemplateChanges:
    """What to set on a template (UNSET: left alone); an API family parses its body into one. `name` and
    `product_key` are checked names (`core.limits.check_name`), `description` one of at most
    DESCRIPTION_MAX_LENGTH characters or None, `location` an ISO alpha-2 code or None, `vrp` a policy name
    checked as a user's (`service.policy_name`) or None."""

    name: Any = UNSET
    product_key: Any = UNSET
    description: Any = UNSET
    location: Any = UNSET
    vrp: Any = UNSET
    groups: Any = UNSET
    licenses: Any = UNSET


@dataclass(frozen=True)
class TemplatedProperties:
    """A user's properties that templates manage: group ids, licence sku ids, usage location and voice
    routing policy ("Global" when none is granted)."""

    groups: list[str]
    licenses: list[str]
    location: str | None
    vrp: str


@dataclass(frozen=True)
class TemplateApplied:
    before: TemplatedProperties
    after: TemplatedProperties


def _template(row: FusionTemplate) -> Template:
    return Template(row.id, row.name, row.product_key, row.description, row.location, row.vrp, tuple(row.groups),
                    tuple(row.licenses), row.created_on, row.updated_on)


async def list_templates(session: AsyncSession, access: SubscriptionAccess, search: str | None) -> list[Template]:
    """The default template (when its name matches) then the subscription's, whose names contain `search`."""
    needle = (search or "").strip().lower()
    found = [_template(t) for t in await repository.templates_of(session, access.subscription.id, needle)]
    default = [DEFAULT] if not needle or needle in DEFAULT.name.lower() else []
    return default + found


async def get_template(session: AsyncSession, access: SubscriptionAccess, template_id: int) -> Template:
    if template_id == 0:
        return DEFAULT
    return _template(await _row(session, access, template_id))


async def _row(session: AsyncSession, access: SubscriptionAccess, template_id: int) -> FusionTemplate:
    row = await repository.template_by_id(session, access.subscription.id, template_id)
    if row is None:
        raise NotFound("The template does not exist", code=service.TEMPLATE_NOT_FOUND)
    return row


async def by_name(session: AsyncSession, subscription_id: int, name: str) -> Template:
    """A template by name (bulk items name templates); the default one answers to its name too."""
    if name.lower() == DEFAULT.name.lower():
        return DEFAULT
    row = await repository.template_by_name(session, subscription_id, name)
    if row is None:
        raise NotFound("The template does not exist", code=service.TEMPLATE_NOT_FOUND)
    return _template(row)


async def _check_name(session: AsyncSession, access: SubscriptionAccess, name: str, keep_id: int | None = None) -> None:
    if name.lower() == DEFAULT.name.lower():
        raise Conflict(f"name: {name} is the default template's name", code=TEMPLATE_NAME_TAKEN)
    clash = await repository.template_by_name(session, access.subscription.id, name)
    if clash is not None and clash.id != keep_id:
        raise Conflict(f"name: a template named {name} already exists", code=TEMPLATE_NAME_TAKEN)


async def check_in_tenant(session: AsyncSession, connection: TenantConnection | None,
                          changes: TemplateChanges) -> None:
    """The groups, licences and voice routing policy `changes` names must exist in the linked tenant (`connection`;
    None: not linked, nothing to check against): one 400 naming each unknown one, with the lookups a user's update
    makes (`service.resolve_group`, `service.resolve_sku`, `provisioning.service.unknown_policy`). Microsoft is
    asked with no transaction held."""
    groups = [] if changes.groups is UNSET else list(changes.groups or [])
    licences = [] if changes.licenses is UNSET else list(changes.licenses or [])
    policy = None if changes.vrp is UNSET else per_user_policy(changes.vrp)  # "Global": no per-user policy
    if connection is None or not (groups or licences or policy):
        return
    await end_transaction(session)
    admin, unknown, cache = connection.directory_admin, [], {}
    for group in groups:
        try:
            await service.resolve_group(admin, group, cache)
        except NotFound:
            unknown.append(f"group {group}")
    for licence in licences:
        try:
            await service.resolve_sku(admin, licence)
        except NotFound:
            unknown.append(f"license {licence}")
    if policy is not None and await unknown_policy(connection, policy) is not None:
        unknown.append(f"voice routing policy {changes.vrp}")
    if unknown:
        raise ValidationFailed(f"Not in the MS Teams tenant: {', '.join(unknown)}")


async def create_template(session: AsyncSession, access: SubscriptionAccess, changes: TemplateChanges) -> FusionTemplate:
    """A new template; `changes` must name it and give its product key."""
    if changes.name is UNSET or changes.product_key is UNSET:
        raise ValidationFailed("A new template needs a name and a product key")
    await _check_name(session, access, changes.name)

    def given(value: Any, default: Any) -> Any:
        return default if value is UNSET else value

    row = FusionTemplate(subscription_id=access.subscription.id, name=changes.name, product_key=changes.product_key,
                         description=given(changes.description, None), location=given(changes.location, None),
                         vrp=given(changes.vrp, None), groups=given(changes.groups, []),
                         licenses=given(changes.licenses, []))
    session.add(row)
    await session.flush()
    return row


async def changeable(session: AsyncSession, access: SubscriptionAccess, template_id: int) -> FusionTemplate:
    """The subscription's template that may be changed (the default one may not)."""
    if template_id == 0:
        raise ValidationFailed("The default template cannot be changed", code=DEFAULT_TEMPLATE_READ_ONLY)
    return await _row(session, access, template_id)


async def update_template(session: AsyncSession, access: SubscriptionAccess, row: FusionTemplate,
                          changes: TemplateChanges) -> None:
    """Sets what `changes` gives on a template answered by `changeable`."""
    if changes.name is not UNSET:
        await _check_name(session, access, changes.name, keep_id=row.id)
        row.name = changes.name
    for attr in ("product_key", "description", "location", "vrp", "groups", "licenses"):
        value = getattr(changes, attr)
        if value is not UNSET:
            setattr(row, attr, value)


async def delete_template(session: AsyncSession, access: SubscriptionAccess, template_id: int) -> None:
    if template_id == 0:
        raise ValidationFailed("The default template cannot be deleted", code=DEFAULT_TEMPLATE_READ_ONLY)
    await session.delete(await _row(session, access, template_id))


async def snapshot(connection: TenantConnection, user: service.DirectoryUser) -> TemplatedProperties:
    """The user's properties managed by templating."""
    admin = connection.directory_admin
    groups = sorted(m.id for m in await admin.member_of(user.id) if m.kind == "group")
    state = await connection.voice.voice_state(user.id)
    return TemplatedProperties(groups, list(user.assigned_sku_ids), user.usage_location,
                               state.voice_routing_policy or "Global")


def update_from(template: Template, *, override: bool, current: TemplatedProperties | None = None,
                holds_teams_phone: bool = False) -> service.UserUpdate:
    """override: the template's values replace the user's; otherwise they are added (lists) or fill what
    the user lacks (location, VRP). An empty list is not the template's to manage: the user's is left alone. A
    template that `requires_teams_phone` (the default) adds its licence only to a user not `holds_teams_phone`
    (a licence carrying it: Teams Phone Standard, E5, ...), and never takes one away."""
    replace_licenses = override and not template.requires_teams_phone
    update = service.UserUpdate(replace_groups=override, replace_licenses=replace_licenses)
    if template.groups:
        update.groups = list(template.groups)
    if template.licenses and not (template.requires_teams_phone and holds_teams_phone):
        update.licenses = list(template.licenses)
    if template.location and (override or not (current.location if current else None)):
        update.location = template.location
    if template.vrp and (override or (current.vrp if current else None) in (None, "Global")):
        update.vrp = template.vrp
    return update


async def holds_teams_phone(admin: DirectoryAdministration, user: service.DirectoryUser, *,
                            remembered: bool = False) -> bool:
    """Whether `user` holds a licence carrying Teams Phone (`service.voice_enabled` "yes": Teams Phone Standard, E5,
    ...), the default template's requirement. `remembered`: from the tenant's SKUs as this process last read them
    (`subscribed_skus(refresh=False)`, a bulk item's: no read of its own), read afresh only when they lack a licence
    the user holds (a SKU subscribed since)."""
    skus = await service.sku_map(admin, refresh=not remembered)
    if remembered and service.unknown_licence([user], skus):
        skus = await service.sku_map(admin)
    return service.voice_enabled(user, skus) == "yes"


async def update_for(template: Template, admin: DirectoryAdministration, user: service.DirectoryUser, *,
                     override: bool, current: TemplatedProperties | None = None,
                     remembered: bool = False) -> service.UserUpdate:
    """The update applying `template` to `user` makes (`update_from`), whether the user holds Teams Phone decided
    from its licences (`holds_teams_phone`; asked only of a template that `requires_teams_phone`): the one rule of
    the single-user apply and of a bulk item naming a template (`remembered`: the SKUs this process last read)."""
    holds = template.requires_teams_phone and await holds_teams_phone(admin, user, remembered=remembered)
    return update_from(template, override=override, current=current, holds_teams_phone=holds)


async def apply_template(
    sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection,
    ms_user_id: str, template_id: int, override: bool,
) -> TemplateApplied:
    async with transaction(sessions) as session:
        template = await get_template(session, access, template_id)
    admin = connection.directory_admin
    user = await service.directory_user(admin, ms_user_id)
    before = await snapshot(connection, user)
    update = await update_for(template, admin, user, override=override, current=before)
    groups: dict[str, str] = {}  # each group the template names, by its id (as the update resolved it)
    await service.apply_update(sessions, access, connection, user, update, group_cache=groups)
    try:
        after = await snapshot(connection, await admin.user(user.id))
    except UpstreamError:
        # The template is applied (spec 004: 200 with before and after): Microsoft failing the read made only to draw
        # `after` is no failure of it. `after` is then `before` with the update applied, as Microsoft now holds it.
        after = await _as_applied(admin, before, update, groups)
    return TemplateApplied(before, after)


async def _as_applied(admin: DirectoryAdministration, before: TemplatedProperties, update: service.UserUpdate,
                      groups: dict[str, str]) -> TemplatedProperties:
    """The templated properties once `update` is applied to a user who had `before` (`apply_update` returned: every
    change is made): group ids from the update's own resolution (`groups`), licences' ids from the SKUs it read."""
    group_ids = before.groups
    if update.groups is not UNSET:
        wanted = {groups[name] for name in update.groups or []}
        group_ids = sorted(wanted if update.replace_groups else wanted | set(before.groups))
    licences = before.licenses
    if update.licenses is not UNSET:
        wanted_ids = [(await service.resolve_sku(admin, name)).sku_id for name in update.licenses or []]
        held = {sku.lower() for sku in before.licenses}
        kept = [sku for sku in before.licenses
                if not update.replace_licenses or sku.lower() in {w.lower() for w in wanted_ids}]
        licences = kept + list(dict.fromkeys(w for w in wanted_ids if w.lower() not in held))
    location = before.location if update.location is UNSET else update.location
    vrp = before.vrp if update.vrp is UNSET else (per_user_policy(update.vrp) or "Global").removeprefix("Tag:")
    return TemplatedProperties(group_ids, licences, location, vrp)
