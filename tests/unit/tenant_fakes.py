"""In-memory tenants behind the ports the domain uses beyond voice state (tests/unit/voice_fakes.py has those):
the directory (`DirectoryAdministration` and `Directory`), resource accounts, emergency locations, Teams
administration, and the connector that opens connections before a tenant is linked. Each keeps Microsoft's
rules the services rely on: one user per UPN, a licence needs a usage location and a free seat, a group is
known by id only, a resource account is a user of the directory, an address in use cannot be removed."""

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from teamsvoice.core.errors import Conflict, NotFound, UpstreamError, ValidationFailed
from teamsvoice.microsoft.directory_ports import (
    RESOURCE_ACCOUNT_DEPARTMENT, DirectoryGroup, DirectoryObject, DirectoryUser, DirectoryUserPage, LicenceDetail,
    SubscribedSku, TenantDomain, UserUpdateResult,
)
from teamsvoice.microsoft.ports import ApplicationInstance, CivicAddress, EmergencyAddress, TenantConnection

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PROPERTIES = {"display_name", "usage_location", "account_enabled", "given_name", "surname", "job_title",
              "department", "mail_nickname"}


def refused(message: str) -> UpstreamError:
    return UpstreamError(message, retryable=False, status=400)


@dataclass
class FakeDirectory:
    people: dict[str, DirectoryUser] = field(default_factory=dict)  # the tenant's users, by id
    skus: list[SubscribedSku] = field(default_factory=list)
    groups_by_id: dict[str, DirectoryGroup] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)  # group id -> member ids
    global_admins: set[str] = field(default_factory=set)
    tenant_domains: list[TenantDomain] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    fail_next: Exception | None = None  # raised by the next call of any kind
    served_page: int | None = None  # users per page Microsoft serves whatever was asked ($top not honoured)

    # --- test helpers -----------------------------------------------------------------------------------
    def add_user(self, upn: str, *, location: str | None = "BE", skus: Sequence[str] = (), enabled: bool = True,
                 department: str | None = None, display_name: str | None = None) -> DirectoryUser:
        user = DirectoryUser(f"id-{upn}", upn, display_name or upn.split("@")[0].title(), usage_location=location,
                             account_enabled=enabled, assigned_sku_ids=tuple(skus), department=department)
        self.people[user.id] = user
        return user

    def add_group(self, name: str, *members: DirectoryUser) -> DirectoryGroup:
        group = DirectoryGroup(f"00000000-0000-0000-0000-{len(self.groups_by_id) + 1:012d}", name)
        self.groups_by_id[group.id] = group
        self.members[group.id] = {m.id for m in members}
        return group

    def seats_used(self, sku_id: str) -> int:
        return sum(sku_id in u.assigned_sku_ids for u in self.people.values())

    def _check(self) -> None:
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure

    def _find(self, id_or_upn: str) -> DirectoryUser:
        self._check()
        for user in self.people.values():
            if id_or_upn in (user.id, user.user_principal_name):
                return user
        raise NotFound(f"Microsoft 365 user '{id_or_upn}' not found")

    def _group(self, group_id: str) -> DirectoryGroup:
        if group_id not in self.groups_by_id:
            raise NotFound(f"Microsoft 365 group '{group_id}' not found")
        return self.groups_by_id[group_id]

    # --- Directory (the per-request reads) ----------------------------------------------------------------
    async def organization(self) -> dict[str, Any]:
        self._check()
        return {"id": "tenant", "displayName": "Contoso", "verifiedDomains": [{"name": d.name} for d in self.tenant_domains]}

    async def is_global_admin(self, user_id: str) -> bool:
        return user_id in self.global_admins

    # --- DirectoryAdministration ----------------------------------------------------------------------------
    def users(self, *, filter: str | None = None, search: str | None = None, select: Sequence[str] | None = None,
              page_size: int | None = None) -> AsyncIterator[DirectoryUser]:
        async def listing() -> AsyncIterator[DirectoryUser]:
            for user in list(self.people.values()):
                yield user
        return listing()

    async def user_page(self, link: str | None = None, *, page_size: int, starts_with: str | None = None,
                        group: str | None = None) -> DirectoryUserPage:
        self._check()
        page_size = self.served_page or page_size
        start = int(link.split(":")[1]) if link else 0
        link = link or f"page:0:{page_size}"
        if group is not None:
            ids = self.members[self._group(group).id]
            listed = [u for u in self.people.values() if u.id in ids]
        else:
            prefix = (starts_with or "").lower()
            listed = [u for u in self.people.values() if (u.display_name or "").lower().startswith(prefix)]
        page = listed[start:start + page_size]
        following = f"page:{start + page_size}:{page_size}" if start + page_size < len(listed) else None
        return DirectoryUserPage(link, page, following)

    async def user(self, id_or_upn: str, *, select: Sequence[str] | None = None) -> DirectoryUser:
        return self._find(id_or_upn)

    async def user_batched(self, id_or_upn: str) -> DirectoryUser:
        return self._find(id_or_upn)

    async def create_user(self, *, user_principal_name: str, display_name: str, mail_nickname: str, password: str,
                          account_enabled: bool = True, force_change_password: bool = True,
                          **properties: Any) -> DirectoryUser:
        self._check()
        if any(u.user_principal_name == user_principal_name for u in self.people.values()):
            raise Conflict(f"user {user_principal_name}: Another object with the same value for property "
                           "userPrincipalName already exists.")
        if user_principal_name.split("@")[1] not in {d.name for d in self.tenant_domains if d.is_verified}:
            raise ValidationFailed(f"user {user_principal_name}: The domain portion of the userPrincipalName "
                                   "property is invalid.")
        self.writes.append(f"create_user {user_principal_name}")
        return self.add_user(user_principal_name, location=properties.get("usage_location"), display_name=display_name)

    async def update_user(self, id_or_upn: str, **changes: Any) -> None:
        user = self._find(id_or_upn)
        unknown = set(changes) - PROPERTIES
        if unknown:
            raise ValidationFailed(f"{sorted(unknown)[0]}: not a user property that can be set")
        values = {k: v for k, v in changes.items() if v is not None}
        if not values:
            raise ValidationFailed("nothing to update")
        self.writes.append(f"update_user {user.user_principal_name} {sorted(values.items())}")
        renamed = {"usage_location": "usage_location", "display_name": "display_name",
                   "account_enabled": "account_enabled", "department": "department"}
        self.people[user.id] = replace(user, **{renamed[k]: v for k, v in values.items() if k in renamed})

    async def update_users(self, changes: Mapping[str, Mapping[str, Any]]) -> list[UserUpdateResult]:
        results = []
        for user, values in changes.items():
            try:
                await self.update_user(user, **values)
                results.append(UserUpdateResult(user))
            except (NotFound, ValidationFailed) as exc:
                results.append(UserUpdateResult(user, exc))
        return results

    async def delete_user(self, id_or_upn: str, *, missing_ok: bool = False) -> bool:
        try:
            user = self._find(id_or_upn)
        except NotFound:
            if missing_ok:
                return False
            raise
        self.writes.append(f"delete_user {user.user_principal_name}")
        del self.people[user.id]
        for members in self.members.values():
            members.discard(user.id)
        return True

    async def subscribed_skus(self, *, refresh: bool = True) -> list[SubscribedSku]:
        self._check()
        return [replace(s, consumed=self.seats_used(s.sku_id)) for s in self.skus]

    async def sku(self, sku: str, *, fresh: bool = True) -> SubscribedSku:
        for candidate in await self.subscribed_skus():
            if sku.lower() in (candidate.sku_id.lower(), candidate.sku_part_number.lower()):
                return candidate
        raise NotFound(f"The tenant has no subscription for licence {sku}")

    async def licences(self, id_or_upn: str) -> list[LicenceDetail]:
        user = self._find(id_or_upn)
        return [LicenceDetail(s.sku_id, s.sku_part_number, s.service_plans) for s in self.skus
                if s.sku_id in user.assigned_sku_ids]

    async def assign_licences_batched(self, user_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        await self.assign_licences(user_id, add=add, remove=remove)

    async def assign_licences(self, id_or_upn: str, *, add: Sequence[str] = (),
                              remove: Sequence[str] = ()) -> DirectoryUser:
        user = self._find(id_or_upn)
        adding = [await self.sku(s) for s in add]
        removing = [await self.sku(s) for s in remove]
        if not adding and not removing:
            raise ValidationFailed("no licence to add or remove")
        if adding and not user.usage_location:
            raise ValidationFailed(f"user {id_or_upn}: licence {adding[0].sku_part_number} cannot be assigned: the "
                                   "user has no usage location")
        for sku in adding:
            if sku.sku_id not in user.assigned_sku_ids and sku.available == 0:
                raise Conflict(f"user {id_or_upn}: no free seat of licence {sku.sku_part_number}")
        held = [s for s in user.assigned_sku_ids if s not in {r.sku_id for r in removing}]
        held += [s.sku_id for s in adding if s.sku_id not in held]
        self.writes.append(f"assign_licences {user.user_principal_name} +{[s.sku_part_number for s in adding]} "
                           f"-{[s.sku_part_number for s in removing]}")
        self.people[user.id] = replace(user, assigned_sku_ids=tuple(held))
        return self.people[user.id]

    async def remove_licences(self, id_or_upn: str, skus: Sequence[str]) -> DirectoryUser:
        return await self.assign_licences(id_or_upn, remove=skus)

    def groups(self, *, teams_only: bool = False, filter: str | None = None) -> AsyncIterator[DirectoryGroup]:
        async def listing() -> AsyncIterator[DirectoryGroup]:
            for group in list(self.groups_by_id.values()):
                if filter and filter.startswith("displayName eq "):
                    name = filter.removeprefix("displayName eq ").strip("'").replace("''", "'")
                    if group.display_name != name:
                        continue
                yield group
        return listing()

    async def group(self, group_id: str) -> DirectoryGroup:
        self._check()
        return self._group(group_id)

    def group_members(self, group_id: str) -> AsyncIterator[DirectoryObject]:
        async def listing() -> AsyncIterator[DirectoryObject]:
            for member in sorted(self.members[self._group(group_id).id]):
                yield DirectoryObject(member, "user")
        return listing()

    async def add_group_member(self, group_id: str, member_id: str) -> bool:
        members = self.members[self._group(group_id).id]
        if member_id in members:
            return False
        self.writes.append(f"add_group_member {self.groups_by_id[group_id].display_name} {member_id}")
        members.add(member_id)
        return True

    async def remove_group_member(self, group_id: str, member_id: str) -> bool:
        members = self.members[self._group(group_id).id]
        if member_id not in members:
            return False
        self.writes.append(f"remove_group_member {self.groups_by_id[group_id].display_name} {member_id}")
        members.discard(member_id)
        return True

    async def member_of(self, id_or_upn: str) -> list[DirectoryObject]:
        user = self._find(id_or_upn)
        groups = [DirectoryObject(g, "group", self.groups_by_id[g].display_name)
                  for g, members in self.members.items() if user.id in members]
        roles = [DirectoryObject("role-ga", "directoryRole", "Global Administrator", GLOBAL_ADMIN)
                 ] if user.id in self.global_admins else []
        return groups + roles

    async def role_holders(self) -> dict[str, list[DirectoryObject]]:
        return {user_id: [DirectoryObject("role-ga", "directoryRole", "Global Administrator", GLOBAL_ADMIN)]
                for user_id in sorted(self.global_admins)}

    async def domains(self) -> list[TenantDomain]:
        self._check()
        return list(self.tenant_domains)


class FakeDirectoryReads:
    """The `Directory` port (raw user reads, as microsoft/teams_voice.GraphDirectory answers them) over a
    FakeDirectory."""

    def __init__(self, directory: FakeDirectory) -> None:
        self._directory = directory

    async def organization(self) -> dict[str, Any]:
        return await self._directory.organization()

    async def user(self, id_or_upn: str) -> dict[str, Any]:
        user = self._directory._find(id_or_upn)
        return {"id": user.id, "userPrincipalName": user.user_principal_name, "displayName": user.display_name,
                "accountEnabled": user.account_enabled}

    async def is_global_admin(self, user_id: str) -> bool:
        return await self._directory.is_global_admin(user_id)


@dataclass
class FakeResourceAccounts:
    """Teams' application instances; creating one adds its user to the directory (as Teams does)."""

    directory: FakeDirectory
    instances: dict[str, ApplicationInstance] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)

    async def create(self, user_principal_name: str, application_id: str, display_name: str) -> str:
        if any(u.user_principal_name == user_principal_name for u in self.directory.people.values()):
            raise refused(f"New-CsOnlineApplicationInstance failed: {user_principal_name} already exists")
        user = self.directory.add_user(user_principal_name, location=None, department=RESOURCE_ACCOUNT_DEPARTMENT,
                                       display_name=display_name)
        self.instances[user.id] = ApplicationInstance(user.id, user_principal_name, display_name, application_id)
        self.writes.append(f"create {user_principal_name}")
        return user.id

    async def get(self, object_id: str) -> ApplicationInstance:
        if object_id not in self.instances:
            raise NotFound(f"Teams has no resource account {object_id}")
        return self.instances[object_id]

    async def update(self, object_id: str, *, display_name: str | None = None,
                     application_id: str | None = None) -> None:
        current = await self.get(object_id)
        changes = {k: v for k, v in (("display_name", display_name), ("application_id", application_id)) if v is not None}
        self.writes.append(f"update {current.user_principal_name} {sorted(changes.items())}")
        self.instances[object_id] = replace(current, **changes)

    async def all(self) -> list[ApplicationInstance]:
        return list(self.instances.values())


