"""Request bodies as JSON, read the one way Graph's routes and the cmdlet endpoint both read them.

Python's parser takes more than JSON: NaN, Infinity and -Infinity (and a number too large for a float, read
as infinity), escapes of lone UTF-16 surrogates ("\\ud800", which no UTF-8 response can then carry: a value
stored with one broke every later read of it), and nesting as deep as its stack (RecursionError). Microsoft's
services refuse all of these as a bad request; `loads` raises `UnreadableJson`, whose message names the
problem, for each, before anything is stored."""

import json
import math
import re
from typing import Any

MAX_DEPTH = 100  # Microsoft's OData reader's default nesting limit (MessageQuotas.MaxNestingDepth)

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")  # its escape, or its UTF-8 bytes


class UnreadableJson(ValueError):
    """The body is not JSON a Microsoft service reads; the message says why."""


def _constant(name: str) -> Any:
    raise UnreadableJson(f"'{name}' is not a JSON value (JSON has no NaN or Infinity).")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise UnreadableJson(f"The number {text[:40]} is out of range.")
    return value


def loads(raw: bytes | str) -> Any:
    """The parsed body, or UnreadableJson: not JSON, NaN/Infinity, a number out of range, nested deeper than
    MAX_DEPTH, a lone surrogate in a key or a string."""
    try:
        value = json.loads(raw, parse_constant=_constant, parse_float=_finite)
    except UnreadableJson:
        raise
    except RecursionError:
        raise UnreadableJson(f"The JSON is nested deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of more digits than int reads
        raise UnreadableJson(f"{str(exc)[:200]}.") from None
    if _may_hold_a_problem(raw):
        _check(value)
    return value


def _may_hold_a_problem(raw: bytes | str) -> bool:
    """Whether the parsed value must be walked: its text may hold a surrogate (as an escape, or encoded) or
    nest deeper than MAX_DEPTH. Most bodies are a few UTF-8 properties: a scan of their bytes is all they
    cost."""
    if not isinstance(raw, bytes) or json.detect_encoding(raw) not in ("utf-8", "utf-8-sig"):
        return True
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH or _MAYBE_SURROGATE.search(raw) is not None


def _check(value: Any) -> None:
    """Depth and lone surrogates, walked without recursion (the value may nest as deep as the parser went)."""
    pending: list[tuple[Any, int, str]] = [(value, 0, "")]
    while pending:
        item, depth, top = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise _surrogate(top)
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise UnreadableJson(f"The JSON is nested deeper than {MAX_DEPTH} levels.")
            if isinstance(item, dict):
                for key, child in item.items():
                    # named by its first three keys ('parameters.Description', 'requests.body.jobTitle')
                    name = key if not top else f"{top}.{key}" if top.count(".") < 2 else top
                    if _SURROGATE.search(key):
                        raise _surrogate(name, key=True)
                    pending.append((child, depth + 1, name))
            else:
                pending.extend((child, depth + 1, top) for child in item)


def _surrogate(name: str, key: bool = False) -> UnreadableJson:
    shown = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", name[:80])  # (no response can carry them)
    where = f"The property name '{shown}'" if key else f"The value of '{shown}'" if name else "The body"
    return UnreadableJson(f"{where} holds a lone UTF-16 surrogate (\\ud800-\\udfff): not valid Unicode text.")

