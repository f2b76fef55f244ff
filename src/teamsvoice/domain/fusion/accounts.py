"""Fusion logins as people: the caller's own profile (APIO `/system/users/local`) and the staff (admins) of each
organisation level, managed by the logins above or beside them.

A login's `admin_of` is the one node it administers (system/distributor/reseller: a node of the Reseller tree;
tenant: a Fusion tenant). Its rights are its Required-role strings (`FusionUser.permissions`); `api_rules` lists
every role of the vocabulary with whether the login holds it, the same strings the routes check.
"""

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import Conflict, NotFound, ValidationFailed
from teamsvoice.core.security import hash_secret, verify_secret_bounded
from teamsvoice.domain.fusion.models import FusionSession, FusionTenant, FusionUser, FusionUserProfile
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.roles import FUSION_LEVEL_OF, RESELLER_LEVEL_OF, default_permissions
from teamsvoice.domain.fusion.scope import org_in_scope, org_uuid, tenant_filter, tenant_in_scope
from teamsvoice.domain.orgs.models import Reseller

PROFILE_FIELDS = ("first_name", "last_name", "email", "mobile_number")
MIN_PASSWORD = 8
WRONG_PASSWORD = "wrong_password"
SELF_DELETE = "self_delete"
USERNAME_TAKEN = "username_taken"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
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


def parse_profile_fields(body: dict[str, Any]) -> dict[str, str | None]:
    """The profile fields present in `body`, checked (None or "" clears one)."""
    fields: dict[str, str | None] = {}
    limits = {"first_name": 100, "last_name": 100, "email": 254, "mobile_number": 40}
    for name in PROFILE_FIELDS:
        if name not in body:
            continue
        value = body[name]
        if value is None or value == "":
            fields[name] = None
            continue
        if not isinstance(value, str) or len(value.strip()) > limits[name] or not value.strip():
            raise ValidationFailed(f"{name}: must be a string of at most {limits[name]} characters")
        value = value.strip()
        if name == "email" and not _EMAIL.match(value):
            raise ValidationFailed(f"email: '{value}' is not an e-mail address")
        if name == "mobile_number" and not re.fullmatch(r"\+?[0-9 ()./-]{3,40}", value):
            raise ValidationFailed(f"mobile_number: '{value}' is not a phone number")
        fields[name] = value
    return fields


def check_new_password(password: Any, field: str = "password") -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= 200:
        raise ValidationFailed(f"{field}: must be a string of {MIN_PASSWORD} to 200 characters")
    if password.strip() != password or len(set(password)) < 4:
        raise ValidationFailed(f"{field}: too weak (no leading/trailing spaces, at least 4 different characters)")
    return password


async def _profile(session: AsyncSession, user_id: int) -> FusionUserProfile | None:
    return await session.scalar(select(FusionUserProfile).where(FusionUserProfile.user_id == user_id))


async def _set_profile(session: AsyncSession, user: FusionUser, fields: dict[str, str | None]) -> None:
    if not fields:
        return
    row = await _profile(session, user.id)
    if row is None:
        row = FusionUserProfile(user_id=user.id)
        session.add(row)
    for name, value in fields.items():
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


async def login_view(session: AsyncSession, user: FusionUser) -> Login:
    profile = await _profile(session, user.id)
    return Login(user, {name: getattr(profile, name) if profile else None for name in PROFILE_FIELDS},
                 await admin_of(session, user))


async def me(session: AsyncSession, principal: FusionPrincipal) -> FusionUser:
    user = await session.get(FusionUser, principal.user_id)
    if user is None:
        raise NotFound("The login no longer exists")
    return user


async def update_me(session: AsyncSession, principal: FusionPrincipal, body: Any) -> FusionUser:
    """Own profile fields and/or a password change (`old_password` + `password`)."""
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    unknown = set(body) - {*PROFILE_FIELDS, "old_password", "password"}
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field (allowed: {', '.join([*PROFILE_FIELDS, 'old_password', 'password'])})")
    if not body:
        raise ValidationFailed("Nothing to update: send profile fields or old_password and password")
    user = await me(session, principal)
    fields = parse_profile_fields(body)
    if "password" in body or "old_password" in body:
        new = check_new_password(body.get("password"))
        old = body.get("old_password")
        if not isinstance(old, str) or not await verify_secret_bounded(old, user.password_hash):
            raise ValidationFailed("old_password: does not match the current password", code=WRONG_PASSWORD)
        user.password_hash = hash_secret(new)
    await _set_profile(session, user, fields)
    return user


