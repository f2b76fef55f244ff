"""Fusion logins as people: the caller's own profile (APIO `/system/users/local`) and the staff (admins) of each
organisation level, managed by the logins above or beside them.

A login's `admin_of` is the one node it administers (system/distributor/reseller: a node of the Reseller tree;
tenant: a Fusion tenant). Its rights are its Required-role strings (`FusionUser.permissions`); `api_rules` lists
every role of the vocabulary with whether the login holds it, the same strings the routes check.
"""

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from teamsvoice.core.limits import name_problem, shown
from teamsvoice.core.security import hash_secret, verify_secret_bounded
from teamsvoice.domain.fusion import repository, repository_accounts as logins
from teamsvoice.domain.fusion.models import FusionTenant, FusionUser, FusionUserProfile
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.roles import FUSION_LEVEL_OF, RESELLER_LEVEL_OF, default_permissions
from teamsvoice.domain.fusion.scope import org_in_scope, org_uuid, tenant_in_scope
from teamsvoice.domain.orgs.models import Reseller

PROFILE_FIELDS = ("first_name", "last_name", "email", "mobile_number")
# The longest value each profile field holds.
PROFILE_LIMITS = {"first_name": 100, "last_name": 100, "email": 254, "mobile_number": 40}
MIN_PASSWORD = 8
WRONG_PASSWORD = "wrong_password"
SELF_DELETE = "self_delete"
SELF_DISABLE = "self_disable"
USERNAME_TAKEN = "username_taken"
GRANTS_MORE = "grants_more_than_held"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MOBILE = re.compile(r"\+?[0-9 ()./-]{3,40}")
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{3,200}$")
# The portal's UI profile per login level (its LoggedInUserType: admin | distributor | reseller | customer).
UI_PROFILES = {"system": "admin", "distributor": "distributor", "reseller": "reseller", "tenant": "customer"}
# The plural path segment of each level whose admins can be managed (`{draas}/<segment>/{uuid}/admins`).
ADMIN_LEVELS = {"distributors": "distributor", "resellers": "reseller", "tenants": "tenant"}


@dataclass(frozen=True)
class AdminOf:
    level: str
    reference: str  # the node's uuid (org_uuid) or the tenant's uuid
    name: str


class Keep(enum.Enum):
    KEEP = "keep"


KEEP = Keep.KEEP  # a profile field left as it is


@dataclass(frozen=True)
class ProfileChange:
    """The profile fields to change: a value sets one, None clears it, KEEP (the default) leaves it as it is.
    Built by the API family from its request body, each value checked with `check_profile_value`."""

    first_name: str | None | Keep = KEEP
    last_name: str | None | Keep = KEEP
    email: str | None | Keep = KEEP
    mobile_number: str | None | Keep = KEEP

    def changes(self) -> dict[str, str | None]:
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not KEEP}


def check_profile_value(name: str, value: str) -> str:
    """A profile field's new value (`name` one of PROFILE_FIELDS), trimmed: a stored name (`core.limits.name_problem`:
    at most its PROFILE_LIMITS characters, no NUL, line break or other control character, trimmed or not); blank,
    or an e-mail address or a mobile number that is not one, is refused."""
    trimmed = value.strip()
    if not trimmed:
        raise ValidationFailed(f'{name}: must not be blank (send null or "" to clear it)')
    # (`value` as sent too: a control character at either end, which trimming would drop unseen, is refused as well)
    problem = name_problem(trimmed, PROFILE_LIMITS[name]) or name_problem(value, len(value))
    if problem:
        raise ValidationFailed(f"{name}: {problem}")
    if name == "email" and not _EMAIL.fullmatch(trimmed):
        raise ValidationFailed(f"email: '{shown(trimmed)}' is not an e-mail address")
    if name == "mobile_number" and not _MOBILE.fullmatch(trimmed):
        raise ValidationFailed(f"mobile_number: '{shown(trimmed)}' is not a phone number")
    return trimmed


def check_username(username: Any) -> str:
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):  # (match's `$` took a final line break)
        raise ValidationFailed("username: 3 to 200 letters, digits or . _ @ + -")
    return username


def check_new_password(password: Any, field: str = "password") -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= 200:
        raise ValidationFailed(f"{field}: must be a string of {MIN_PASSWORD} to 200 characters")
    if password.strip() != password or len(set(password)) < 4:
        raise ValidationFailed(f"{field}: too weak (no leading/trailing spaces, at least 4 different characters)")
    return password


