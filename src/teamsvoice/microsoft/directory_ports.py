"""The directory of a customer tenant in domain terms: the values `DirectoryAdministration` (the port the
domain uses for users, licences, groups, memberships and domains) takes and returns. Adapter on Graph v1.0:
microsoft/directory.py (`TenantConnection.directory_admin`); in-memory fake: tests/unit/directory_fakes.py."""

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from teamsvoice.core.errors import DomainError


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    user_principal_name: str
    display_name: str | None = None
    given_name: str | None = None
    surname: str | None = None
    mail: str | None = None
    job_title: str | None = None
    usage_location: str | None = None
    account_enabled: bool | None = None
    assigned_sku_ids: tuple[str, ...] = ()
    department: str | None = None  # resource accounts carry RESOURCE_ACCOUNT_DEPARTMENT
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> "DirectoryUser":
        return cls(
            id=str(data.get("id", "")), user_principal_name=str(data.get("userPrincipalName") or ""),
            display_name=data.get("displayName"), given_name=data.get("givenName"), surname=data.get("surname"),
            mail=data.get("mail"), job_title=data.get("jobTitle"), usage_location=data.get("usageLocation"),
            account_enabled=data.get("accountEnabled"),
            assigned_sku_ids=tuple(str(l.get("skuId")) for l in data.get("assignedLicenses") or []),
            department=data.get("department"), raw=dict(data),
        )


@dataclass(frozen=True)
class SubscribedSku:
    sku_id: str
    sku_part_number: str
    prepaid: int  # prepaidUnits.enabled
    consumed: int
    capability_status: str = "Enabled"
    service_plans: tuple[str, ...] = ()  # servicePlanName of each plan
    applies_to: str = "User"  # "User" or "Company"

    @property
    def available(self) -> int:
        return max(0, self.prepaid - self.consumed)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> "SubscribedSku":
        return cls(
            sku_id=str(data.get("skuId", "")), sku_part_number=str(data.get("skuPartNumber", "")),
            prepaid=int((data.get("prepaidUnits") or {}).get("enabled") or 0), consumed=int(data.get("consumedUnits") or 0),
            capability_status=str(data.get("capabilityStatus") or "Enabled"),
            service_plans=tuple(str(p.get("servicePlanName")) for p in data.get("servicePlans") or []),
            applies_to=str(data.get("appliesTo") or "User"),
        )


@dataclass(frozen=True)
class LicenceDetail:
    sku_id: str
    sku_part_number: str
    service_plans: tuple[str, ...] = ()


@dataclass(frozen=True)
class DirectoryGroup:
    id: str
    display_name: str | None
    mail_nickname: str | None = None
    is_team: bool = False
    group_types: tuple[str, ...] = ()
    security_enabled: bool | None = None
    mail_enabled: bool | None = None
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> "DirectoryGroup":
        return cls(
            id=str(data.get("id", "")), display_name=data.get("displayName"), mail_nickname=data.get("mailNickname"),
            is_team="Team" in (data.get("resourceProvisioningOptions") or []),
            group_types=tuple(data.get("groupTypes") or []), security_enabled=data.get("securityEnabled"),
            mail_enabled=data.get("mailEnabled"), description=data.get("description"), raw=dict(data),
        )


@dataclass(frozen=True)
class DirectoryObject:
    """A membership: a group, a directory role, or another directory object."""

    id: str
    kind: str  # "group", "directoryRole", "user", "administrativeUnit", ...
    display_name: str | None = None
    role_template_id: str | None = None

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> "DirectoryObject":
        kind = str(data.get("@odata.type") or "").removeprefix("#microsoft.graph.") or "directoryObject"
        return cls(id=str(data.get("id", "")), kind=kind, display_name=data.get("displayName"),
                   role_template_id=data.get("roleTemplateId"))


@dataclass(frozen=True)
class TenantDomain:
    name: str
    is_verified: bool
    is_default: bool = False
    is_initial: bool = False
    supported_services: tuple[str, ...] = ()

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> "TenantDomain":
        return cls(name=str(data.get("id", "")), is_verified=bool(data.get("isVerified")),
                   is_default=bool(data.get("isDefault")), is_initial=bool(data.get("isInitial")),
                   supported_services=tuple(data.get("supportedServices") or []))


