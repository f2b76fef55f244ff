"""MS Teams users of a subscription (Fusion's spec 004): the directory joined with teamsvoice's records, and
updates. Reading answers domain objects (`UsersPage`, `TeamsUser`, `VoiceRecordView`); `api/fusion/users_wire.py`
renders them (the `msTeams` and `draas` objects) and signs the list's paging tokens.

A user's number and voice routing policy are the shared `TeamsVoiceUser` row (the ConnecttoTeams API sees
the same rows) and reach Teams only through `provisioning.service.reconcile`. Display name, usage location,
licences and group memberships are Microsoft's own (Graph). Customer licences are Fusion's.

Every update runs in the same order, for one user or for a bulk item: its voice fields checked and the number/VRP
recorded in the database and committed (a number taken or a licence quota exceeded changes nothing), then directory
properties, licences and groups, then the number/VRP reconciled in Teams (a failure of either puts the previous
number and policy back, so nothing stays half-written) and the customer licences recorded.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Set
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.db import end_transaction, transaction
from teamsvoice.core.errors import Conflict, NotFound, UpstreamError, ValidationFailed
from teamsvoice.core.limits import check_name, check_new_user_principal_name, name_problem, new_user_name_problem
from teamsvoice.domain.audit import recorder as audit
from teamsvoice.domain.fusion import licences, numbers
from teamsvoice.domain.fusion import repository as fusion_repository
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.inventory import ownership
from teamsvoice.domain.inventory import repository as inventory_repository
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.provisioning.service import (
    NO_VOICE, VoiceSettings, pending_change, per_user_policy, put_back, reconcile, record_wish, undone_on_failure,
    voice_settings, voice_state_reading,
)
from teamsvoice.domain.teams_users import repository
from teamsvoice.domain.teams_users.models import FusionUserLicences
from teamsvoice.domain.tenant_voice import rules
from teamsvoice.domain.voice_state import repository as voice_records
from teamsvoice.microsoft.directory_ports import (
    RESOURCE_ACCOUNT_DEPARTMENT, DirectoryAdministration, DirectoryObject, DirectoryUser, SubscribedSku,
)
from teamsvoice.microsoft.ports import TenantConnection
from teamsvoice.core.remembered import Remembered

UNSET: Any = ...  # a field the request did not send (None is "clear it")

# Stable error codes of this module (Fusion numbers them in api/fusion/error_codes.py).
USER_NOT_FOUND = "teams_user_not_found"
GROUP_NOT_FOUND = "group_not_found"
LICENCE_NOT_FOUND = "licence_not_found"
VRP_REFUSED = "voice_routing_policy_refused"
INVALID_ITEM = "invalid_bulk_item"
TEMPLATE_NOT_FOUND = "template_not_found"

TEAMS_PLANS = frozenset({"TEAMS1", "MCOSTANDARD", "TEAMS_FREE"})


# --- reading -------------------------------------------------------------------------------------------


def voice_enabled(user: DirectoryUser, skus: dict[str, SubscribedSku]) -> str:
    """"yes": a Phone System plan; "maybe": Teams without Phone System (an add-on could make it voice
    capable); "no": no Teams at all."""
    plans = rules.licence_plans(user.assigned_sku_ids, skus)
    if rules.gives_voice(plans):
        return "yes"
    if plans & TEAMS_PLANS:
        return "maybe"
    return "no"


async def sku_map(admin: DirectoryAdministration, *, refresh: bool = True) -> dict[str, SubscribedSku]:
    """The tenant's SKUs by lower-case id. `refresh=False` may answer from this process's last read of the tenant
    (`subscribed_skus`: SKUS_SECONDS at most), whose seat counts are that read's: enough to name a user's licences and
    know their plans, which change only when the tenant subscribes a SKU or drops one."""
    return {s.sku_id.lower(): s for s in await admin.subscribed_skus(refresh=refresh)}


def unknown_licence(users: Iterable[DirectoryUser], skus: dict[str, SubscribedSku]) -> bool:
    """Whether one of `users` holds a licence `skus` does not name (a SKU subscribed since they were read)."""
    return any(sku_id.lower() not in skus for user in users for sku_id in user.assigned_sku_ids)


@dataclass(frozen=True)
class Licence:
    sku_id: str
    sku_part_number: str  # the sku id itself when the tenant no longer subscribes it


def licences_of(user: DirectoryUser, skus: dict[str, SubscribedSku]) -> list[Licence]:
    return [Licence(sku_id, skus[sku_id.lower()].sku_part_number if sku_id.lower() in skus else sku_id)
            for sku_id in user.assigned_sku_ids]


def render_licences(user: DirectoryUser, skus: dict[str, SubscribedSku]) -> list[dict[str, str]]:
    """The user's licences named as Graph names them (the console's and the CLI's users lists)."""
    return [{"skuId": licence.sku_id, "skuPartNumber": licence.sku_part_number} for licence in licences_of(user, skus)]


def sync_status(record: TeamsVoiceUser) -> str:
    if record.last_sync_status == "FAILED":
        return "error"
    return "active" if record.last_synced_at is not None else "pending"