async def _set_profile(session: AsyncSession, user: FusionUser, change: ProfileChange) -> None:
    values = change.changes()
    if not values:
        return
    _read(session).profiles.pop(user.id, None)  # (read again by `login_view`: a profile may be added here)
    row = await logins.profile_of(session, user.id)
    if row is None:
        row = FusionUserProfile(user_id=user.id)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    await session.flush()


async def admin_of(session: AsyncSession, user: FusionUser) -> AdminOf:
    if user.level == "tenant":
        tenant = await session.get(FusionTenant, user.fusion_tenant_id)
        assert tenant is not None  # FK
        return AdminOf("tenant", tenant.uuid, tenant.name)
    node = await session.get(Reseller, user.reseller_id)
    assert node is not None  # FK
    return AdminOf(user.level, org_uuid(node.id), node.name)


@dataclass(frozen=True)
class Login:
    """A login with its profile fields (`PROFILE_FIELDS`, None when unset) and the node it administers."""

    user: FusionUser
    profile: dict[str, str | None]
    admin_of: AdminOf


@dataclass
class _LoginsRead:
    """What `read_logins` read in a session (its `info`, so for one request): each login's profile (None: it has
    none) by login id, and the nodes they administer, held here so that the session's identity map keeps them for
    `admin_of` (its `session.get` then sends no statement)."""

    profiles: dict[int, FusionUserProfile | None] = field(default_factory=dict)
    nodes: list[Reseller | FusionTenant] = field(default_factory=list)


def _read(session: AsyncSession) -> _LoginsRead:
    return session.info.setdefault("fusion_logins_read", _LoginsRead())  # type: ignore[no-any-return]


async def read_logins(session: AsyncSession, users: Sequence[FusionUser]) -> None:
    """The profiles and nodes of many logins (a list's page) in one statement, so that `login_view` of each sends
    none: a page of 1,000 logins read each one's profile, and each node, in a statement of its own."""
    read = _read(session)
    found = await repository.profiles_and_nodes_of_logins(session, [u.id for u in users])
    for user_id, profile, reseller, tenant in found:
        read.profiles[user_id] = profile
        read.nodes.extend(node for node in (reseller, tenant) if node is not None)


async def login_view(session: AsyncSession, user: FusionUser) -> Login:
    read = _read(session).profiles
    profile = read[user.id] if user.id in read else await logins.profile_of(session, user.id)
    return Login(user, {name: getattr(profile, name) if profile else None for name in PROFILE_FIELDS},
                 await admin_of(session, user))


async def me(session: AsyncSession, principal: FusionPrincipal) -> FusionUser:
    user = await session.get(FusionUser, principal.user_id)
    if user is None:
        raise NotFound("The login no longer exists")
    return user


@dataclass(frozen=True)
class OwnChange:
    """A login's change to itself: profile fields and/or a new password (checked with `check_new_password`),
    which needs the current one."""

    profile: ProfileChange
    password: str | None = None
    old_password: str | None = None


async def update_me(session: AsyncSession, principal: FusionPrincipal, change: OwnChange) -> FusionUser:
    user = await me(session, principal)
    if change.password is not None:
        old = change.old_password
        if old is None or not await verify_secret_bounded(old, user.password_hash):
            raise ValidationFailed("old_password: does not match the current password", code=WRONG_PASSWORD)
        user.password_hash = hash_secret(change.password)
        await _end_sessions(session, user, keep=principal.session_key)  # the caller's own session goes on
    await _set_profile(session, user, change.profile)
    return user


# --- staff ----------------------------------------------------------------------------------------------


async def users_in_scope(
    session: AsyncSession, principal: FusionPrincipal, search: str | None, offset: int, limit: int
) -> tuple[list[FusionUser], int]:
    """Every login at or under the caller's node (a tenant login: its tenant's logins)."""
    return await logins.logins_visible_to(session, principal, username_contains=search, offset=offset, limit=limit)


@dataclass(frozen=True)
class AdminTarget:
    """The node whose admins are managed: a Reseller node (reseller_id) or a Fusion tenant (tenant_id)."""

    level: str
    reseller_id: int | None
    tenant_id: int | None

    def owns(self, user: FusionUser) -> bool:
        return user.level == self.level and (
            user.reseller_id == self.reseller_id if self.reseller_id is not None else user.fusion_tenant_id == self.tenant_id)


async def admin_target(session: AsyncSession, principal: FusionPrincipal, segment: str, uuid: str) -> AdminTarget:
    level = ADMIN_LEVELS[segment]
    if level == "tenant":
        tenant = await tenant_in_scope(session, principal, uuid)
        return AdminTarget("tenant", None, tenant.id)
    node = await org_in_scope(session, principal, uuid)
    if node is None or FUSION_LEVEL_OF.get(node.level) != level:
        raise NotFound(f"{level.capitalize()} {uuid} not found")
    return AdminTarget(level, node.id, None)


