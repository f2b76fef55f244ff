"""Input limits shared by both API families and the domain: the 64-bit range of the vendors' Longs, how long a
stored name may be and which characters it may hold, how deep a JSON body may nest.

`Long` and `Name` are the wire-model types; `check_name` the same rule for hand-parsed bodies. The HTTP side
(body size, JSON depth, lone surrogates) is enforced in `teamsvoice.api.limits`."""

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from pydantic import AfterValidator, Field, StrictInt, StrictStr

from teamsvoice.core.errors import ValidationFailed

LONG_MIN = -(2**63)  # the vendors' Long (and a BIGINT column) is a signed 64-bit integer
LONG_MAX = 2**63 - 1
INTEGER_MAX = 2**31 - 1  # an INTEGER column (our ids): PostgreSQL refuses to compare one with more
NAME_MAX_LENGTH = 200  # the name columns are VARCHAR(200)
JSON_MAX_DEPTH = 32

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # (a free text's tabs and line breaks)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_MAYBE_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


# Entra ID's userPrincipalName: the characters it allows before the @, a DNS name after it (guests: #EXT#).
_UPN = re.compile(r"[A-Za-z0-9'._!#^~+&$=-]{1,113}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))+")
UPN_MAX_LENGTH = 256


# What Entra ID lets a NEW user's userPrincipalName hold before the @: A-Z a-z 0-9 ' . - _ ! # ^ ~, no accented
# characters (../shared/microsoft/graph-and-teams-notes.md 1.3, Microsoft's "Create user"). `_UPN` above, for names
# looked up, is wider: it also matches names Entra made itself (a guest's, from an e-mail address).
_NEW_UPN_LOCAL = re.compile(r"[A-Za-z0-9'._!#^~-]+")
NEW_UPN_CHARACTERS = "A-Z a-z 0-9 and ' . - _ ! # ^ ~"


def is_user_principal_name(value: str) -> bool:
    """Whether `value` has the form of a userPrincipalName an existing user may have (to look it up)."""
    return len(value) <= UPN_MAX_LENGTH and _UPN.fullmatch(value) is not None


def new_user_name_problem(name: str) -> str | None:
    """Why Entra ID would refuse `name` as the part before the @ of a new user's userPrincipalName (None: it would
    not, as far as Microsoft documents it); teamsvoice also makes it the user's mailNickname."""
    if not _NEW_UPN_LOCAL.fullmatch(name):
        return f"only {NEW_UPN_CHARACTERS} (what Microsoft Entra ID allows before the @ of a new user), not '{shown(name)}'"
    return None


def check_new_user_principal_name(field: str, upn: str) -> str:
    """`upn` for a user or resource account teamsvoice creates in Microsoft: a 400 naming `field` for what Entra ID
    would refuse, before Microsoft is asked."""
    local, at, _domain = upn.rpartition("@")
    problem = new_user_name_problem(local) if at else "must be name@domain"
    if problem is None and not is_user_principal_name(upn):
        problem = f"'{shown(upn)}' is not a valid user principal name"
    if problem:
        raise ValidationFailed(f"{field}: {problem}")
    return upn


def shown(value: object, longest: int = 40) -> str:
    """A refused value as an error message quotes it: a short prefix (reasons never echo input whole), its
    printable characters as they are and the others by code point ("é<U+202E>@x"), never a Python repr."""
    text = str(value)
    short = "".join(c if c.isprintable() else f"<U+{ord(c):04X}>" for c in text[:longest])
    return short + ("..." if len(text) > longest else "")


def is_digits(text: str) -> bool:
    """ASCII digits only, at least one. (`str.isdigit` also takes "²" and other scripts' digits, which `int`
    refuses or reads as another number: "١" is 1.)"""
    return text.isascii() and text.isdigit()


def whole_number(text: str) -> int | None:
    """`text` as an id or a count: ASCII digits within the 64-bit range; None for anything else."""
    if not is_digits(text) or len(text) > len(str(LONG_MAX)):
        return None
    number = int(text)
    return number if number <= LONG_MAX else None


def name_problem(value: str, max_length: int = NAME_MAX_LENGTH, *, lines: bool = False) -> str | None:
    """Why `value` cannot be stored as a name (None: it can); with `lines`, a free text of lines (tabs and line
    breaks allowed, other control characters not)."""
    if len(value) > max_length:
        return f"at most {max_length} characters"
    if (_CONTROL_BUT_LINES if lines else _CONTROL).search(value):
        return "must not contain NUL or other control characters"
    return None