@dataclass(frozen=True)
class VoiceRecordView:
    """teamsvoice's record of a user or resource account: its number (`number_id`: the subscription's inventory
    row of it, when there is one), its customer licences and how its last sync went (`sync_status`)."""

    id: int
    phone_number: str | None
    number_id: int | None
    customer_licences: list[str]
    status: str


async def record_views(session: AsyncSession, access: SubscriptionAccess, records: list[TeamsVoiceUser]) -> dict[int, VoiceRecordView]:
    """Each record's view, by record id."""
    if not records:
        return {}
    licences = await repository.customer_licences_of(session, [r.id for r in records])
    phones = [r.phone_number for r in records if r.phone_number]
    inventory = {row.e164: row.id for row in await inventory_repository.subscription_numbers(
        session, access.subscription.id, phones)}
    return {record.id: VoiceRecordView(record.id, record.phone_number or None,
                                       inventory.get(record.phone_number) if record.phone_number else None,
                                       list(licences.get(record.id, [])), sync_status(record))
            for record in records}


@dataclass(frozen=True)
class Membership:
    id: str  # a directory role's: its role template id
    display_name: str | None


@dataclass(frozen=True)
class UserDetails:
    """What is read for one user only: its groups and voice routing policy (None: Global)."""

    groups: list[Membership]
    voice_routing_policy: str | None


@dataclass(frozen=True)
class TeamsUser:
    """A directory user with what teamsvoice holds of it (`record`: None when teamsvoice has no record)."""

    user: DirectoryUser
    licences: list[Licence]
    voice_enabled: str
    record: VoiceRecordView | None
    details: UserDetails | None = None
    roles: tuple[Membership, ...] = ()  # its directory roles (a role's id: its role template id), in a list too


@dataclass(frozen=True)
class UsersPosition:
    """Where a page of users starts: Microsoft's page link and the index in that page."""

    link: str | None
    skip: int


@dataclass(frozen=True)
class UsersPage:
    users: list[TeamsUser]
    following: UsersPosition | None  # where the next page starts; None on the last page


MAX_USERS_PAGE = 999


def check_users_page_size(page_size: int) -> None:
    if not 1 <= page_size <= MAX_USERS_PAGE:
        raise ValidationFailed(f"page_size: must be between 1 and {MAX_USERS_PAGE}")


async def records_for(session: AsyncSession, access: SubscriptionAccess, ms_ids: list[str]) -> dict[str, TeamsVoiceUser]:
    return await voice_users.by_microsoft_ids(session, access.enterprise.id, ms_ids)


@dataclass(frozen=True)
class UserFilters:
    """Which users a list keeps: usage location in `countries` (ISO alpha-2, upper case; empty: any),
    `is_voice_enabled` yes/no/maybe (`voice_enabled`), `have_number` yes/no (a number in teamsvoice's record).
    Each API family parses its own query into one (Fusion: `api/fusion/msteams_users.parse_filters`)."""

    countries: frozenset[str] = frozenset()
    is_voice_enabled: str | None = None
    have_number: str | None = None


# Users asked of Microsoft per Graph page when a filter may drop many of those read (Graph's own default page; at most
# MAX_USERS_PAGE): read `page_size` at a time, a page of the few users with a number took a round trip per `page_size`
# users of the tenant. Unfiltered, a Graph page is the list's page (a page filled mid-way reads its Graph page again).
FILTERED_GRAPH_PAGE = 100

# What a list's pages share for a while, per tenant, in this process (the portal's infinite scroll asks page after
# page; each page read them all again: the role holders, a request plus one per activated role, and every member of
# the SRE group filter's groups). Microsoft changes them rarely, and teamsvoice never changes a directory role; a
# change made meanwhile (in Entra ID; a filter group's members through a user's `groups` here) shows within
# LIST_MEMO_SECONDS. The tenant's SKUs are `subscribed_skus`' memo (`sku_map`).
LIST_MEMO_SECONDS = 60.0
V = TypeVar("V")


class _Dropped(Remembered[V]):
    """As Remembered, and what it has forgotten is dropped at each put (Remembered keeps a value until its key is put
    again): a filter's members are thousands of ids a tenant, kept while they answer, not while the process runs."""

    def put(self, key: Hashable, value: V) -> None:
        now = time.monotonic()
        for stale in [k for k, (_, when) in list(self._values.items()) if now - when >= self.seconds]:
            self._values.pop(stale, None)
        super().put(key, value)

    def forget_tenant(self, tenant_id: str) -> None:
        """What is remembered of the tenant (keys `(tenant, ...)`)."""
        for key in [k for k in list(self._values) if isinstance(k, tuple) and k and k[0] == tenant_id]:
            self._values.pop(key, None)


_ROLE_HOLDERS: Remembered[dict[str, list[DirectoryObject]]] = _Dropped(LIST_MEMO_SECONDS)  # tenant -> holders
# (tenant, filter's groups) -> members; forgotten when teamsvoice changes a user's groups in the tenant (`apply_update`)
_FILTER_MEMBERS: _Dropped[frozenset[str]] = _Dropped(LIST_MEMO_SECONDS)


