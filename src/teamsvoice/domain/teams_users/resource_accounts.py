"""MS Teams resource accounts (call queues, auto attendants) of a subscription.

Create/modify/delete record what is wanted and answer with the intermediate status (`creating`,
`updating`, `deleting`); a durable job (`workflows.resource_account_workflow`) then brings Microsoft there
with the *-CsOnlineApplicationInstance cmdlets (`TenantConnection.resource_accounts`), Graph (usage location, the PHONESYSTEM_VIRTUALUSER
licence a number needs) and `reconcile` for the number and VRP (the resource account's number is a
`TeamsVoiceUser` row like a user's). Every step looks before it acts, so a re-run after a crash is harmless.
"""

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.db import end_transaction, transaction
from teamsvoice.core.errors import Conflict, NotFound, ValidationFailed
from teamsvoice.core.limits import check_new_user_principal_name
from teamsvoice.domain.fusion import numbers
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.provisioning.service import reconcile
from teamsvoice.domain.teams_users import repository, service
from teamsvoice.domain.teams_users.models import FusionResourceAccount
from teamsvoice.domain.tenant_voice import rules
from teamsvoice.microsoft.directory_ports import DirectoryUser
from teamsvoice.microsoft.ports import TenantConnection

APPLICATION_IDS = {"auto-attendant": "ce933385-9390-45d1-9512-c8d228074e07",
                   "call-queue": "11cd3e2e-fccb-42ad-ad00-878b93575e07"}
ACCOUNT_TYPES = {v: k for k, v in APPLICATION_IDS.items()}
VIRTUAL_USER_SKU = "PHONESYSTEM_VIRTUALUSER"
RESOURCE_ACCOUNT_NOT_FOUND = "resource_account_not_found"


@dataclass(frozen=True)
class AccountFilters:
    """Which accounts a listing keeps: usage locations (upper-case ISO codes; empty: any), with or without a
    number (None: either), of one kind (call-queue or auto-attendant; None: either). Each API family parses its
    own query into one (Fusion: `api/fusion/resource_accounts.parse_filters`)."""

    countries: frozenset[str] = frozenset()
    have_number: bool | None = None
    kind: str | None = None


# A create's or modify's fields, by the domain's names; each API family maps its own onto them and passes its names
# as `labels`, so an error names the field as the caller sent it.
CREATE_FIELDS = ("account_type", "user_principal_name", "display_name", "location", "phone_number", "customer_licences")
REQUIRED_FIELDS = ("account_type", "user_principal_name", "display_name", "location")
MODIFY_FIELDS = ("account_type", "display_name", "location", "phone_number", "voice_routing_policy", "customer_licences")


def _label(labels: dict[str, str], name: str) -> str:
    return labels.get(name, name)


def _account_type(value: Any, label: str) -> str:
    if not isinstance(value, str) or value not in APPLICATION_IDS:
        raise ValidationFailed(f"{label}: must be call-queue or auto-attendant")
    return str(value)


