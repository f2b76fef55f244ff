"""Paging of teamsvoice's own lists (GET /audit, /drift, /numbers/reconciliation) and of the console's audit log:
`limit` (at most MAX_LIMIT a page) and `cursor`, an opaque token a page answers for the next one (`next` in the body
where the body is an object; a `Link: <url>; rel="next"` header on every list; neither on the last page).

A cursor is signed with the keyring (purpose `teamsvoice-cursor`): a client cannot change what it holds, and it names
the list and query it continues (the filters, the caller's scope): changed, made by anything else, or sent with other
filters, it is refused, 400 naming `cursor`. The domain pages by positions (an audit entry's time and id, a drift
event's id, a tenant and a number); this module only seals and opens them, as `api/fusion/paging.py` does Fusion's.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.security import Keyring
from teamsvoice.domain.audit import service as audit

PURPOSE = "teamsvoice-cursor"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR_LENGTH = 1024  # a position and a digest, signed, are far shorter


def _digest(list_name: str, context: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([list_name, context], sort_keys=True, default=str).encode()).hexdigest()[:24]


def seal(keyring: Keyring, list_name: str, context: dict[str, Any], position: dict[str, Any]) -> str:
    """A cursor for `position` (where the next page starts), valid only for `list_name` queried with `context`."""
    return keyring.sign({"p": position, "c": _digest(list_name, context)}, purpose=PURPOSE)


def unseal(keyring: Keyring, token: str, list_name: str, context: dict[str, Any], *,
           fields: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """The position a cursor holds; 400 naming `cursor` when it was not issued by this API, lacks one of `fields`
    (name: type) or belongs to another list or query."""
    payload = keyring.unsign(token, purpose=PURPOSE) if len(token) <= MAX_CURSOR_LENGTH else None
    position = payload.get("p") if payload is not None else None
    if not isinstance(position, dict) or not all(
            name in position and isinstance(position[name], kind) and not isinstance(position[name], bool)
            for name, kind in fields.items()):
        raise ValidationFailed("cursor: not a cursor this API issued (send the `next` of the page before, unchanged)")
    if payload.get("c") != _digest(list_name, context):
        raise ValidationFailed("cursor: it continues another query; send it with the same filters as the page that "
                               "answered it, or leave it out to start again")
    return {name: position[name] for name in fields}


def next_url(request: Request, token: str) -> str:
    """The request's own URL with `cursor` set to `token` (an `offset` dropped; its other query values as sent)."""
    return str(request.url.remove_query_params(["cursor", "offset"]).include_query_params(cursor=token))


def link_header(request: Request, token: str | None) -> dict[str, str]:
    """`Link: <next page's URL>; rel="next"` (RFC 8288), or nothing on the last page."""
    return {"Link": f'<{next_url(request, token)}>; rel="next"'} if token else {}


# --- the audit log's pages (GET /audit and the console's audit page) ---------------------------------------------

AUDIT = "audit"
_POSITION = {"at": str, "id": int, "t": int, "o": int, "d": str}


def _context(scope: frozenset[int], query: audit.AuditQuery) -> dict[str, Any]:
    """What an audit cursor continues: the filters and the reseller nodes read (not the page size)."""
    return {"scope": sorted(scope), "actor": query.actor, "tenant": query.tenant, "action": query.action,
            "since": query.since.isoformat() if query.since else None,
            "until": query.until.isoformat() if query.until else None}


@dataclass(frozen=True)
class AuditCursor:
    """Where an audit page starts (an entry's place, and the direction: `older` than it, or `newer`), the total the
    walk's first page counted and how many entries the walk showed before this page."""
    position: audit.AuditPosition
    newer: bool
    total: int
    shown: int


def seal_audit_cursor(keyring: Keyring, scope: frozenset[int], query: audit.AuditQuery, cursor: AuditCursor) -> str:
    return seal(keyring, AUDIT, _context(scope, query), {
        "at": cursor.position.at.isoformat(), "id": cursor.position.entry_id, "t": cursor.total,
        "o": cursor.shown, "d": "newer" if cursor.newer else "older"})


def open_audit_cursor(keyring: Keyring, scope: frozenset[int], query: audit.AuditQuery, token: str) -> AuditCursor:
    """The cursor's place (the console's audit pages use the same cursors); 400 naming `cursor` for another."""
    held = unseal(keyring, token, AUDIT, _context(scope, query), fields=_POSITION)
    try:
        at = datetime.fromisoformat(held["at"])
    except ValueError:
        raise ValidationFailed("cursor: not a cursor this API issued") from None
    if held["d"] not in ("older", "newer") or min(held["id"], held["t"], held["o"]) < 0:
        raise ValidationFailed("cursor: not a cursor this API issued")
    return AuditCursor(audit.AuditPosition(at, held["id"]), held["d"] == "newer", held["t"], held["o"])


@dataclass(frozen=True)
class AuditPage:
    entries: list[Any]  # the domain's AuditEntry rows, newest first
    total: int  # counted by the walk's first page
    shown: int  # how many entries the walk showed before this page
    next: str | None  # the cursor of the next page (older entries); None: this is the last
    previous: str | None  # the cursor of the page before (newer entries); None: this is the first


async def audit_page(session: AsyncSession, keyring: Keyring, scope: frozenset[int], query: audit.AuditQuery, *,
                     limit: int, offset: int | None = None, cursor: str | None = None) -> AuditPage:
    """A page of the audit log in `scope`, from `offset` or `cursor` (not both: 400 naming `offset`). The log is
    counted only on a page without a cursor (a COUNT over every matching entry); a cursor carries that count on, and
    its page reads only its own rows (keyset: next to an entry's time and id), however deep it lies."""
    if cursor is not None and offset is not None:
        raise ValidationFailed("offset: not with cursor (the cursor says where the page starts)")
    if cursor is None:
        page = await audit.list_entries(session, scope, query, limit=limit, offset=offset or 0, count=True)
        total, shown = page.total or 0, offset or 0
    else:
        at = open_audit_cursor(keyring, scope, query, cursor)
        page = await audit.list_entries(session, scope, query, limit=limit, older_than=None if at.newer else at.position,
                                        newer_than=at.position if at.newer else None)
        total, shown = at.total, (at.shown if page.newer is not None or not at.newer else 0)
    older = seal_audit_cursor(keyring, scope, query, AuditCursor(page.older, False, total, shown + len(page.entries))) \
        if page.older is not None else None
    newer = seal_audit_cursor(keyring, scope, query, AuditCursor(page.newer, True, total, max(0, shown - limit))) \
        if page.newer is not None else None
    return AuditPage(page.entries, total, shown, older, newer)