# --- staff ----------------------------------------------------------------------------------------------


async def users_in_scope(
    session: AsyncSession, principal: FusionPrincipal, search: str | None, offset: int, limit: int
) -> tuple[list[FusionUser], int]:
    """Every login at or under the caller's node (a tenant login: its tenant's logins)."""
    tenants = select(FusionTenant.id).where(tenant_filter(principal))
    if principal.is_tenant_level:
        statement = select(FusionUser).where(FusionUser.fusion_tenant_id.in_(tenants))
    else:
        statement = select(FusionUser).where(or_(FusionUser.reseller_id.in_(principal.reseller_scope),
                                                 FusionUser.fusion_tenant_id.in_(tenants)))
    if search:
        statement = statement.where(func.lower(FusionUser.username).contains(search.lower()))
    total = await session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = list(await session.scalars(statement.order_by(FusionUser.username, FusionUser.id).offset(offset).limit(limit)))
    return rows, total


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
    column = FusionUser.reseller_id if target.reseller_id is not None else FusionUser.fusion_tenant_id
    value = target.reseller_id if target.reseller_id is not None else target.tenant_id
    return list(await session.scalars(select(FusionUser).where(
        FusionUser.level == target.level, column == value).order_by(FusionUser.username)))


async def get_admin(session: AsyncSession, target: AdminTarget, admin_id: int) -> FusionUser:
    user = await session.get(FusionUser, admin_id)
    if user is None or not target.owns(user):
        raise NotFound(f"Admin {admin_id} not found")
    return user


async def create_admin(session: AsyncSession, target: AdminTarget, body: Any) -> FusionUser:
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    unknown = set(body) - {*PROFILE_FIELDS, "username", "password"}
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field")
    username = body.get("username")
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise ValidationFailed("username: 3 to 200 letters, digits or . _ @ + -")
    password = check_new_password(body.get("password"))
    fields = parse_profile_fields(body)
    if await session.scalar(select(FusionUser.id).where(func.lower(FusionUser.username) == username.lower())):
        raise Conflict(f"username: {username} is taken", code=USERNAME_TAKEN)
    if target.level != "tenant":
        node = await session.get(Reseller, target.reseller_id)
        assert node is not None and node.level == RESELLER_LEVEL_OF[target.level]
    user = FusionUser(username=username, password_hash=hash_secret(password), level=target.level,
                      reseller_id=target.reseller_id, fusion_tenant_id=target.tenant_id,
                      permissions=default_permissions(target.level))
    session.add(user)
    await session.flush()
    await _set_profile(session, user, fields)
    return user


async def update_admin(session: AsyncSession, target: AdminTarget, admin_id: int, body: Any) -> FusionUser:
    if not isinstance(body, dict) or not body:
        raise ValidationFailed("The request body must be a JSON object with the fields to change")
    unknown = set(body) - {*PROFILE_FIELDS, "password", "status"}
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field")
    user = await get_admin(session, target, admin_id)
    fields = parse_profile_fields(body)
    if "password" in body:
        user.password_hash = hash_secret(check_new_password(body["password"]))
        await _end_sessions(session, user.id)  # a reset password ends the sessions opened with the old one
    if "status" in body:
        if body["status"] not in ("active", "disabled"):
            raise ValidationFailed("status: must be active or disabled")
        user.active = body["status"] == "active"
    await _set_profile(session, user, fields)
    return user


async def _end_sessions(session: AsyncSession, user_id: int) -> None:
    for row in await session.scalars(select(FusionSession).where(FusionSession.user_id == user_id)):
        row.revoked = True


async def delete_admin(session: AsyncSession, principal: FusionPrincipal, target: AdminTarget, admin_id: int) -> None:
    user = await get_admin(session, target, admin_id)
    if user.id == principal.user_id:
        raise ValidationFailed("You cannot delete your own login", code=SELF_DELETE)
    await session.execute(delete(FusionSession).where(FusionSession.user_id == user.id))
    await session.execute(delete(FusionUserProfile).where(FusionUserProfile.user_id == user.id))
    await session.delete(user)