async def list_users(
    session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection, *,
    page_size: int, start: UsersPosition | None, search: str | None, group: str | None, filters: UserFilters,
) -> UsersPage:
    """One page of users from `start` (None: the first page). Microsoft's pages are followed until `page_size`
    users pass the filters (teamsvoice's records read once per Microsoft page, for `have_number`); the page's
    `following` is where the next one starts, right after its last user (so no matching user is skipped or listed
    twice), and is None when no more may follow: Microsoft has no next page and none of its page's rest matches."""
    check_users_page_size(page_size)
    link: str | None = start.link if start is not None else None
    skip = start.skip if start is not None else 0
    admin = connection.directory_admin
    # The SKUs only name the users' licences (each user's own, read with it) and give their plans: as remembered,
    # read again once a user holds one they lack (subscribed since).
    skus = await sku_map(admin, refresh=False)
    skus_read = False
    allowed = await _filter_members(session, access, connection)
    prefix = (search or "").lower() if group else ""  # without a group, Microsoft applies the search itself
    dropping = filters.countries or filters.is_voice_enabled or filters.have_number or prefix or allowed is not None
    graph_page = max(page_size, FILTERED_GRAPH_PAGE) if dropping else page_size
    picked: list[tuple[DirectoryUser, str]] = []
    records: dict[str, TeamsVoiceUser] = {}
    following: UsersPosition | None = None
    while True:
        try:
            page = await admin.user_page(link, page_size=graph_page, starts_with=search, group=group)
        except NotFound:
            raise NotFound(f"Group {group} not found in the MS Teams tenant") from None
        if not skus_read and unknown_licence(page.users, skus):
            skus, skus_read = await sku_map(admin), True
        matching = _directory_matches(page.users, skip, skus, allowed=allowed, prefix=prefix, filters=filters)
        wanted = page_size - len(picked)
        if filters.have_number:  # every candidate's record is needed to know whether it matches: one read a page
            found = await records_for(session, access, [user.id for _, user, _ in matching])
            want = filters.have_number == "yes"
            matching = [m for m in matching if bool(found.get(m[1].id) and found[m[1].id].phone_number) == want]
        else:
            found = await records_for(session, access, [user.id for _, user, _ in matching[:wanted]])
        taken = matching[:wanted]
        picked += [(user, voice) for _, user, voice in taken]
        records |= {user.id: found[user.id] for _, user, _ in taken if user.id in found}
        if len(picked) == page_size:
            if len(matching) > len(taken):  # more of this Microsoft page match: the next page starts within it
                following = UsersPosition(page.link, taken[-1][0] + 1)
            elif page.next_link:
                following = UsersPosition(page.next_link, 0)
            break
        if not page.next_link:
            break
        link, skip = page.next_link, 0
    views = await record_views(session, access, list(records.values()))
    # One read for the page (not one per user), and for the pages that follow within LIST_MEMO_SECONDS.
    holders = await _ROLE_HOLDERS.recall(connection.tenant_id, admin.role_holders) if picked else {}
    users = [TeamsUser(user, licences_of(user, skus), voice, views[records[user.id].id] if user.id in records else None,
                       roles=roles_of(holders.get(user.id, [])))
             for user, voice in picked]
    return UsersPage(users, following)


def _directory_matches(
    users: list[DirectoryUser], skip: int, skus: dict[str, SubscribedSku], *,
    allowed: Set[str] | None, prefix: str, filters: UserFilters,
) -> list[tuple[int, DirectoryUser, str]]:
    """The users of one Microsoft page from index `skip` that pass the filters Microsoft's own properties decide
    (and the SRE group filter: `allowed`), each with its index in the page and whether it is voice enabled."""
    matches: list[tuple[int, DirectoryUser, str]] = []
    for index in range(skip, len(users)):
        user = users[index]
        if user.account_enabled is False or user.department == RESOURCE_ACCOUNT_DEPARTMENT:
            continue
        if prefix and not (user.display_name or "").lower().startswith(prefix):
            continue
        if allowed is not None and user.id not in allowed:
            continue
        if filters.countries and (user.usage_location or "").upper() not in filters.countries:
            continue
        voice = voice_enabled(user, skus)
        if filters.is_voice_enabled and voice != filters.is_voice_enabled:
            continue
        matches.append((index, user, voice))
    return matches


def roles_of(memberships: Iterable[DirectoryObject]) -> tuple[Membership, ...]:
    """A user's directory roles among its memberships, each named by its role template id (the same id in every
    tenant: Global Administrator is 62e90394-...), as one user's read and a list show them."""
    return tuple(Membership(m.role_template_id or m.id, m.display_name) for m in memberships if m.kind == "directoryRole")


async def _filter_members(session: AsyncSession, access: SubscriptionAccess,
                          connection: TenantConnection) -> frozenset[str] | None:
    """Members of the subscription's SRE group filter, or None when it has no filter; read once for the tenant and
    that filter's groups within LIST_MEMO_SECONDS (a list's pages each read them: a 5,000-member group, 50 requests)."""
    groups = tuple(await fusion_repository.group_filter(session, access.subscription.id))
    if not groups:
        return None
    admin = connection.directory_admin

    async def of_group(group_id: str) -> set[str]:
        try:
            return {member.id async for member in admin.group_members(group_id)}
        except NotFound:
            return set()  # an orphan filter entry matches nobody

    async def read() -> frozenset[str]:
        # The groups read at once (each group's pages one after another), not one group after another.
        return frozenset().union(*await asyncio.gather(*(of_group(group_id) for group_id in groups)))

    return await _FILTER_MEMBERS.recall((connection.tenant_id, tuple(sorted(groups))), read)