@dataclass
class FakeEmergencyLocations:
    addresses: dict[str, CivicAddress] = field(default_factory=dict)  # by civic address id
    placed: dict[str, str | None] = field(default_factory=dict)  # phone number -> location id
    holders: dict[str, str] = field(default_factory=dict)  # phone number -> upn (Teams' own assignments)
    writes: list[str] = field(default_factory=list)

    async def create_address(self, address: CivicAddress) -> EmergencyAddress:
        if not address.country or len(address.country) != 2:
            raise refused("New-CsOnlineLisCivicAddress failed: CountryOrRegion must be a two-letter code")
        civic_id = f"civic-{len(self.addresses) + 1}"
        self.addresses[civic_id] = address
        self.writes.append(f"create_address {address.street_name}")
        return EmergencyAddress(civic_id, f"loc-{civic_id}")

    async def update_address(self, civic_address_id: str, address: CivicAddress) -> None:
        if civic_address_id not in self.addresses:
            raise refused(f"Set-CsOnlineLisCivicAddress failed: civic address {civic_address_id} not found")
        self.addresses[civic_address_id] = address
        self.writes.append(f"update_address {civic_address_id}")

    async def remove_address(self, civic_address_id: str) -> None:
        if civic_address_id not in self.addresses:
            raise NotFound(f"Teams has no civic address {civic_address_id}")  # (the port's answer: the adapter's)
        if f"loc-{civic_address_id}" in self.placed.values():
            raise refused("Remove-CsOnlineLisCivicAddress failed: the address is in use")
        del self.addresses[civic_address_id]
        self.writes.append(f"remove_address {civic_address_id}")

    async def locate_number(self, user_principal_name: str, phone_number: str, location_id: str | None) -> None:
        if self.holders.get(phone_number) != user_principal_name:
            raise refused(f"Set-CsPhoneNumberAssignment failed: Telephone Number '{phone_number}' is not assigned "
                          f"to {user_principal_name}")
        if location_id is not None and location_id not in {f"loc-{c}" for c in self.addresses}:
            raise refused(f"Set-CsPhoneNumberAssignment failed: location {location_id} not found")
        self.placed[phone_number] = location_id
        self.writes.append(f"locate_number {phone_number} {location_id}")


