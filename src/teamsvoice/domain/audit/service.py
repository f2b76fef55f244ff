"""Reading the audit log (scoped, filtered, paged, as CSV) and the few entries no row change makes:
a write call that changed no row of ours, and a console sign-in."""

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import NotFound, ValidationFailed
from teamsvoice.core.spreadsheet import csv_writer
from teamsvoice.domain.audit import context, repository
from teamsvoice.domain.audit.models import AuditEntry
from teamsvoice.domain.audit.recorder import Owner, acting_scope, entry_values, plain

MAX_PAGE = 500
CSV_COLUMNS = ("at", "family", "actor", "on_behalf_of", "source", "action", "object", "customer", "tenant",
               "request_id", "source_ip", "before", "after")


async def record_call_if_silent(session: AsyncSession) -> None:
    """Before the request's commit: a successful write call that changed no row of ours (Microsoft-only work)
    still gets its entry, so no write route goes unrecorded."""
    scope = context.current()
    if scope is None or not scope.needs_call_entry:
        return
    await session.flush()  # pending changes are recorded first: the call entry is only for a call that changed none
    if not scope.needs_call_entry:
        return
    entry = entry_values(scope, Owner(), action="call", aggregate="route", object_id=None, label=scope.route,
                   before=None, after=None)
    session.add(AuditEntry(**entry))
    await session.flush()
    scope.recorded += 1


async def record_sign_in(session: AsyncSession, *, family: str, login_id: int, username: str, reseller_id: int | None) -> None:
    """A console sign-in (the APIs' sign-ins are recorded from the token or session they create)."""
    scope = context.current() or context.AuditScope(family=context.CONSOLE)
    actor = context.Actor(name=username, login_family=family, login_id=login_id, reseller_id=reseller_id)
    entry = entry_values(scope, Owner(reseller_id), action="login.sign_in", aggregate="login", object_id=login_id,
                   label=username, before=None, after=None, actor=actor)
    session.add(AuditEntry(**entry))
    await session.flush()


async def record_action(session: AsyncSession, owner: Owner, *, action: str, aggregate: str, object_id: Any,
                        label: str | None, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    """An entry for an action that no audited row records by itself (e.g. a job retried or cancelled, whose
    rows may be bookkeeping), made by whoever acts now (the request, the job or the CLI's operator)."""
    session.add(AuditEntry(**entry_values(acting_scope(), owner, action=action, aggregate=aggregate,
                                          object_id=object_id, label=label, before=before, after=after)))
    await session.flush()


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    tenant: str | None = None  # customer name or Microsoft tenant id (substring)
    action: str | None = None  # e.g. "number" or "teams_user.update" (prefix)
    since: datetime | None = None
    until: datetime | None = None


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"{name}: expected a date or date-time like 2026-12-01 or 2026-12-01T18:30") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def make_query(*, actor: str | None = None, tenant: str | None = None, action: str | None = None,
               since: str | None = None, until: str | None = None) -> AuditQuery:
    for name, value in (("actor", actor), ("tenant", tenant), ("action", action)):
        if value is not None and len(value) > 200:
            raise ValidationFailed(f"{name}: at most 200 characters")
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start is not None and end is not None and end < start:
        raise ValidationFailed("until: must not be before since")
    return AuditQuery((actor or "").strip() or None, (tenant or "").strip() or None, (action or "").strip() or None, start, end)


@dataclass(frozen=True)
class AuditPosition:
    """A place in the log (newest first, entries of one time ordered by id): next to the entry recorded at `at`
    with the id `entry_id`. A page that starts there reads only its own rows, however deep in the log it lies."""
    at: datetime
    entry_id: int

    @classmethod
    def of(cls, entry: AuditEntry) -> "AuditPosition":
        return cls(entry.at, entry.id)