async def directory_user(admin: DirectoryAdministration, ms_user_id: str) -> DirectoryUser:
    try:
        user = await admin.user(ms_user_id)
    except NotFound:
        raise NotFound(f"MS Teams user {ms_user_id} not found", code=USER_NOT_FOUND) from None
    if user.department == RESOURCE_ACCOUNT_DEPARTMENT:
        raise NotFound(f"MS Teams user {ms_user_id} not found (it is a resource account)", code=USER_NOT_FOUND)
    return user


async def get_user(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection, ms_user_id: str) -> TeamsUser:
    admin = connection.directory_admin
    user = await directory_user(admin, ms_user_id)
    skus = await sku_map(admin)
    memberships = await admin.member_of(user.id)
    state = await connection.voice.voice_state(user.id)
    details = UserDetails([Membership(m.id, m.display_name) for m in memberships if m.kind == "group"],
                          state.voice_routing_policy)
    record = (await records_for(session, access, [user.id])).get(user.id)
    view = (await record_views(session, access, [record]))[record.id] if record is not None else None
    return TeamsUser(user, licences_of(user, skus), voice_enabled(user, skus), view, details, roles_of(memberships))


async def check_voice(connection: TenantConnection, ms_user_id: str) -> bool:
    admin = connection.directory_admin
    user = await directory_user(admin, ms_user_id)
    return voice_enabled(user, await sku_map(admin)) == "yes"


async def sip_address(connection: TenantConnection, ms_user_id: str) -> str:
    # Teams is asked by the id the directory answered: an id sent in capitals was "not found" there (a 400).
    user = await directory_user(connection.directory_admin, ms_user_id)
    address = await connection.teams_admin.sip_address(user.id)
    if not address:
        raise NotFound(f"MS Teams user {ms_user_id} has no sip address", code=USER_NOT_FOUND)
    return address


# --- updating ------------------------------------------------------------------------------------------


@dataclass
class UserUpdate:
    """What to change; UNSET fields are left alone, None clears. `groups`/`licenses` hold ids or names;
    `replace_*` says whether the list is the full set (sub-resources) or added to (update, bulk)."""

    display_name: Any = UNSET
    location: Any = UNSET
    phone_number: Any = UNSET
    vrp: Any = UNSET
    groups: Any = UNSET
    licenses: Any = UNSET
    customer_licenses: Any = UNSET
    replace_groups: bool = False
    replace_licenses: bool = False
    changes: list[str] = field(default_factory=list)


def string_list(name: str, value: Any, *, nullable: bool = True) -> list[str] | None:
    if value is None and nullable:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationFailed(f"{name}: must be a list of strings" + (" or null" if nullable else ""))
    return [v.strip() for v in value]


def optional_string(name: str, value: Any, *, nullable: bool = True) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{name}: must be a non-empty string" + (" or null" if nullable else ""))
    return value.strip()


def policy_name(name: str, value: Any) -> str | None:
    """A voice routing policy named in a request (a user's, a template's `vrp`), trimmed, or None (null): a name
    that cannot be stored or granted (`provisioning.service.per_user_policy`) is a 400 naming `name`, the field as
    the client sent it."""
    text = optional_string(name, value)
    per_user_policy(text, name)
    return text


def display_name(name: str, value: Any) -> str:
    """A display name sent for a user or resource account: a non-empty string, a bounded name (core.limits: at most
    200 characters, no control characters; Entra ID takes 256)."""
    text = optional_string(name, value, nullable=False) or ""
    return check_name(name, text)


def parse_location(name: str, value: Any) -> str:
    return numbers.check_iso_code(value, name)


UPDATE_FIELDS = ("display_name", "location", "phone_number", "vrp", "groups", "licenses", "customer_licenses")


def parse_changes(values: dict[str, Any], labels: dict[str, str] | None = None) -> UserUpdate:
    """A UserUpdate from a plain dict keyed by UPDATE_FIELDS (a key left out is left alone): `display_name` a
    non-empty string, `location` an ISO 3166 alpha-2 code, `phone_number` a full E.164 number or None
    (disable), `vrp` a policy name or None (Global), `groups`/`licenses` lists of ids or names or None,
    `customer_licenses` a list or None (none). Checked in the dict's order; an error names the field as
    `labels` says (the caller's name for it: an API family's, a stored bulk item's), else by its key."""
    update = UserUpdate()
    for name, value in values.items():
        if name not in UPDATE_FIELDS:
            raise ValueError(f"not a UserUpdate field: {name}")  # a caller's mistake, never a request's
        wire = (labels or {}).get(name, name)
        if name == "display_name":
            update.display_name = display_name(wire, value)
        elif name == "location":
            update.location = parse_location(wire, value)
        elif name == "phone_number":
            update.phone_number = None if value is None else numbers.parse_full_number(value, wire)
        elif name == "vrp":
            update.vrp = policy_name(wire, value)
        elif name in ("groups", "licenses"):
            setattr(update, name, string_list(wire, value))
        elif name == "customer_licenses":
            update.customer_licenses = string_list(wire, value) or []
    return update


