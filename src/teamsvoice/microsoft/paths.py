"""Values put into a Microsoft URL path. Graph resolves `/users/{x}` by object id or userPrincipalName and
`/groups/{x}` by object id only; anything else in a path segment ("../", "?", "%00", "#") would reach another
resource or break the request, so every value is checked for the form Microsoft expects, then percent-encoded."""

import re
from urllib.parse import quote

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.limits import is_user_principal_name, shown as _shown

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def guid_segment(value: object, what: str = "object id") -> str:
    if not isinstance(value, str) or not _GUID.fullmatch(value):
        raise ValidationFailed(f"{what}: '{_shown(value)}' is not a Microsoft object id (GUID)")
    return value.lower()


def object_segment(value: object, what: str = "user") -> str:
    """An object id (GUID) or a userPrincipalName, encoded for a path."""
    if isinstance(value, str) and _GUID.fullmatch(value):
        return value.lower()
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"{what}: a Microsoft object id or userPrincipalName is required")
    if not is_user_principal_name(value):
        raise ValidationFailed(f"{what}: '{_shown(value)}' is not a Microsoft object id (GUID) or userPrincipalName")
    return quote(value, safe="@")
