"""Input limits shared by both API families and the domain: the 64-bit range of the vendors' Longs, how long a
stored name may be and which characters it may hold, how deep a JSON body may nest.

`Long` and `Name` are the wire-model types; `check_name` the same rule for hand-parsed bodies. The HTTP side
(body size, JSON depth, lone surrogates) is enforced in `teamsvoice.api.limits`."""

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt, StrictStr

from teamsvoice.core.errors import ValidationFailed

LONG_MIN = -(2**63)  # the vendors' Long (and a BIGINT column) is a signed 64-bit integer
LONG_MAX = 2**63 - 1
NAME_MAX_LENGTH = 200  # the name columns are VARCHAR(200)
JSON_MAX_DEPTH = 32

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def name_problem(value: str, max_length: int = NAME_MAX_LENGTH) -> str | None:
    """Why `value` cannot be stored as a name (None: it can)."""
    if len(value) > max_length:
        return f"at most {max_length} characters"
    if _CONTROL.search(value):
        return "must not contain NUL or other control characters"
    return None


def check_name(field: str, value: str, max_length: int = NAME_MAX_LENGTH) -> str:
    problem = name_problem(value, max_length)
    if problem:
        raise ValidationFailed(f"{field}: {problem}")
    return value


def _name_rule(max_length: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        problem = name_problem(value, max_length)
        if problem:
            raise ValueError(problem)
        return value

    return check


Long = Annotated[StrictInt, Field(ge=LONG_MIN, le=LONG_MAX)]
Name = Annotated[StrictStr, AfterValidator(_name_rule(NAME_MAX_LENGTH))]