GROUP_NAME_MAX_LENGTH = 256  # an Entra group display name (a group id is 36)


async def resolve_group(admin: DirectoryAdministration, ident: str, cache: dict[str, str]) -> str:
    if ident in cache:
        return cache[ident]
    problem = name_problem(ident, GROUP_NAME_MAX_LENGTH)
    if problem is not None:
        raise ValidationFailed(f"groups: a group id or name: {problem}")
    try:
        group = await admin.group(ident)
        cache[ident] = group.id
        return group.id
    except (NotFound, UpstreamError):
        pass
    escaped = ident.replace("'", "''")
    async for group in admin.groups(filter=f"displayName eq '{escaped}'"):
        cache[ident] = group.id
        return group.id
    raise NotFound(f"The group {ident} does not exist in the MS Teams tenant", code=GROUP_NOT_FOUND)


async def resolve_sku(admin: DirectoryAdministration, ident: str) -> SubscribedSku:
    """A licence's id by its id or name, from the connection's last read of the tenant's SKUs when it names it
    (a bulk job's items do not each read them; seat counts are not needed here: Microsoft refuses the
    assignment when none is free)."""
    try:
        return await admin.sku(ident, fresh=False)
    except NotFound:
        raise NotFound(f"The license {ident} does not exist in the MS Teams tenant", code=LICENCE_NOT_FOUND) from None


async def _check_number_licence(admin: DirectoryAdministration, user: DirectoryUser, update: UserUpdate) -> None:
    """A number the update gives needs Teams Phone among the licences the user holds once the update's own
    `licenses` are assigned (they are, before the number): refused before anything is changed otherwise."""
    if update.phone_number is UNSET or update.phone_number is None:
        return
    held = {s.lower() for s in user.assigned_sku_ids}
    if update.licenses is not UNSET:
        wanted = {(await resolve_sku(admin, s)).sku_id.lower() for s in update.licenses or []}
        held = wanted if (update.replace_licenses or update.licenses is None) else held | wanted
    skus = {s.sku_id.lower(): s for s in await admin.subscribed_skus(refresh=False)}
    rules.require_teams_phone(f"The MS Teams user {user.user_principal_name}",
                              rules.licence_plans(held, skus),
                              hint="assign the licence first, or send it with the number (licenses, or a template giving it)")


def _new_properties(user: DirectoryUser, update: UserUpdate) -> dict[str, Any]:
    """The display name and usage location `update` gives the user, those that differ from its own."""
    properties: dict[str, Any] = {}
    if update.display_name is not UNSET and update.display_name != user.display_name:
        properties["display_name"] = update.display_name
    if update.location is not UNSET and update.location != user.usage_location:
        properties["usage_location"] = update.location
    return properties


async def _licence_changes(admin: DirectoryAdministration, user: DirectoryUser,
                           update: UserUpdate) -> tuple[list[str], list[str]]:
    """The SKUs `update`'s licences add to the user's and take away (none when it sends none): the tenant's SKUs as
    remembered (`resolve_sku`), no read of the user's."""
    if update.licenses is UNSET:
        return [], []
    current = {s.lower() for s in user.assigned_sku_ids}
    wanted = {(await resolve_sku(admin, s)).sku_id.lower() for s in update.licenses or []}
    remove = sorted(current - wanted) if (update.replace_licenses or update.licenses is None) else []
    return sorted(wanted - current), remove


async def _changes_directory(admin: DirectoryAdministration, user: DirectoryUser, update: UserUpdate) -> bool:
    """Whether `_apply_directory` may change the user in Microsoft: its properties or licences differ (a bulk item's
    licence the user holds already changes nothing: its voice state is then read while the wish is recorded, as
    without one), or it sends groups (compared with Microsoft's memberships as they are applied)."""
    if _new_properties(user, update) or update.groups is not UNSET:
        return True
    add, remove = await _licence_changes(admin, user, update)
    return bool(add or remove)


async def _apply_directory(admin: DirectoryAdministration, user: DirectoryUser, update: UserUpdate, group_cache: dict[str, str]) -> None:
    properties = _new_properties(user, update)
    if properties:
        await admin.update_user(user.id, **properties)
        update.changes.append("properties")
    if update.licenses is not UNSET:
        add, remove = await _licence_changes(admin, user, update)
        if add or remove:
            await admin.assign_licences_batched(user.id, add=add, remove=remove)
            update.changes.append("licenses")
    if update.groups is not UNSET:
        current = {m.id for m in await admin.member_of(user.id) if m.kind == "group"}
        wanted = {await resolve_group(admin, g, group_cache) for g in update.groups or []}
        for group_id in sorted(wanted - current):
            await admin.add_group_member(group_id, user.id)
        if update.replace_groups or update.groups is None:
            for group_id in sorted(current - wanted):
                await admin.remove_group_member(group_id, user.id)
        if wanted != current:
            update.changes.append("groups")


