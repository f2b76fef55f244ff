"""Text searches in SQL: the one way every search of both API families (and the console's) matches "contains,
ignoring case". The text searched for is matched as written: LIKE's wildcards `%` and `_` (and the escape
character itself) are escaped, so `search=_` finds names with an underscore, not every row, and `a_a` does not
match "Adatum". A NUL character in a search is refused (PostgreSQL cannot take it in a parameter; SQLite ended
the pattern there): 400 naming the field."""

from typing import Any

from sqlalchemy import ColumnElement, func

from teamsvoice.core.errors import ValidationFailed

ESCAPE = "\\"


def like_pattern(text: str, *, field: str = "search", anchor: str = "contains") -> str:
    """The LIKE pattern (ESCAPE `\\`) matching `text` lowered, as written: anywhere (`contains`) or at the start
    (`startswith`). 400 naming `field` for a NUL character."""
    if "\x00" in text:
        raise ValidationFailed(f"{field}: must not contain a NUL character")
    escaped = text.lower().replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    return f"{escaped}%" if anchor == "startswith" else f"%{escaped}%"


def matches(column: Any, pattern: Any) -> ColumnElement[bool]:
    """`column` (lowered) LIKE `pattern`: a pattern from `like_pattern`, or a bound parameter that will hold one
    (a statement built once and cached binds its pattern at each run)."""
    return func.lower(column).like(pattern, escape=ESCAPE)


def contains(column: Any, text: str, *, field: str = "search") -> ColumnElement[bool]:
    """`column` contains `text`, ignoring case, as written (`like_pattern`)."""
    return matches(column, like_pattern(text, field=field))


def starts_with(column: Any, text: str, *, field: str = "search") -> ColumnElement[bool]:
    """`column` starts with `text`, ignoring case, as written (`like_pattern`)."""
    return matches(column, like_pattern(text, field=field, anchor="startswith"))
