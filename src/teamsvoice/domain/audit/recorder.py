"""Every change of an audited table becomes an audit entry in the same transaction, whoever made it.

Two SQLAlchemy hooks on every ORM `Session` of the process (API requests, the console, job steps, the CLI):
- `after_flush`: inserted, updated and deleted objects, with their values before and after (attribute history);
- `do_orm_execute`: bulk `update(Model)...` / `delete(Model)...` statements, whose rows are read just before.
The rows go in on the flush's own connection, so an entry exists exactly when its change is committed. The
actor is the open `AuditScope` (domain/audit/context.py), else the running job, else the CLI's operator
(`teamsvoice --actor`, default `cli:<OS user>`), else "system".

Tables are classified in AGGREGATES (audited, with the fields whose change alone is progress, not a change),
SIGN_INS (a new token or session is a sign-in) or EXEMPT (bookkeeping); a table in none of them is still
audited under its table name, and tests/console/test_audit_coverage.py insists every table is classified.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.session import ORMExecuteState

from teamsvoice.core.clock import utcnow
from teamsvoice.domain.audit import context, repository

MASK = "***"
LONG_TEXT = 1000
SECRET_WORDS = ("password", "secret", "token", "digest", "hash", "encrypted", "nonce", "state_key", "credential")


@dataclass(frozen=True)
class Aggregate:
    name: str
    label: tuple[str, ...] = ()
    progress: frozenset[str] = frozenset()  # fields whose change alone records nothing (counters, timestamps)


_STAMPS = frozenset({"updated_at", "updated_on"})
AGGREGATES: dict[str, Aggregate] = {
    "resellers": Aggregate("reseller", ("name",)),
    "enterprises": Aggregate("enterprise", ("enterprise_name",), _STAMPS),
    "portal_users": Aggregate("login", ("username",)),
    "api_clients": Aggregate("api_client", ("client_id",)),
    "pbx_types": Aggregate("pbx_type", ("pbx_name",)),
    "sbc_gateways": Aggregate("sbc_gateway", ("fqdn",)),
    "teams_voice_users": Aggregate("teams_user", ("user_principal_name",), _STAMPS | {
        "last_sync_status", "last_sync_detail", "last_synced_at", "pending_change"}),
    "enterprise_consents": Aggregate("consent", ("consent_name",)),
    "action_requests": Aggregate("consent_link", ("action_type",)),
    "direct_routes": Aggregate("direct_route", ("gateway_fqdn",), frozenset({"last_changes", "provisioned_at"})),
    "pbx_locations": Aggregate("pbx_location", ("pbx_location",), _STAMPS),
    "pbx_users": Aggregate("pbx_user", ("pbx_user_id", "phone_number"), _STAMPS),
    "teams_app_templates": Aggregate("teams_app_template", ("app_type",), _STAMPS),
    "callapp_service_accounts": Aggregate("service_account", ("user_principal_name",)),
    "calling_jobs": Aggregate("calling_job", ("kind",), frozenset({"total", "results", "detail", "finished_at"})),
    "fusion_tenants": Aggregate("tenant", ("name",), _STAMPS),
    "fusion_subscriptions": Aggregate("subscription", ("name",)),
    "fusion_users": Aggregate("login", ("username",)),
    "fusion_user_profiles": Aggregate("login_profile", ("email",), _STAMPS),
    "fusion_numbers": Aggregate("number", ("e164",)),
    "fusion_number_locations": Aggregate("number_location"),
    "fusion_group_filters": Aggregate("group_filter", ("display_name",)),
    "fusion_msteams_admins": Aggregate("teams_admin", ("ms_username",), _STAMPS),
    "fusion_locations": Aggregate("location", ("company_name", "city"), _STAMPS),
    "fusion_wizard_runs": Aggregate("onboarding_wizard", (), frozenset({"steps", "running", "finished_at"})),
    "fusion_templates": Aggregate("template", ("name",), _STAMPS),
    "fusion_resource_accounts": Aggregate("resource_account", ("user_principal_name",), _STAMPS),
    "fusion_user_licences": Aggregate("teams_user_licences"),
    "fusion_bulk_jobs": Aggregate("bulk_job", ("title",), _STAMPS | {"success_count", "error_count", "total_count"}),
    "voice_apply_jobs": Aggregate("voice_apply_job", ("trigger",), frozenset({"results", "finished_at"})),
    "voice_drift_settings": Aggregate("drift_settings", (), frozenset({"last_scan_at", "last_scan_error"})),
    "voice_drift_webhooks": Aggregate("drift_webhook", ("url",)),
    "voice_number_quarantine": Aggregate("number_quarantine", ("e164",)),
}
# A new row here is somebody signing in (the login is named by the row); other changes are bookkeeping.
SIGN_INS: dict[str, tuple[str, str]] = {
    "oauth_tokens": ("portal_user_id", "portal_users"),
    "fusion_sessions": ("user_id", "fusion_users"),
}
EXEMPT = frozenset({
    "audit_log",  # itself
    "login_throttles", "job_executors",  # counters and heartbeats
    "console_signouts",  # ended console cookies, kept until they would have expired
    "webhook_deliveries", "voice_drift_deliveries",  # outgoing notifications and their retries
    "voice_drift_events",  # what a scan saw in Microsoft, not a change made through us (the Tenant page shows them)
    "fusion_bulk_items",  # per-row progress of a bulk job; the rows' effects are recorded on the users themselves
    "calling_job_results",  # a calling job's per-user progress; its effects are recorded on the users themselves
    "microsoft_budget_buckets",  # counters of Microsoft's request budgets (microsoft/budget.py)
})


def is_secret(key: str) -> bool:
    key = key.lower()
    return any(word in key for word in SECRET_WORDS)


def plain(value: Any, key: str = "") -> Any:
    """A JSON value for `value`, with secrets masked (by field name, also inside JSON documents)."""
    if key and is_secret(key):
        return None if value in (None, "") else MASK
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, dict):
        return {str(k): plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return f"{value[:120]}… ({len(value)} characters)"  # an image or document: its start and size, not all of it
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --- who owns what ---------------------------------------------------------------------------------------


class _Rows:
    """Rows read for owner resolution during one flush: objects of the flush first, then the rows this session
    already read for an earlier flush (a bulk item's transaction flushes its user twice: one read of the
    enterprise, not two), then the database."""

    def __init__(self, session: Session, objects: list[Any]) -> None:
        self.session = session
        self.known: dict[tuple[str, Any], dict[str, Any]] = {}
        self.read = _session_reads(session)
        for obj in objects:
            table = obj.__class__.__tablename__
            values = _values(obj)
            if "id" in values:
                self.known[(table, values["id"])] = values
                self.read.pop((table, values["id"]), None)  # changed in this session: its read is not current

    def get(self, table: str, key: Any) -> dict[str, Any] | None:
        if key is None:
            return None
        found = self.known.get((table, key))
        if found is None:
            found = self.read.get((table, key))
        if found is None:
            mapped = _TABLES.get(table)
            if mapped is None:
                return None
            found = self.read[(table, key)] = repository.row_by_id(self.session, mapped, key) or {}
        return found or None


def _session_reads(session: Session) -> dict[tuple[str, Any], dict[str, Any]]:
    """The owner rows `session` has read or been given ((table, id) -> the row's values), kept for its later flushes."""
    return session.info.setdefault("audit_owner_rows", {})  # type: ignore[no-any-return]


def known_rows(session: Session, *objects: Any) -> None:
    """Rows the caller holds, read moments ago, taken as they are when a flush of `session` names an entry's owner
    (`_Rows`): a bulk item's enterprise (its job's items share one read of it, at most seconds old) is not read
    again in each item's transaction, one statement of about 25 per user. The entry's owner (reseller, customer
    name, tenant) is then that read's."""
    read = _session_reads(session)
    for obj in objects:
        state = inspect(obj)
        if state.unloaded & {attr.key for attr in state.mapper.column_attrs}:
            continue  # a column not loaded (expired, deferred): the row is read as before
        values = _values(obj)
        if "id" in values:
            read.setdefault((obj.__class__.__tablename__, values["id"]), values)


def _tables() -> dict[str, Any]:
    from teamsvoice.core.db import Base

    return dict(Base.metadata.tables)


class _LazyTables(dict):  # type: ignore[type-arg]
    def get(self, key: Any, default: Any = None) -> Any:
        if not self:
            self.update(_tables())
        return super().get(key, default)


_TABLES = _LazyTables()


@dataclass
class Owner:
    reseller_id: int | None = None
    enterprise_id: int | None = None
    customer: str | None = None
    tenant: str | None = None


def _owner(rows: _Rows, table: str, values: dict[str, Any], depth: int = 0) -> Owner:
    if table == "enterprises":
        return Owner(values.get("reseller_id"), values.get("id"), values.get("enterprise_name"), values.get("tenant_id"))
    if table == "resellers":
        return Owner(values.get("parent_id") or values.get("id"))
    if table == "fusion_tenants":  # a Fusion tenant before (or without) a subscription: the customer is the tenant
        return Owner(values.get("owner_reseller_id"), None, values.get("name"))
    if values.get("enterprise_id") is not None:
        enterprise = rows.get("enterprises", values["enterprise_id"])
        if enterprise is not None:
            return _owner(rows, "enterprises", enterprise)
    for column in ("reseller_id", "owner_reseller_id"):
        if values.get(column) is not None:
            return Owner(values[column])
    if depth < 4:
        mapped = _TABLES.get(table)
        for column in mapped.columns if mapped is not None else ():
            for key in column.foreign_keys:
                target = key.column.table.name
                parent = rows.get(target, values.get(column.key)) if target not in ("audit_log",) else None
                if parent is not None:
                    found = _owner(rows, target, parent, depth + 1)
                    if found.reseller_id is not None:
                        return found
    return Owner()


# --- entries ---------------------------------------------------------------------------------------------


def _values(obj: Any) -> dict[str, Any]:
    state = inspect(obj)
    return {attr.key: state.dict[attr.key] for attr in state.mapper.column_attrs if attr.key in state.dict}


def _label(aggregate: Aggregate, values: dict[str, Any]) -> str | None:
    parts = [str(values[f]) for f in aggregate.label if values.get(f) not in (None, "")]
    return " ".join(parts)[:400] if parts else None


def acting_scope() -> context.AuditScope:
    return context.current() or context.job_scope() or context.operator() or context.AuditScope(
        family=context.SYSTEM, actor=context.Actor(name="system"))


def entry_values(scope: context.AuditScope, owner: Owner, *, action: str, aggregate: str, object_id: Any,
           label: str | None, before: dict[str, Any] | None, after: dict[str, Any] | None,
           actor: context.Actor | None = None) -> dict[str, Any]:
    who = actor or scope.actor or context.Actor(name="anonymous")
    return {"at": utcnow(), "family": scope.family, "actor": who.label()[:255], "actor_login_id": who.login_id,
            "actor_reseller_id": who.reseller_id, "on_behalf_of": who.on_behalf_of, "source": (scope.source or "")[:400] or None,
            "request_id": scope.request_id, "source_ip": scope.source_ip, "action": action, "aggregate": aggregate,
            "object_id": None if object_id is None else str(object_id)[:255], "object_label": label,
            "owner_reseller_id": owner.reseller_id if owner.reseller_id is not None else who.reseller_id,
            "enterprise_id": owner.enterprise_id, "customer": (owner.customer or None) and owner.customer[:255],
            "tenant": owner.tenant, "before": before, "after": after}


def _write(session: Session, scope: context.AuditScope, entries: list[dict[str, Any]]) -> None:
    if entries:
        repository.insert_entries(session, entries)
        scope.recorded += len(entries)


def _sign_in(rows: _Rows, scope: context.AuditScope, table: str, values: dict[str, Any]) -> dict[str, Any] | None:
    column, login_table = SIGN_INS[table]
    if table == "oauth_tokens" and values.get("kind") != "access":
        return None
    login = rows.get(login_table, values.get(column))
    if login is None:
        return None
    family = context.CONNECTTOTEAMS if login_table == "portal_users" else context.FUSION
    actor = context.Actor(name=login["username"], login_family=family, login_id=login["id"],
                          reseller_id=login.get("reseller_id"))
    return entry_values(scope, _owner(rows, login_table, login), action="login.sign_in", aggregate="login",
                  object_id=login["id"], label=login["username"], before=None, after=None, actor=actor)


def _aggregate(table: str) -> Aggregate:
    return AGGREGATES.get(table) or Aggregate(table)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    new, dirty, deleted = list(session.new), list(session.dirty), list(session.deleted)
    if not (new or dirty or deleted):
        return
    scope = acting_scope()
    rows = _Rows(session, [*new, *dirty, *deleted])
    entries: list[dict[str, Any]] = []
    for obj in new:
        table = getattr(obj, "__tablename__", None)
        if table is None or table in EXEMPT:
            continue
        values = _values(obj)
        if table in SIGN_INS:
            if (entry := _sign_in(rows, scope, table, values)) is not None:
                entries.append(entry)
            continue
        aggregate = _aggregate(table)
        entries.append(entry_values(scope, _owner(rows, table, values), action=f"{aggregate.name}.create",
                              aggregate=aggregate.name, object_id=values.get("id"), label=_label(aggregate, values),
                              before=None, after={k: plain(v, k) for k, v in values.items()}))
    for obj in dirty:
        table = getattr(obj, "__tablename__", None)
        if table is None or table in EXEMPT or table in SIGN_INS or not session.is_modified(obj, include_collections=False):
            continue
        aggregate = _aggregate(table)
        state = inspect(obj)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for attr in state.mapper.column_attrs:
            history = state.attrs[attr.key].history
            if not history.added and not history.deleted:
                continue
            old = history.deleted[0] if history.deleted else None
            new_value = history.added[0] if history.added else None
            if history.deleted and old == new_value:
                continue
            before[attr.key], after[attr.key] = plain(old, attr.key), plain(new_value, attr.key)
        if not set(after) - aggregate.progress:
            continue
        values = _values(obj)
        entries.append(entry_values(scope, _owner(rows, table, values), action=f"{aggregate.name}.update",
                              aggregate=aggregate.name, object_id=values.get("id"), label=_label(aggregate, values),
                              before=before, after=after))
    for obj in deleted:
        table = getattr(obj, "__tablename__", None)
        if table is None or table in EXEMPT or table in SIGN_INS:
            continue
        aggregate = _aggregate(table)
        values = _values(obj)
        entries.append(entry_values(scope, _owner(rows, table, values), action=f"{aggregate.name}.delete",
                              aggregate=aggregate.name, object_id=values.get("id"), label=_label(aggregate, values),
                              before={k: plain(v, k) for k, v in values.items()}, after=None))
    _write(session, scope, entries)


@event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state: ORMExecuteState) -> None:
    """`update(Model).where(...).values(...)` and `delete(Model).where(...)`: the rows they touch, read first."""
    if not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return
    table = state.bind_mapper.local_table.name
    if table in EXEMPT or table in SIGN_INS:
        return
    statement = state.statement
    mapped = _TABLES.get(table)
    if mapped is None:
        return
    aggregate = _aggregate(table)
    changes: dict[str, Any] = {}
    if state.is_update:
        for column, value in getattr(statement, "_values", {}).items():
            key = getattr(column, "key", str(column))
            if getattr(value, "key", None) == key and not hasattr(value, "value"):
                continue  # `SET id = id`: a row lock (orgs/repository._locked), no change
            changes[key] = plain(getattr(value, "value", None), key)
        if not set(changes) - aggregate.progress:
            return
    session = state.session
    touched = repository.rows_matching(session, mapped, statement.whereclause)  # type: ignore[attr-defined]
    if not touched:
        return
    scope = acting_scope()
    rows = _Rows(session, [])
    for row in touched:
        rows.known[(table, row.get("id"))] = row
    entries = []
    for row in touched:
        before = {k: plain(row.get(k), k) for k in changes} if state.is_update else {k: plain(v, k) for k, v in row.items()}
        entries.append(entry_values(scope, _owner(rows, table, row), action=f"{aggregate.name}.{'update' if state.is_update else 'delete'}",
                              aggregate=aggregate.name, object_id=row.get("id"), label=_label(aggregate, row),
                              before=before, after=dict(changes) if state.is_update else None))
    _write(session, scope, entries)