async def set_customer_licences(session: AsyncSession, record_id: int, licences: list[str]) -> None:
    row = await repository.customer_licences_row(session, record_id)
    if row is None:
        session.add(FusionUserLicences(voice_user_id=record_id, customer_licenses=list(licences)))
    else:
        row.customer_licenses = list(licences)


Settle = Callable[[AsyncSession], Awaitable[None]]


async def _wanted_voice(session: AsyncSession, access: SubscriptionAccess, update: UserUpdate, policy: str | None,
                        record: TeamsVoiceUser | None, before: VoiceSettings) -> VoiceSettings:
    """The user's number, per-user policy and calling once `update` applies to them (a number sent must be free)."""
    phone, vrp, calling = before
    if update.phone_number is not UNSET:
        if update.phone_number is None:
            phone, calling = None, False
        else:
            phone = await numbers.require_free_number(session, access, update.phone_number,
                                                      for_user_id=record.id if record is not None else None)
            calling = True
    if update.vrp is not UNSET:
        vrp = policy
        if update.vrp is not None and update.phone_number is UNSET:
            calling = True  # as the ConnecttoTeams update does: a policy is a voice setting
    return phone, vrp, calling


async def _apply_voice(
    sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection,
    user: DirectoryUser, update: UserUpdate, settle: Settle | None, directory: Callable[[], Awaitable[None]] | None,
) -> bool:
    """Applies `update`'s voice fields and customer licences, and its directory's changes (`directory`; None: it
    changes nothing there). Answers whether `settle` ran (in the transaction of the last change, before its commit).

    A voice change is recorded first, with its checks: the number free (`_wanted_voice`) and the licence quota, both
    part of the write that takes the number (a unique number per user; the quota counted under the subscription's
    lock), so a refusal changes nothing in Microsoft (a licence, a paid seat, was assigned and the groups changed,
    then the number refused). The directory's changes follow, once that is committed (should they fail, the voice
    settings recorded go back), then Teams (`reconcile`). The change is pending on the record meanwhile
    (`record_wish`): sent again after its process died (a bulk item's recovery too), a failure goes back to the
    settings before its first attempt."""
    voice = update.phone_number is not UNSET or update.vrp is not UNSET
    if not voice and directory is not None:
        await directory()  # no voice check to make first
    if not voice and update.customer_licenses is UNSET:
        return False
    policy = per_user_policy(update.vrp) if update.vrp is not UNSET else None  # "Global": no per-user grant
    async with AsyncExitStack() as block:  # the transaction, and the voice state's read once it starts
        session = await block.enter_async_context(transaction(sessions))
        audit.known_rows(session.sync_session, access.enterprise)  # the entries' owner, as the caller read it
        record = await voice_users.find(session, access.enterprise.id, user.user_principal_name, user.id)  # (renamed too)
        while True:
            read: VoiceSettings = NO_VOICE if record is None else voice_settings(record)
            try:
                phone, vrp, calling = await _wanted_voice(session, access, update, policy, record, read)
            except Conflict as exc:
                # Another transaction may have added this user's record since it was looked for, with the number (the
                # same bulk item run twice: a run cut off by a cancel still in flight when the item is retried): the
                # number is then this user's own, and the change is decided again against that record.
                if record is not None or exc.code != ownership.NUMBER_TAKEN:
                    raise
                record = await voice_users.find(session, access.enterprise.id, user.user_principal_name, user.id)
                if record is None:
                    raise
                continue
            if record is not None:
                # What a failure puts back (customer licences only: the settings stay as read)
                restore = record_wish(record, (phone, vrp, calling)) if voice else read
                voice_users.known_as(record, user.id)
                break
            # A user seen for the first time: its record is added with what it is given, one INSERT and one audit
            # entry (not an empty record, then its change). Should another transaction have added it meanwhile
            # (two jobs changing the same user at once), the change is decided again against that record.
            try:
                record, added = await voice_users.add(session, access.enterprise.id, user.user_principal_name, user.id,
                                                      phone_number=phone, voice_routing_policy=vrp, calling_enabled=calling,
                                                      pending_change=pending_change(NO_VOICE, (phone, vrp, calling)))
            except IntegrityError:
                raise Conflict(f"{update.phone_number} is already assigned to another user",
                               code=numbers.NUMBER_ASSIGNED) from None
            if added:
                restore = NO_VOICE
                break
        # Teams' view of the user is read while the wish is recorded: a read changes nothing, so it need not wait for
        # that commit (an item's first Teams request came a transaction later). Not for a change refused above, nor
        # before the directory's changes (a licence, a group's policy), which come between.
        reading = block.enter_context(voice_state_reading(connection, user.id)) if voice and directory is None else None
        if not voice:  # customer licences only; with a voice change they are written once Teams took it
            await set_customer_licences(session, record.id, update.customer_licenses)
            update.changes.append("customerLicenses")
        try:
            if record.phone_number and not read[0]:  # a newly voice-enabled user takes a licence
                await session.flush()
                await licences.check_user_quota(session, access.enterprise.id,
                                                known=(access.subscription.id, access.subscription.ms_teams_users))
            await end_transaction(session)  # the wish is recorded before Teams is called, outside the write transaction
        except IntegrityError:
            raise Conflict(f"{update.phone_number} is already assigned to another user", code=numbers.NUMBER_ASSIGNED) from None
        if not voice:
            if settle is not None:
                await settle(session)  # committed as the block ends
            return settle is not None
        if directory is not None:
            wrote = voice_settings(record)
            try:
                await directory()
            except Exception:  # Teams was not asked: the settings go back, its last sync as it was (none ran)
                put_back(record, restore, wrote)
                await end_transaction(session)
                raise
            reading = block.enter_context(voice_state_reading(connection, user.id))
        try:
            async with undone_on_failure(session, record, restore):
                result = await reconcile(connection, record, reading=reading)
                if update.vrp is not UNSET and not record.calling_enabled:
                    # reconcile leaves a disabled user's policy alone; a policy sent explicitly is still applied
                    state = await connection.voice.voice_state(user.id)
                    if not rules.same_policy_name(state.voice_routing_policy, policy):
                        await connection.voice.grant_voice_routing_policy(user.user_principal_name, policy)
                        result.changes.append(f"voice routing policy set to {policy or 'Global'}")
        except UpstreamError as exc:
            if exc.status == 400:
                code = VRP_REFUSED if "policy" in exc.message.lower() else None
                raise ValidationFailed(exc.message.split("failed: ", 1)[-1], code=code) from exc
            raise
        if update.customer_licenses is not UNSET:  # (Teams refusing the change leaves them as they were)
            await set_customer_licences(session, record.id, update.customer_licenses)
            update.changes.append("customerLicenses")
        if settle is not None:
            await settle(session)
        await end_transaction(session)
        update.changes.extend(result.changes)
        return settle is not None


