"""OData query options the emulator honours on collections: $top/$skiptoken paging with absolute
nextLinks, $select, a small $filter grammar, $search, $count."""

import base64
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from ..store import Document, public
from .errors import GraphError

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999

_STARTSWITH = re.compile(r"^startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)$", re.IGNORECASE)
_ENDSWITH = re.compile(r"^endswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)$", re.IGNORECASE)
_EQUALS = re.compile(r"^(\w+)\s+eq\s+(?:'((?:[^']|'')*)'|(true|false|null))$", re.IGNORECASE)
_ANY_EQUALS = re.compile(r"^(\w+)/any\(\s*(\w+)\s*:\s*\2(?:/(\w+))?\s+eq\s+'?([^')]*)'?\s*\)$", re.IGNORECASE)
_SEARCH_TERM = re.compile(r'"(\w+):([^"]*)"')

Predicate = Callable[[Document], bool]


def unsupported_query(message: str = "Unsupported Query.") -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def is_eventual(request: Request) -> bool:
    return request.headers.get("consistencylevel", "").lower() == "eventual"


def page_size(request: Request) -> int:
    raw = request.query_params.get("$top")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    # ASCII digits only: "²" passes isdigit (and int refuses it), "١٠" is read by int as 10.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.",
        )
    return int(raw)


def _split_and(expression: str) -> list[str]:
    return [part.strip() for part in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE) if part.strip()]


def _clause(clause: str, advanced: bool) -> Predicate:
    if match := _STARTSWITH.match(clause):
        name, prefix = match.group(1), match.group(2).replace("''", "'").lower()
        return lambda doc: str(doc.get(name) or "").lower().startswith(prefix)
    if match := _ENDSWITH.match(clause):
        if not advanced:
            raise unsupported_query(
                "Operator 'endsWith' is not supported because the 'ConsistencyLevel:eventual' header is missing. "
                "Refer to https://aka.ms/graph-docs/advanced-queries for more information"
            )
        name, suffix = match.group(1), match.group(2).replace("''", "'").lower()
        return lambda doc: str(doc.get(name) or "").lower().endswith(suffix)
    if match := _EQUALS.match(clause):
        name, text, literal = match.group(1), match.group(2), match.group(3)
        if literal is not None:
            expected: Any = {"true": True, "false": False, "null": None}[literal.lower()]
            return lambda doc: doc.get(name) == expected
        value = text.replace("''", "'").lower()
        return lambda doc: str(doc.get(name) or "").lower() == value
    if match := _ANY_EQUALS.match(clause):
        name, member, value = match.group(1), match.group(3), match.group(4).lower()

        def any_equals(doc: Document) -> bool:
            items = doc.get(name)
            if items is None:
                return False
            if not isinstance(items, list) or (member and not all(isinstance(item, dict) for item in items)):
                raise unsupported_query(
                    f"Invalid filter clause: the lambda '{name}/any(...)' needs a collection"
                    + (f" of objects with a property '{member}'." if member else ".")
                )
            return any(str(item.get(member) if member else item).lower() == value for item in items)

        return any_equals
    raise unsupported_query(f"Unsupported or invalid query filter clause specified: '{clause}'.")


def filter_predicate(request: Request) -> Predicate | None:
    expression = request.query_params.get("$filter")
    if not expression:
        return None
    advanced = is_eventual(request) and request.query_params.get("$count", "").lower() == "true"
    clauses = [_clause(clause, advanced) for clause in _split_and(expression)]
    return lambda doc: all(clause(doc) for clause in clauses)


def search_predicate(request: Request) -> Predicate | None:
    expression = request.query_params.get("$search")
    if expression is None:
        return None
    if not is_eventual(request):
        raise unsupported_query(
            "Request with $search query parameter only works through MSGraph with a special request header: "
            "'ConsistencyLevel: eventual'"
        )
    terms = _SEARCH_TERM.findall(expression)
    if not terms:
        raise bad_search(expression)

    def matches(doc: Document) -> bool:
        # Directory search is tokenized: a term matches the start of any word of the property.
        for name, term in terms:
            words = re.split(r"[\s.@_\-]+", str(doc.get(name) or "").lower())
            if any(word.startswith(term.lower()) for word in words if word):
                return True
        return False

    return matches


def bad_search(expression: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", f"Invalid search expression: {expression}")


def select_fields(request: Request, allowed: frozenset[str], type_name: str) -> list[str] | None:
    raw = request.query_params.get("$select")
    if not raw:
        return None
    fields = [name.strip() for name in raw.split(",") if name.strip()]
    for name in fields:
        if name not in allowed:
            raise GraphError(
                400, "Request_BadRequest", f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
            )
    return fields


def project(doc: Document, fields: list[str] | None, default: list[str] | None) -> Document:
    visible = public(doc)
    chosen = fields if fields is not None else default
    if chosen is None:
        return visible
    if "id" not in chosen and fields is None:
        chosen = ["id", *chosen]
    return {name: visible.get(name) for name in chosen}


def _decode_skiptoken(token: str) -> int:
    """The offset a token of `_encode_skiptoken` holds: a whole number >= 0, else the token is not ours."""
    try:
        offset = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["o"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise _bad_skiptoken() from exc
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:  # (1e400 is a float: infinity)
        raise _bad_skiptoken()
    return offset


def _bad_skiptoken() -> GraphError:
    return GraphError(400, "Request_BadRequest", "The specified page token value has expired or is invalid.")


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).rstrip(b"=").decode()


def collection(
    request: Request,
    base_url: str,
    context: str,
    items: list[Document],
    render: Callable[[Document], Document],
) -> dict[str, Any]:
    """One page of a collection with @odata.context, optional @odata.count and an absolute nextLink
    that keeps the request's other query options."""
    size = page_size(request)
    token = request.query_params.get("$skiptoken")
    offset = _decode_skiptoken(token) if token else 0
    page = items[offset : offset + size]
    body: dict[str, Any] = {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{context}"}
    if request.query_params.get("$count", "").lower() == "true":
        body["@odata.count"] = len(items)
    if offset + size < len(items):
        params = [(key, value) for key, value in request.query_params.multi_items() if key != "$skiptoken"]
        params.append(("$skiptoken", _encode_skiptoken(offset + size)))
        body["@odata.nextLink"] = f"{base_url}{request.url.path}?{urlencode(params, safe='$,()')}"
    body["value"] = [render(item) for item in page]
    return body