@dataclass(frozen=True)
class EntriesPage:
    entries: list[AuditEntry]
    total: int | None  # how many match in all: counted only when asked for (a first page)
    older: AuditPosition | None  # where the next page, of older entries, starts; None: none are older
    newer: AuditPosition | None  # where a page of the newer entries before this one ends; None: none are newer


async def list_entries(session: AsyncSession, scope_ids: Iterable[int], query: AuditQuery, *, limit: int,
                       offset: int = 0, older_than: AuditPosition | None = None,
                       newer_than: AuditPosition | None = None, count: bool = False) -> EntriesPage:
    """Newest first, at most `limit`: from `offset`, or the entries older than `older_than` (the next page), or the
    `limit` entries just newer than `newer_than` (the page before). `scope_ids`: the reseller nodes whose customers'
    entries the caller may read. The whole log is counted only with `count` (a COUNT over every matching entry:
    asked for on a first page, not on every page)."""
    if offset < 0:
        raise ValidationFailed("offset: must be 0 or more")
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(f"limit: must be between 1 and {MAX_PAGE}")
    if sum((bool(offset), older_than is not None, newer_than is not None)) > 1:
        raise ValidationFailed("offset: a page starts at an offset or at a position, not both")
    ids = list(scope_ids)
    rows = await repository.entries_page(
        session, ids, query, limit + 1, offset=offset,
        older_than=(older_than.at, older_than.entry_id) if older_than is not None else None,
        newer_than=(newer_than.at, newer_than.entry_id) if newer_than is not None else None)
    if newer_than is not None:  # newest first: the `limit` next to the position are the last ones
        entries, more_newer, more_older = rows[-limit:], len(rows) > limit, bool(rows)
    else:
        entries, more_older = rows[:limit], len(rows) > limit
        more_newer = bool(entries) and (offset > 0 or older_than is not None)
    total = await repository.count_entries(session, ids, query) if count else None
    return EntriesPage(entries, total, AuditPosition.of(entries[-1]) if more_older and entries else None,
                       AuditPosition.of(entries[0]) if more_newer and entries else None)


def render(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at.isoformat(), "family": entry.family, "actor": entry.actor,
            "onBehalfOf": entry.on_behalf_of, "source": entry.source, "requestId": entry.request_id,
            "sourceIp": entry.source_ip, "action": entry.action, "aggregate": entry.aggregate,
            "objectId": entry.object_id, "object": entry.object_label, "enterpriseId": entry.enterprise_id,
            "customer": entry.customer, "tenant": entry.tenant, "before": plain(entry.before), "after": plain(entry.after)}


def changes(entry: AuditEntry) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for display: every field either side names."""
    before, after = entry.before or {}, entry.after or {}
    return [(key, before.get(key), after.get(key)) for key in sorted(set(before) | set(after))
            if key != "id" and (before.get(key) is not None or after.get(key) is not None)]


async def entries_csv(session: AsyncSession, scope_ids: Iterable[int], query: AuditQuery, *, limit: int = 10_000) -> str:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(CSV_COLUMNS)
    for entry in await repository.newest_entries(session, scope_ids, query, limit):
        writer.writerow([entry.at.isoformat(), entry.family, entry.actor, entry.on_behalf_of or "", entry.source or "",
                         entry.action, entry.object_label or entry.object_id or "", entry.customer or "", entry.tenant or "",
                         entry.request_id or "", entry.source_ip or "",
                         json.dumps(plain(entry.before), sort_keys=True) if entry.before is not None else "",
                         json.dumps(plain(entry.after), sort_keys=True) if entry.after is not None else ""])
    return out.getvalue()


async def entry_in_scope(session: AsyncSession, scope_ids: Iterable[int], entry_id: int) -> AuditEntry:
    """One entry, if it is about a customer in the caller's scope (else "not found", as for anything out of scope)."""
    entry = await repository.entry_in_scope(session, scope_ids, entry_id)
    if entry is None:
        raise NotFound(f"Audit entry {entry_id} not found")
    return entry
