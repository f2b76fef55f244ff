"""Values put into a Microsoft URL path. Graph resolves `/users/{x}` by object id or userPrincipalName and
`/groups/{x}` by object id only; anything else in a path segment ("../", "?", "%00", "#") would reach another
resource or break the request, so every value is checked for the form Microsoft expects, then percent-encoded."""

import re
from urllib.parse import quote

from teamsvoice.core.errors import ValidationFailed

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Entra ID's userPrincipalName: the characters it allows before the @, a DNS name after it (guests: #EXT#).
_UPN = re.compile(r"[A-Za-z0-9'._!#^~+&$=-]{1,113}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))+")


def _shown(value: object) -> str:
    """A short, printable prefix of a refused value (error reasons never echo input whole)."""
    text = str(value)
    short = text[:40].encode("unicode_escape").decode("ascii")
    return short + ("..." if len(text) > 40 else "")


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
    if len(value) > 256 or not _UPN.fullmatch(value):
        raise ValidationFailed(f"{what}: '{_shown(value)}' is not a Microsoft object id (GUID) or userPrincipalName")
    return quote(value, safe="@")