async def list_admins(session: AsyncSession, target: AdminTarget) -> list[FusionUser]:
    return await logins.admins_of(session, target.level, reseller_id=target.reseller_id,
                                  fusion_tenant_id=target.tenant_id)


async def get_admin(session: AsyncSession, target: AdminTarget, admin_id: int) -> FusionUser:
    user = await session.get(FusionUser, admin_id)
    if user is None or not target.owns(user):
        raise NotFound(f"Admin {admin_id} not found")
    return user


@dataclass(frozen=True)
class NewAdmin:
    """An admin to create: username (`check_username`), password (`check_new_password`) and profile fields."""

    username: str
    password: str
    profile: ProfileChange


def check_within_own_rights(principal: FusionPrincipal, permissions: list[str], what: str) -> None:
    """A login gives no login more rights than it holds itself (at any level: an organisation login's default
    profile holds every role of the levels below it, so it passes for them all): a login whose rights were narrowed
    by hand could otherwise create, or take over by resetting its password or enabling it, a login of its level's
    full profile. 403 naming the first role it lacks."""
    missing = sorted(set(permissions) - principal.permissions)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise PermissionDenied(f"{what} rights your login does not hold: {missing[0]}{more}", code=GRANTS_MORE)


async def create_admin(session: AsyncSession, principal: FusionPrincipal, target: AdminTarget,
                       admin: NewAdmin) -> FusionUser:
    """A login of the target's level with that level's default rights, which the caller must hold itself."""
    check_within_own_rights(principal, default_permissions(target.level), "The new admin would hold")
    username = admin.username
    if await logins.username_taken(session, username):
        raise Conflict(f"username: {username} is taken", code=USERNAME_TAKEN)
    if target.level != "tenant":
        node = await session.get(Reseller, target.reseller_id)
        assert node is not None and node.level == RESELLER_LEVEL_OF[target.level]
    user = FusionUser(username=username, password_hash=hash_secret(admin.password), level=target.level,
                      reseller_id=target.reseller_id, fusion_tenant_id=target.tenant_id,
                      permissions=default_permissions(target.level))
    session.add(user)
    await session.flush()
    await _set_profile(session, user, admin.profile)
    return user


@dataclass(frozen=True)
class AdminChange:
    """A change to an admin: profile fields, a new password (`check_new_password`; None: unchanged) and whether
    it may log in (None: unchanged)."""

    profile: ProfileChange
    password: str | None = None
    active: bool | None = None


async def update_admin(session: AsyncSession, principal: FusionPrincipal, user: FusionUser, change: AdminChange) -> FusionUser:
    """`user`: an admin of the target (`get_admin`), holding no right the caller lacks (`check_within_own_rights`).
    A login does not disable itself (as it does not delete itself: nothing could enable it again below the level
    above)."""
    check_within_own_rights(principal, list(user.permissions or []), f"Admin {user.id} holds")
    if change.active is False and user.id == principal.user_id:
        raise ValidationFailed("You cannot disable your own login", code=SELF_DISABLE)
    if change.password is not None:
        user.password_hash = hash_secret(change.password)
        await _end_sessions(session, user)  # a reset password ends the sessions opened with the old one
    if change.active is not None:
        if user.active and not change.active:
            await _end_sessions(session, user)  # disabled for good: enabling it again revives no old token
        user.active = change.active
    await _set_profile(session, user, change.profile)
    return user


async def _end_sessions(session: AsyncSession, user: FusionUser, keep: str | None = None) -> None:
    """Its API sessions (but the one named `keep`) are revoked and its console cookies stop working (console/auth.py
    checks the epoch)."""
    for row in await logins.sessions_of(session, user.id):
        row.revoked = row.revoked or row.key != keep
    user.session_epoch = (user.session_epoch or 0) + 1


async def delete_admin(session: AsyncSession, principal: FusionPrincipal, target: AdminTarget, admin_id: int) -> None:
    """`check_within_own_rights` as for a change: a login narrowed by hand does not remove a stronger one."""
    user = await get_admin(session, target, admin_id)
    if user.id == principal.user_id:
        raise ValidationFailed("You cannot delete your own login", code=SELF_DELETE)
    check_within_own_rights(principal, list(user.permissions or []), f"Admin {user.id} holds")
    _read(session).profiles.pop(user.id, None)
    await logins.delete_login_records(session, user.id)
    await session.delete(user)