async def _require_policy(connection: TenantConnection, policy: str) -> None:
    """Refuses a per-user policy (`per_user_policy`'s) the tenant lacks before the update changes anything, answered
    as Teams' refusal of its grant is (VRP_REFUSED): Teams is asked last, after the directory's changes. Whether it
    exists: the port's `has_policy` (read once a while, not once per bulk item)."""
    if not await connection.direct_routing.has_policy(policy):
        bare = policy[4:] if policy[:4].lower() == "tag:" else policy
        raise ValidationFailed(f'Policy "{bare}" is not a user policy. You can assign only a policy that has per-user '
                               "scope.", code=VRP_REFUSED)


async def apply_update(
    sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection,
    user: DirectoryUser, update: UserUpdate, *, group_cache: dict[str, str] | None = None, settle: Settle | None = None,
) -> list[str]:
    """Applies every sent field; repeating it leaves the user as one run would. Returns what changed.
    Nothing is changed in Microsoft before the voice fields are checked: a number needs Teams Phone among the user's
    licences once updated, a policy must exist (asked only when the directory changes first), then the number and
    the licence quota with the voice change's record (`_apply_voice`).
    `settle`, when given, runs once everything succeeded, in the transaction that records the last change (the
    voice user's sync) or else in one of its own, before that commits: a bulk item's outcome lands with it, one
    commit where there were two. Returning means it is committed; raising, that it is not."""
    admin = connection.directory_admin
    await _check_number_licence(admin, user, update)
    directory: Callable[[], Awaitable[None]] | None = None  # (None: the update changes nothing there)
    if await _changes_directory(admin, user, update):
        if update.vrp is not UNSET and (policy := per_user_policy(update.vrp)) is not None:
            await _require_policy(connection, policy)
        cache = group_cache if group_cache is not None else {}
        directory = partial(_apply_directory, admin, user, update, cache)
    try:
        if not await _apply_voice(sessions, access, connection, user, update, settle, directory) and settle is not None:
            async with transaction(sessions) as session:
                await settle(session)
    finally:
        if directory is not None and update.groups is not UNSET:  # (the users list's SRE filter reads them again)
            _FILTER_MEMBERS.forget_tenant(connection.tenant_id)
    return update.changes


async def delete_user(
    sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection, ms_user_id: str,
    quarantine_seconds: float,
) -> None:
    """Deletes the user from the directory, then frees it in teamsvoice: only once Microsoft deleted it (or it was
    gone already) does its record lose number and calling and its number go to quarantine, as for any user deleted
    in Entra ID (`voice_state.repository.free_deleted_user`: the sync's USER_DELETED, offboarding), and its customer
    licences go. Should Microsoft fail, nothing of teamsvoice's changed: the user keeps its number in both. Sent
    again once the user is gone from the directory (the records' step never ran), it finishes the records' step; a
    user neither the directory nor teamsvoice knows is not found."""
    user = await _directory_user_or_gone(connection.directory_admin, ms_user_id)
    if user is not None:
        await connection.directory_admin.delete_user(user.id, missing_ok=True)
    ms_id = user.id if user is not None else ms_user_id.lower()  # (Entra's object ids are lower case)
    async with transaction(sessions) as session:
        record = (await records_for(session, access, [ms_id])).get(ms_id)
        if user is None and (record is None or await repository.is_resource_account_record(session, record.id)):
            raise NotFound(f"MS Teams user {ms_user_id} not found", code=USER_NOT_FOUND)
        if record is not None:  # (none: a user teamsvoice never recorded, deleted in Microsoft, nothing to free)
            await repository.drop_customer_licences(session, record.id)
            await voice_records.free_deleted_user(session, access.enterprise, record.user_principal_name,
                                                  quarantine_seconds)