@dataclass
class FakeTeamsAdmin:
    sip: dict[str, str] = field(default_factory=dict)  # user id -> SIP address
    graph_failure: Exception | None = None
    powershell_failure: Exception | None = None
    powershell_reads: list[str | None] = field(default_factory=list)

    async def sip_address(self, id_or_upn: str) -> str | None:
        return self.sip.get(id_or_upn)

    async def check_graph_teams_admin(self) -> None:
        if self.graph_failure is not None:
            raise self.graph_failure

    async def check_powershell(self, as_user: str | None = None) -> None:
        self.powershell_reads.append(as_user)
        if self.powershell_failure is not None:
            raise self.powershell_failure


def connection(directory: FakeDirectory | None = None, **ports: Any) -> TenantConnection:
    """A TenantConnection whose ports are the given fakes (no transport: `graph` and `cmdlets` are None)."""
    directory = directory or FakeDirectory()
    made = TenantConnection("tenant", FakeDirectoryReads(directory), ports.pop("voice", None),  # type: ignore[arg-type]
                            None, None)  # type: ignore[arg-type]
    made.__dict__["directory_admin"] = directory  # cached_property: what is in __dict__ is the port
    for name, port in ports.items():
        made.__dict__[name] = port
    return made


@dataclass
class FakeConnector:
    """The Connector port: one tenant behind a domain, its consent state, its connection."""

    tenant: TenantConnection
    domains: dict[str, str] = field(default_factory=dict)  # domain -> tenant id
    consented: set[str] = field(default_factory=lambda: {"graph", "teams_admin"})
    unreachable: bool = False

    def connect(self, tenant_id: str, *, delegated_graph_token: str | None = None) -> TenantConnection:
        return self.tenant

    async def tenant_of_domain(self, domain: str) -> str | None:
        if self.unreachable:
            raise UpstreamError("Microsoft sign-in service unreachable", retryable=True)
        return self.domains.get(domain)

    async def check_app_access(self, tenant_id: str, service: str) -> None:
        if self.unreachable:
            raise UpstreamError("token endpoint unreachable", retryable=True)
        if service not in self.consented:
            raise UpstreamError(f"AADSTS65001: no consent for {service}", retryable=False, status=400)

    def admin_consent_url(self, tenant_id: str, redirect_uri: str, state: str, nonce: str) -> str:
        return f"https://login.example/{tenant_id}/consent?redirect_uri={redirect_uri}&state={state}"