def _number(value: Any, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{label}: must be a phone number or null")
    if ";ext=" in value.lower():
        raise ValidationFailed(f"{label}: a resource account cannot take a number with an extension (;ext=)")
    return numbers.parse_full_number(value, label)


async def _free(session: AsyncSession, access: SubscriptionAccess, number: str | None, record_id: int | None) -> None:
    if number is None:
        return
    await numbers.require_free_number(session, access, number, for_user_id=record_id)


async def create(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection,
                 fields: dict[str, Any], labels: dict[str, str]) -> FusionResourceAccount:
    """A new resource account from `fields` (CREATE_FIELDS; REQUIRED_FIELDS present, checked by the caller with
    the body's shape), each value checked in that order; its domain must be verified in the tenant (asked of
    Microsoft before anything is written, as a user's creation does) and its number free."""
    account_type = _account_type(fields["account_type"], _label(labels, "account_type"))
    upn_label = _label(labels, "user_principal_name")
    upn = service.optional_string(upn_label, fields["user_principal_name"], nullable=False) or ""
    check_new_user_principal_name(upn_label, upn)  # Entra's rule, asked before Microsoft is
    display_name = service.display_name(_label(labels, "display_name"), fields["display_name"])
    location = service.parse_location(_label(labels, "location"), fields["location"])
    number = _number(fields.get("phone_number"), _label(labels, "phone_number"))
    licences = service.string_list(_label(labels, "customer_licences"), fields.get("customer_licences", []),
                                   nullable=False) or []
    await end_transaction(session)  # no transaction held while Microsoft answers
    rules.require_verified_domain(upn_label, upn.rsplit("@", 1)[1], await connection.directory_admin.domains())
    await access.lock_linked(session)
    await _free(session, access, number, None)
    clash = await repository.resource_account_by_upn(session, access.subscription.id, upn)
    if clash is not None:
        raise Conflict(f"{upn_label}: a resource account {upn} already exists")
    account = FusionResourceAccount(
        subscription_id=access.subscription.id, user_principal_name=upn.lower(), display_name=display_name,
        account_type=account_type, location=location, customer_licenses=licences, status="creating",
        desired={"phoneNumber": number, "vrp": None})  # (stored keys: renaming them needs a migration of the rows)
    session.add(account)
    await session.flush()
    return account


async def _account(session: AsyncSession, access: SubscriptionAccess, resource_account_id: str) -> FusionResourceAccount | None:
    return await repository.resource_account(session, access.subscription.id, resource_account_id)


async def _directory_user(connection: TenantConnection, ms_id: str) -> DirectoryUser | None:
    """The account's directory user; None when it no longer exists in Microsoft (deleted since its application
    instance was listed: a delete job finishing, or an admin in Teams), so the account is not Microsoft's."""
    try:  # (read with the others waiting, up to 20 in one $batch: a listing's accounts are not read one by one)
        return await connection.directory_admin.user_batched(ms_id)
    except NotFound:
        return None


async def _adopted(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection | None,
                   resource_account_id: str) -> FusionResourceAccount | None:
    """The row of an account teamsvoice has none of but Microsoft holds under that object id (made in Teams, or
    before the tenant was onboarded: the listing shows it), added as an active account with what Microsoft holds
    (its number and per-user policy are what the job keeps; no usage location: location ""); None when Microsoft
    has no such call queue or auto attendant either. Microsoft is asked outside any transaction, then the row is
    looked for again under the enterprise's lock: two requests adopting the account at once make one row (the
    second finds the first's; the column has no unique constraint, the lock is the rule, as for `create`).
    The application instance is read by its id (Get-CsOnlineApplicationInstance -Identity, not every one of the
    tenant): Teams answering it has none (the adapter's NotFound) is None; a refusal in other words is
    checked against the tenant's list, as before, so it is None only when the list lacks it too."""
    from teamsvoice.core.errors import UpstreamError

    try:
        ms_id = str(uuid.UUID(resource_account_id))  # as Microsoft writes object ids
    except ValueError:
        return None  # not a Microsoft object id: Microsoft is not asked
    if connection is None:
        return None
    await end_transaction(session)  # no transaction held while Microsoft answers
    teams = connection.resource_accounts
    try:
        instance = await teams.get(ms_id)
    except NotFound:
        return None
    except UpstreamError as exc:
        if exc.retryable:
            raise
        found = [i for i in await teams.all() if i.object_id.lower() == ms_id]
        if not found:
            return None
        instance = found[0]
    if instance.object_id.lower() != ms_id or instance.application_id not in ACCOUNT_TYPES:
        return None
    user = await _directory_user(connection, instance.object_id)
    if user is None:
        return None
    try:
        voice = await connection.voice.voice_state(instance.object_id)
    except NotFound:  # deleted since
        return None
    await access.lock_linked(session)
    account = await _account(session, access, instance.object_id)
    if account is not None:  # adopted meanwhile
        return account
    upn = instance.user_principal_name.lower()
    same_upn = await repository.resource_account_by_upn(session, access.subscription.id, upn)
    if same_upn is not None:
        account = await session.get(FusionResourceAccount, same_upn)
        assert account is not None
        if account.microsoft_user_id is not None:
            raise Conflict(f"Resource account {upn} is recorded for Microsoft object {account.microsoft_user_id}, "
                           f"which no longer exists: delete resource account {account.id} first")
        account.microsoft_user_id = instance.object_id  # made by its creation's job, which has not recorded it yet
        return account
    record = await voice_users.find(session, access.enterprise.id, upn)
    licences = (await repository.customer_licences_of(session, [record.id])).get(record.id, []) if record else []
    account = FusionResourceAccount(
        subscription_id=access.subscription.id, user_principal_name=upn, microsoft_user_id=instance.object_id,
        voice_user_id=record.id if record is not None else None, display_name=instance.display_name,
        account_type=ACCOUNT_TYPES[instance.application_id], location=user.usage_location or "",
        customer_licenses=licences, status="active",
        desired={"phoneNumber": instance.phone_number, "vrp": voice.voice_routing_policy})
    session.add(account)
    await session.flush()
    return account


async def changeable(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection | None,
                     resource_account_id: str) -> FusionResourceAccount:
    """The account a modify applies to (not one being deleted; one only Microsoft has is adopted first); looked up
    before its body is read."""
    await access.lock_linked(session)
    account = (await _account(session, access, resource_account_id)
               or await _adopted(session, access, connection, resource_account_id))
    if account is None or account.status == "deleting":
        raise NotFound(f"Resource account {resource_account_id} not found", code=RESOURCE_ACCOUNT_NOT_FOUND)
    return account


async def modify(session: AsyncSession, access: SubscriptionAccess, account: FusionResourceAccount,
                 fields: dict[str, Any], labels: dict[str, str]) -> FusionResourceAccount:
    """Changes what `fields` (MODIFY_FIELDS, any of them) says, checked in that order; the number, new or kept (the
    job assigns it again), must be free for the account, and the account must have a location."""
    desired = dict(account.desired)
    if "account_type" in fields:
        account.account_type = _account_type(fields["account_type"], _label(labels, "account_type"))
    if "display_name" in fields:
        account.display_name = service.display_name(_label(labels, "display_name"), fields["display_name"])
    if "location" in fields:
        account.location = service.parse_location(_label(labels, "location"), fields["location"])
    if not account.location:  # adopted from Microsoft without a usage location (`_adopted`)
        raise ValidationFailed(f"{_label(labels, 'location')}: is required (the account has no usage location in "
                               "Microsoft 365)")
    if "phone_number" in fields:
        desired["phoneNumber"] = _number(fields["phone_number"], _label(labels, "phone_number"))
    await _free(session, access, desired.get("phoneNumber"), account.voice_user_id)
    if "voice_routing_policy" in fields:
        label = _label(labels, "voice_routing_policy")
        desired["vrp"] = rules.check_policy_name(label, service.optional_string(label, fields["voice_routing_policy"]))
    if "customer_licences" in fields:
        account.customer_licenses = service.string_list(_label(labels, "customer_licences"), fields["customer_licences"],
                                                        nullable=False) or []
    account.desired, account.status, account.error = desired, "updating", None
    account.generation += 1
    return account


async def delete(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection | None,
                 resource_account_id: str) -> FusionResourceAccount | None:
    """Marks the account for deletion, one only Microsoft has adopted first (`connection`: None when no tenant is
    linked); None when there is nothing to delete: 204 either way. An account whose creation is under way (its
    job may be creating it in Teams this moment) is refused until the creation has ended: deleted then, the row
    went and the job went on to create the account in Teams, where it stayed with no row."""
    await access.lock(session)
    account = (await _account(session, access, resource_account_id)
               or await _adopted(session, access, connection, resource_account_id))
    if account is None or account.status == "deleting":
        return None
    if account.status == "creating" or (account.status == "updating" and account.microsoft_user_id is None):
        raise Conflict(f"Resource account {account.id} is being created in Microsoft Teams: delete it once its "
                       "creation has ended (retry in a moment)")
    account.status = "deleting"
    account.generation += 1
    return account


async def record_failure(sessions: async_sessionmaker[AsyncSession], account_id: int, message: str,
                         generation: int | None = None) -> None:
    """The account's run failed: `error` with why, unless its generation moved on (a change or a delete accepted
    meanwhile, whose own run records its outcome: a failure recorded over a pending delete turned `deleting` into
    `error`, and the delete's run then brought the account back up)."""
    async with transaction(sessions) as session:
        account = await session.get(FusionResourceAccount, account_id)
        if account is not None and (generation is None or account.generation == generation):
            account.status, account.error = "error", message


async def record_waiting(sessions: async_sessionmaker[AsyncSession], account_id: int, message: str) -> None:
    """Microsoft failed transiently: the account keeps its intermediate status and shows why it waits."""
    async with transaction(sessions) as session:
        account = await session.get(FusionResourceAccount, account_id)
        if account is not None:
            account.error = message


async def _voice_record(session: AsyncSession, access: SubscriptionAccess, account: FusionResourceAccount) -> TeamsVoiceUser:
    record = await session.get(TeamsVoiceUser, account.voice_user_id) if account.voice_user_id else None
    if record is None:
        record = await voice_users.find_or_add(session, access.enterprise.id, account.user_principal_name,
                                               account.microsoft_user_id)
    account.voice_user_id = record.id
    return record


async def _remove(sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection, account_id: int) -> dict[str, Any]:
    async with transaction(sessions) as session:
        account = await session.get(FusionResourceAccount, account_id)
        if account is None:  # removed by another run of its deletion
            return {"status": "deleted"}
        record = await session.get(TeamsVoiceUser, account.voice_user_id) if account.voice_user_id else None
        if record is not None and record.microsoft_user_id:
            record.phone_number, record.calling_enabled = None, False
            await end_transaction(session)
            try:
                await reconcile(connection, record)  # releases the number in Teams
            except NotFound:
                pass
        if account.microsoft_user_id:
            await connection.directory_admin.delete_user(account.microsoft_user_id, missing_ok=True)  # frees the licence
        if record is not None:
            licences_row = await repository.customer_licences_row(session, record.id)
            if licences_row is not None:
                await session.delete(licences_row)
            account.voice_user_id = None
            await session.flush()
            await session.delete(record)
        await session.delete(account)
    return {"status": "deleted"}


async def find_or_create_in_teams(connection: TenantConnection, upn: str, app_id: str, display_name: str) -> str:
    """The account's object id: the user a run that crashed before recording it created, else a new one."""
    try:
        return (await connection.directory_admin.user(upn)).id
    except NotFound:
        return await connection.resource_accounts.create(upn, app_id, display_name)


async def converge_in_teams(connection: TenantConnection, ms_id: str, app_id: str, display_name: str,
                            location: str) -> None:
    """Brings the account's name, kind, usage location and PHONESYSTEM_VIRTUALUSER licence (which its number
    needs) to what is wanted, changing only what differs."""
    admin = connection.directory_admin
    current = await connection.resource_accounts.get(ms_id)
    if current.display_name != display_name or current.application_id != app_id:
        await connection.resource_accounts.update(
            ms_id, display_name=display_name if current.display_name != display_name else None,
            application_id=app_id if current.application_id != app_id else None)
    user = await admin.user(ms_id)
    if user.usage_location != location:
        await admin.update_user(ms_id, usage_location=location)
    sku = await admin.sku(VIRTUAL_USER_SKU)
    if sku.sku_id.lower() not in {s.lower() for s in user.assigned_sku_ids}:
        await admin.assign_licences(ms_id, add=[sku.sku_id])


async def _current(session: AsyncSession, access: SubscriptionAccess, account_id: int) -> FusionResourceAccount | None:
    """The account's row read afresh under the enterprise's lock (the one a delete or a modify takes), so a change
    of it committed meanwhile is seen, and none is committed until this transaction ends."""
    await access.lock(session)
    return await session.get(FusionResourceAccount, account_id)


async def converge(sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection, account_id: int) -> dict[str, Any]:
    """Brings Microsoft to the account's row, or deletes it (`_remove`). After each Microsoft step the row is read
    again (`_current`): an account deleted meanwhile keeps nothing this run made (an account it has just created in
    Teams is deleted again), and one changed or deleted meanwhile (its generation moved on) is ended by that
    change's run, not marked active by this one."""
    async with transaction(sessions) as session:
        account = await session.get(FusionResourceAccount, account_id)
        if account is None:
            return {"status": "gone"}
        if account.status == "deleting":
            return await _remove(sessions, access, connection, account_id)
        upn, ms_id, generation = account.user_principal_name, account.microsoft_user_id, account.generation
        app_id, display_name, location = APPLICATION_IDS[account.account_type], account.display_name, account.location
        desired = dict(account.desired)
    if ms_id is None:
        ms_id = await find_or_create_in_teams(connection, upn, app_id, display_name)
        async with transaction(sessions) as session:
            account = await _current(session, access, account_id)
            if account is not None:  # (being deleted too: its deletion's run then finds what to delete)
                account.microsoft_user_id = ms_id
            deleted = account is None or account.status == "deleting"
        if deleted:
            await connection.directory_admin.delete_user(ms_id, missing_ok=True)
            return {"status": "deleted"}
    await converge_in_teams(connection, ms_id, app_id, display_name, location)
    async with transaction(sessions) as session:
        account = await _current(session, access, account_id)
        if account is None or account.generation != generation:
            return {"status": "superseded"}
        record = await _voice_record(session, access, account)
        record.microsoft_user_id = ms_id
        if desired.get("phoneNumber"):
            await _free(session, access, desired["phoneNumber"], record.id)
        record.phone_number = desired.get("phoneNumber")
        record.voice_routing_policy = desired.get("vrp")
        record.calling_enabled = bool(record.phone_number or record.voice_routing_policy)
        await service.set_customer_licences(session, record.id, account.customer_licenses)
        await end_transaction(session)
        await reconcile(connection, record)
    async with transaction(sessions) as session:
        account = await _current(session, access, account_id)
        if account is None or account.generation != generation:
            return {"status": "superseded"}
        account.status, account.error = "active", None
    return {"status": "active", "id": ms_id}


@dataclass(frozen=True)
class AccountState:
    """teamsvoice's row of a resource account: what it asked for and where its job is."""

    id: int
    customer_licences: list[str]
    status: str  # creating, updating, deleting, active, error
    error: str | None


@dataclass(frozen=True)
class ResourceAccountView:
    """A resource account as Microsoft holds it (`in_microsoft`), with teamsvoice's row and record of it
    (`account`, `record`: None when teamsvoice has none). One wanted but not (yet) in Microsoft carries its
    row's values and no licences."""

    microsoft_id: str | None
    user_principal_name: str
    display_name: str
    location: str | None
    account_type: str
    in_microsoft: bool
    licences: list[service.Licence]
    phone_number: str | None
    account: AccountState | None
    record: service.VoiceRecordView | None


def _state(row: FusionResourceAccount) -> AccountState:
    return AccountState(row.id, list(row.customer_licenses), row.status, row.error)


async def list_accounts(session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection,
                        filters: AccountFilters) -> list[ResourceAccountView]:
    # Our rows first, Microsoft second: a row the job has marked active is then always in the listing that
    # follows (read the other way round, a job finishing in between showed "active" without Microsoft's data).
    ours = await repository.resource_accounts_of(session, access.subscription.id)
    rows = {r.microsoft_user_id: r for r in ours if r.microsoft_user_id}
    unmatched = [r for r in ours if not r.microsoft_user_id]  # not created in Microsoft yet: each listed as it is
    instances = await connection.resource_accounts.all()
    skus = await service.sku_map(connection.directory_admin)
    records = await service.records_for(session, access, [i.object_id for i in instances])
    views = await service.record_views(session, access, list(records.values()))
    # Each account's user read at once; one deleted since the listing above is not Microsoft's any more, so our row
    # (if any) is listed below in its intermediate state.
    users = await asyncio.gather(*(_directory_user(connection, instance.object_id) for instance in instances))
    result: list[ResourceAccountView] = []
    for instance, user in zip(instances, users):
        if user is None:
            continue
        ms_id = instance.object_id
        phone = instance.phone_number
        row = rows.pop(ms_id, None)
        record = records.get(ms_id)
        result.append(ResourceAccountView(
            ms_id, instance.user_principal_name, instance.display_name, user.usage_location, ACCOUNT_TYPES.get(instance.application_id, "unknown"), True,
            service.licences_of(user, skus), phone or None, _state(row) if row is not None else None,
            views[record.id] if row is not None and record is not None else None))
    for row in [*rows.values(), *unmatched]:  # wanted, not (yet) in Microsoft: the intermediate state
        result.append(ResourceAccountView(row.microsoft_user_id, row.user_principal_name, row.display_name, row.location,
                                          row.account_type, False, [], None, _state(row), None))
    return [v for v in result if _matches(v, filters)]


def _matches(view: ResourceAccountView, filters: AccountFilters) -> bool:
    if filters.countries and (view.location or "").upper() not in filters.countries:
        return False
    if filters.have_number is not None and bool(view.phone_number) != filters.have_number:
        return False
    return not (filters.kind and view.account_type != filters.kind)