def check_name(field: str, value: str, max_length: int = NAME_MAX_LENGTH, *, lines: bool = False) -> str:
    problem = name_problem(value, max_length, lines=lines)
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


# --- JSON bodies ----------------------------------------------------------------------------------------


def json_depth(text: str) -> int:
    """How deep brackets nest outside strings (without parsing, so without recursion)."""
    brackets = _BRACKET.findall(_STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _surrogate_path(value: Any, path: str) -> str | None:
    """Where a lone surrogate sits ("" for the top level; a key holding one is named by its parent's path)."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, child in value.items():
            if _SURROGATE.search(key):
                return path
            found = _surrogate_path(child, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found = _surrogate_path(child, f"{path}[{index}]")
            if found is not None:
                return found
    return None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value (Python's parser takes NaN and Infinity; JSON has no such numbers)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range (it would be infinity)")
    return value


def json_body_problem(body: bytes) -> str | None:
    """Why a JSON body must be refused before it is parsed (None: nothing wrong with it): not UTF-8, not JSON (where
    the parser stopped; NaN and Infinity, which Python's parser takes, are not JSON), nested too deep, a key twice in
    one object (parsers differ on which one counts: Python's and Jackson's take the last, others the first or
    refuse), a lone surrogate. Bare text that does not look like JSON is left to the route."""
    try:
        # json.loads decodes bytes exactly so (UTF-8/16/32; surrogatepass), hence the same text is checked.
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError as exc:
        return f"Malformed JSON request body: not valid {exc.encoding.upper()} text (byte {exc.start}); JSON is UTF-8"
    except LookupError:
        return "Malformed JSON request body: not valid UTF-8 text; JSON is UTF-8"
    if not text.lstrip("\ufeff \t\r\n").startswith(("{", "[", '"')):
        return None  # bare text (the seeds' `--data '<tenantId>'`), not JSON
    if json_depth(text) > JSON_MAX_DEPTH:
        return f"body: JSON nested deeper than {JSON_MAX_DEPTH} levels"
    try:
        parsed = json.loads(text.lstrip("\ufeff"), object_pairs_hook=_unique_keys, parse_constant=_not_json,
                            parse_float=_finite)
    except _DuplicateKey as duplicate:
        return f"body: the key {json.dumps(duplicate.key)[:200]} appears twice in one JSON object; send each key once"
    except RecursionError:
        return f"body: JSON nested deeper than {JSON_MAX_DEPTH} levels"
    except ValueError as exc:  # where the parser stopped (FastAPI's own message on some routes said neither what nor where)
        return f"Malformed JSON request body: {str(exc)[:200]}"
    if _MAYBE_SURROGATE.search(text):
        where = _surrogate_path(parsed, "")
        if where is not None:
            return f"{where or 'body'}: text holds a lone UTF-16 surrogate (\\ud800-\\udfff); it must be valid Unicode"
    return None


def form_body_problem(body: bytes) -> str | None:
    """Why an urlencoded form body cannot be read as text (None: nothing wrong here): a name or value that is not
    UTF-8 once percent-decoded, which the form parser would turn into replacement characters and store."""
    for part in body.split(b"&"):
        name, _, value = part.partition(b"=")
        for piece in (name, value):
            try:
                unquote_to_bytes(piece.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                field = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")[:60]
                return f"form field {json.dumps(field)}: not valid UTF-8 text"
    return None


def parse_json(body: bytes | str) -> Any:
    """A JSON body a route reads itself, or a 400 naming what is wrong: nested too deep, a lone surrogate, not
    JSON, or a number of more digits than Python converts (4300). The request middleware checks the first two
    for bodies sent as JSON only; a route that parses whatever it is sent must not rely on it."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    problem = json_body_problem(raw)
    if problem is not None:
        raise ValidationFailed(problem)
    try:
        return json.loads(raw)
    except RecursionError:  # (json_depth bounds it; kept so that no body can make it a 500)
        raise ValidationFailed(f"body: JSON nested deeper than {JSON_MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, and an integer of over 4300 digits
        raise ValidationFailed(f"Malformed JSON request body: {exc}") from None
