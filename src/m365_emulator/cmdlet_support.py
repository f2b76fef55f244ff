"""What every emulated Teams cmdlet shares: PowerShell-style errors and parameter coercion.

Errors carry the FullyQualifiedErrorId (errorId), the ErrorCategory and the message the MicrosoftTeams
module shows; the cmdlet endpoint renders them as 400 {"error": {"errorId", "category", "message"}}."""

import re
from collections.abc import Callable
from typing import Any

from .store import Transaction


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_INT32_TEXT = re.compile(r"-?[0-9]{1,10}")  # (fullmatched; then the range is checked)


class CmdletError(Exception):
    def __init__(self, error_id: str, category: str, message: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.category = category
        self.message = message


Parameters = dict[str, Any]
Output = list[dict[str, Any]]
Cmdlet = Callable[[Transaction, str, Parameters], Output]


def ambiguous(cmdlet: str) -> CmdletError:
    return CmdletError(
        f"AmbiguousParameterSet,{cmdlet}", "InvalidArgument",
        "Parameter set cannot be resolved using the specified named parameters. One or more parameters issued "
        "cannot be used together or an insufficient number of parameters were provided.",
    )


def missing(cmdlet: str, name: str) -> CmdletError:
    """A mandatory parameter absent in a non-interactive session."""
    return CmdletError(
        f"MissingMandatoryParameter,{cmdlet}", "InvalidArgument",
        f"Cannot process command because of one or more missing mandatory parameters: {name}.",
    )


def null_or_empty(cmdlet: str, name: str) -> CmdletError:
    return CmdletError(
        f"ParameterArgumentValidationErrorNullNotAllowed,{cmdlet}", "InvalidData",
        f"Cannot validate argument on parameter '{name}'. The argument is null or empty. Provide an argument "
        "that is not null or empty, and then try the command again.",
    )


def not_found(identity: str) -> CmdletError:
    return CmdletError("ManagementObjectNotFound", "ObjectNotFound", f"Management object not found for identity '{identity}'.")


def string(cmdlet: str, parameters: Parameters, name: str, required: bool = False) -> str | None:
    if name not in parameters:
        if required:
            raise missing(cmdlet, name)
        return None
    value = parameters[name]
    if value is None or value == "":
        raise null_or_empty(cmdlet, name)
    if isinstance(value, (dict, list, bool)):
        raise _conversion(cmdlet, name, value, "System.String")
    return str(value)


def boolean(cmdlet: str, parameters: Parameters, name: str) -> bool | None:
    if name not in parameters:
        return None
    value = parameters[name]
    if not isinstance(value, bool):
        raise _conversion(cmdlet, name, value, "System.Boolean")
    return value


def integer(cmdlet: str, parameters: Parameters, name: str, low: int, high: int) -> int | None:
    if name not in parameters:
        return None
    value = parameters[name]
    # ASCII digits only: "²" passes isdigit (and int refuses it), int reads "١٠" as 10.
    if isinstance(value, str) and _INT32_TEXT.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not INT32_MIN <= value <= INT32_MAX:
        raise _conversion(cmdlet, name, value, "System.Int32")
    if not low <= value <= high:
        raise CmdletError(
            f"ParameterArgumentValidationError,{cmdlet}", "InvalidData",
            f"Cannot validate argument on parameter '{name}'. The {value} argument is "
            f"{'less than the minimum allowed range of ' + str(low) if value < low else 'greater than the maximum allowed range of ' + str(high)}. "
            "Supply an argument that is greater than or equal to "
            f"{low} and less than or equal to {high} and then try the command again.",
        )
    return value


def _conversion(cmdlet: str, name: str, value: Any, type_name: str) -> CmdletError:
    return CmdletError(
        f"ParameterArgumentTransformationError,{cmdlet}", "InvalidData",
        f"Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{value}\" to type "
        f"\"{type_name}\".",
    )


def _strings(cmdlet: str, name: str, value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) and item for item in items):
        raise _conversion(cmdlet, name, value, "System.String[]")
    return list(items)


def apply_list_change(cmdlet: str, name: str, current: list[str], value: Any) -> list[str]:
    """Multi-valued parameters take either a plain list (replace) or a hashtable @{Add=..; Remove=..;
    Replace=..}, case-insensitive keys, each a string or a list of strings. Values stay unique and
    keep their order, as the module's collections do."""
    if isinstance(value, dict):
        changes = {str(key).lower(): item for key, item in value.items()}
        unknown = set(changes) - {"add", "remove", "replace"}
        if unknown or not changes:
            raise CmdletError(
                f"ParameterArgumentTransformationError,{cmdlet}", "InvalidData",
                f"Cannot process argument transformation on parameter '{name}'. The hashtable may only contain "
                "the keys Add, Remove or Replace.",
            )
        result = list(current)
        if "replace" in changes:
            result = _strings(cmdlet, name, changes["replace"]) if changes["replace"] not in (None, []) else []
        for item in _strings(cmdlet, name, changes["remove"]) if "remove" in changes else []:
            if item.lower() in (existing.lower() for existing in result):
                result = [existing for existing in result if existing.lower() != item.lower()]
        for item in _strings(cmdlet, name, changes["add"]) if "add" in changes else []:
            if item.lower() not in (existing.lower() for existing in result):
                result.append(item)
        return result
    if value is None or value == []:
        return []
    result: list[str] = []
    for item in _strings(cmdlet, name, value):
        if item.lower() not in (existing.lower() for existing in result):
            result.append(item)
    return result
