"""Request bodies about Fusion logins (the caller's own profile, a level's admins), read into the domain's
typed changes (`fusion/accounts.ProfileChange`, `OwnChange`, `NewAdmin`, `AdminChange`). The field names are the
vendor portal's; the values are checked by the domain's rules (`check_profile_value`, `check_username`,
`check_new_password`), in the order the fields are listed here."""

from typing import Any

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.fusion import accounts
from teamsvoice.domain.fusion.accounts import PROFILE_FIELDS

OWN_FIELDS = (*PROFILE_FIELDS, "old_password", "password")
NEW_ADMIN_FIELDS = (*PROFILE_FIELDS, "username", "password")
ADMIN_FIELDS = (*PROFILE_FIELDS, "password", "status")
STATUSES = {"active": True, "disabled": False}


def profile_change(body: dict[str, Any]) -> accounts.ProfileChange:
    """The profile fields present in `body` (null or "" clears one)."""
    values: dict[str, str | None] = {}
    for name in PROFILE_FIELDS:
        if name not in body:
            continue
        value = body[name]
        if value is None or value == "":
            values[name] = None
        elif isinstance(value, str):
            values[name] = accounts.check_profile_value(name, value)
        else:
            raise ValidationFailed(f"{name}: must be a string of at most {accounts.PROFILE_LIMITS[name]} characters")
    return accounts.ProfileChange(**values)


def _unknown(body: dict[str, Any], allowed: tuple[str, ...]) -> str | None:
    unknown = set(body) - set(allowed)
    return sorted(unknown)[0] if unknown else None


def own_change(body: Any) -> accounts.OwnChange:
    """`PUT /system/users/local`: profile fields and/or `old_password` with `password`."""
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    if (unknown := _unknown(body, OWN_FIELDS)) is not None:
        raise ValidationFailed(f"{unknown}: unknown field (allowed: {', '.join(OWN_FIELDS)})")
    if not body:
        raise ValidationFailed("Nothing to update: send profile fields or old_password and password")
    profile = profile_change(body)
    if "password" not in body and "old_password" not in body:
        return accounts.OwnChange(profile)
    password = accounts.check_new_password(body.get("password"))
    old = body.get("old_password")
    return accounts.OwnChange(profile, password, old if isinstance(old, str) else None)


def new_admin(body: Any) -> accounts.NewAdmin:
    """`POST {draas}/<level>s/{uuid}/admins`."""
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    if (unknown := _unknown(body, NEW_ADMIN_FIELDS)) is not None:
        raise ValidationFailed(f"{unknown}: unknown field")
    username = accounts.check_username(body.get("username"))
    password = accounts.check_new_password(body.get("password"))
    return accounts.NewAdmin(username, password, profile_change(body))


def check_admin_fields(body: Any) -> dict[str, Any]:
    """`PUT {draas}/<level>s/{uuid}/admins/{id}`: a non-empty object of known fields (checked before the admin
    is looked up; its values after, with `admin_change`)."""
    if not isinstance(body, dict) or not body:
        raise ValidationFailed("The request body must be a JSON object with the fields to change")
    if (unknown := _unknown(body, ADMIN_FIELDS)) is not None:
        raise ValidationFailed(f"{unknown}: unknown field")
    return body


def admin_change(body: dict[str, Any]) -> accounts.AdminChange:
    profile = profile_change(body)
    password = accounts.check_new_password(body["password"]) if "password" in body else None
    active = None
    if "status" in body:
        status = body["status"]
        if not isinstance(status, str) or status not in STATUSES:
            raise ValidationFailed("status: must be active or disabled")
        active = STATUSES[status]
    return accounts.AdminChange(profile, password, active)