@dataclass(frozen=True)
class UserUpdateResult:
    user_id: str
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# Microsoft's department of a Teams resource account's user (call queues, auto attendants).
RESOURCE_ACCOUNT_DEPARTMENT = "Microsoft Communication Application Instance"


@dataclass(frozen=True)
class DirectoryUserPage:
    """One page of a user listing: `link` reads this page again, `next_link` the next one (None: the last).
    Both are opaque to the domain (kept in its paging tokens)."""

    link: str
    users: list[DirectoryUser]
    next_link: str | None = None


class DirectoryAdministration(Protocol):
    """Users, licences, groups, memberships and domains of one tenant (`TenantConnection.directory_admin`).

    Errors: NotFound for a missing user or group (a group named by anything but its id is missing);
    ValidationFailed / Conflict for Microsoft's refusals the caller can fix (a taken UPN: Conflict; a licence
    without usage location: ValidationFailed; no free seat: Conflict); anything else UpstreamError."""

    def users(self, *, filter: str | None = None, search: str | None = None, select: Sequence[str] | None = None,
              page_size: int | None = None) -> AsyncIterator[DirectoryUser]:
        """Every user, across Microsoft's pages."""
        ...

    async def user_page(self, link: str | None = None, *, page_size: int, starts_with: str | None = None,
                        group: str | None = None) -> DirectoryUserPage:
        """A page of users (the first of the listing when `link` is None): the tenant's users whose display
        name starts with `starts_with`, or the user members of `group` (`starts_with` is then not applied
        by Microsoft). NotFound: the group does not exist."""
        ...

    async def user(self, id_or_upn: str, *, select: Sequence[str] | None = None) -> DirectoryUser: ...

    async def user_batched(self, id_or_upn: str) -> DirectoryUser:
        """As user, possibly read in one call with other users' reads."""
        ...

    async def create_user(self, *, user_principal_name: str, display_name: str, mail_nickname: str, password: str,
                          account_enabled: bool = True, force_change_password: bool = True,
                          **properties: Any) -> DirectoryUser: ...

    async def update_user(self, id_or_upn: str, **changes: Any) -> None: ...

    async def update_users(self, changes: Mapping[str, Mapping[str, Any]]) -> list[UserUpdateResult]: ...

    async def delete_user(self, id_or_upn: str, *, missing_ok: bool = False) -> bool: ...

    async def subscribed_skus(self, *, refresh: bool = True) -> list[SubscribedSku]: ...

    async def sku(self, sku: str, *, fresh: bool = True) -> SubscribedSku: ...

    async def licences(self, id_or_upn: str) -> list[LicenceDetail]: ...

    async def assign_licences(self, id_or_upn: str, *, add: Sequence[str] = (),
                              remove: Sequence[str] = ()) -> DirectoryUser: ...

    async def assign_licences_batched(self, user_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        """As assign_licences for one user by object id, possibly in one call with other users' same change."""
        ...

    async def remove_licences(self, id_or_upn: str, skus: Sequence[str]) -> DirectoryUser: ...

    def groups(self, *, teams_only: bool = False, filter: str | None = None) -> AsyncIterator[DirectoryGroup]: ...

    async def group(self, group_id: str) -> DirectoryGroup: ...

    def group_members(self, group_id: str) -> AsyncIterator[DirectoryObject]:
        """NotFound when the group does not exist."""
        ...

    async def add_group_member(self, group_id: str, member_id: str) -> bool: ...

    async def remove_group_member(self, group_id: str, member_id: str) -> bool: ...

    async def member_of(self, id_or_upn: str) -> list[DirectoryObject]: ...

    async def role_holders(self) -> dict[str, list[DirectoryObject]]:
        """Every user holding a directory role (by user id) with its roles, read once for a whole list."""
        ...

    async def domains(self) -> list[TenantDomain]: ...

    async def organization(self) -> dict[str, Any]: ...
