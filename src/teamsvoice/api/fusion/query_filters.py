"""The `filters` query parameter of Fusion's lists. Spec 004 types it `array` and describes it as "an object
representing the conditions": one JSON object of conditions, or an array of condition objects, read the same way
by every list (the users, the resource accounts, the bulk jobs history); each list then checks its own conditions."""

import json
from typing import Any

from teamsvoice.core.errors import ValidationFailed


def filter_conditions(raw: str, example: str) -> dict[str, Any]:
    """The conditions of a `filters` query as one object: `raw` is a JSON object, or an array of objects whose
    conditions all apply (a condition given in two of them is a 400: which one would count is not said).
    `example` (a valid object of the list) is shown in the 400 for anything else."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise ValidationFailed(f"filters: must be a JSON object such as {example}") from None
    if isinstance(data, dict):
        return data
    if not isinstance(data, list):
        raise ValidationFailed(f"filters: must be a JSON object such as {example}, or an array of such objects")
    merged: dict[str, Any] = {}
    for entry in data:
        if not isinstance(entry, dict):
            raise ValidationFailed("filters: each condition must be an object")
        for name, value in entry.items():
            if name in merged:
                raise ValidationFailed(f"filters: {name} is given in two conditions")
            merged[name] = value
    return merged