async def _directory_user_or_gone(admin: DirectoryAdministration, ms_user_id: str) -> DirectoryUser | None:
    """The user as `directory_user` finds it, or None when the directory has no such object (deleted); one it has
    that this route does not take (a resource account) is not found."""
    try:
        return await directory_user(admin, ms_user_id)
    except NotFound:
        try:
            await admin.user(ms_user_id)
        except NotFound:
            return None
        raise


@dataclass(frozen=True)
class NewUser:
    """A user to create as `username@domain` (`username` the part before @ in the characters Entra ID allows, also
    its mailNickname; `domain` one of the tenant's verified domains), with its usage location and customer licences."""

    display_name: str
    domain: str
    username: str
    location: str
    customer_licences: list[str]


async def create_user(
    sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection,
    new: NewUser, password: str, quarantine_seconds: float,
) -> str:
    """Makes the user in the directory and records it (`_record_new_user`). Sent again after an answer that never
    came, it converges: Graph's client sends its POST again after a 5xx or a lost connection, and should the first
    have made the user, Microsoft refuses the second (the name is taken); the user of the name is then this
    request's when it is what was asked (`_made_before`)."""
    check_name("displayName", new.display_name)
    problem = new_user_name_problem(new.username)  # Entra's rule, asked before Microsoft is
    if problem:
        raise ValidationFailed(f"username: {problem}")
    rules.require_verified_domain("domain", new.domain, await connection.directory_admin.domains())
    upn = f"{new.username}@{new.domain}"
    check_new_user_principal_name("username", upn)
    made_before: Conflict | UpstreamError | None = None
    try:
        created = await connection.directory_admin.create_user(
            user_principal_name=upn, display_name=new.display_name, mail_nickname=new.username, password=password,
            usage_location=new.location)
    except (Conflict, UpstreamError) as exc:
        created, made_before = await _made_before(connection.directory_admin, upn, new, exc), exc
    await _record_new_user(sessions, access, created, new.customer_licences, quarantine_seconds, made_before)
    return created.id


async def _made_before(admin: DirectoryAdministration, upn: str, new: NewUser, failure: Conflict | UpstreamError,
                       ) -> DirectoryUser:
    """The user of `upn`, made by an earlier try of this create, when the create was refused as the name is taken or
    failed without saying whether Microsoft made the user (a 5xx, a timeout, a lost connection: retryable); else
    `failure` is raised. It must be what was asked, as Graph answers it: its display name and usage location, enabled,
    no licence (a user made moments ago has none), no resource account; and teamsvoice must have no record of it
    (`_record_new_user`). Graph gives nothing else that tells this request's user from another made under the same
    name (its creation time is no proof: an earlier try of the caller's may be minutes old), so a user like that in
    every respect, made by someone else, is taken as made: it is the user the caller asked for, and nothing of it is
    changed (its password neither: never returned) but the customer licences the request records for it."""
    if isinstance(failure, UpstreamError) and not failure.retryable:
        raise failure  # refused, not lost: nothing was made
    try:
        user = await admin.user(upn)
    except (NotFound, UpstreamError):
        raise failure from None
    asked = user.display_name == new.display_name and (user.usage_location or "").upper() == new.location.upper()
    if not asked or user.assigned_sku_ids or user.account_enabled is False \
            or user.department == RESOURCE_ACCOUNT_DEPARTMENT:
        raise failure
    return user


async def _record_new_user(
    sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, user: DirectoryUser, customer_licences:
    list[str], quarantine_seconds: float, made_before: Conflict | UpstreamError | None,
) -> None:
    """Records a user just made: its customer licences, when sent. A record of its name that is another Microsoft
    user's (or none's: a user deleted at offboarding or through teamsvoice) is a deleted user's, not the new one's:
    that user is freed as any user deleted in Entra ID (`free_deleted_user`: its number to quarantine), and the
    record starts afresh for the new user (no number, calling off, no per-user policy, none of the customer
    licences it had; the next sync pushed them to the new user). `made_before`: the user was made by an earlier
    try (`_made_before`): one teamsvoice has a record of is no such user, and that refusal is raised."""
    async with transaction(sessions) as session:
        record = await voice_users.find(session, access.enterprise.id, user.user_principal_name, user.id)
        if record is not None and record.microsoft_user_id == user.id:
            if made_before is not None:
                raise made_before
        elif record is not None:
            await voice_records.free_deleted_user(session, access.enterprise, record.user_principal_name,
                                                  quarantine_seconds)
            record.voice_routing_policy = None
            await repository.drop_customer_licences(session, record.id)
            voice_users.known_as(record, user.id)
        if customer_licences:
            if record is None:
                record, _ = await voice_users.add(session, access.enterprise.id, user.user_principal_name, user.id)
            await set_customer_licences(session, record.id, customer_licences)
