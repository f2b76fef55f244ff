"""Bulk update of MS Teams users (spec 004 "Bulk update MS Teams users", and section 3 of issue 5).

A job is recorded with one row per item before anything is applied; a durable workflow
(`teams_users/workflows.py`) then applies the items in batches. Each item ends exactly once: its row moves
from `pending` (or from `cancelled`, when the job was cancelled while the item was in flight: `_settle`) to
`success`/`error` in a conditional UPDATE that also counts it on the job, and applying an item again after a
crash leaves Microsoft as one run would (every step compares before it changes).
Items are streamed in and out in pages, so memory stays flat whatever the job's size.
"""

import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import read_again_while_transient, single_statement, transaction
from teamsvoice.core.errors import Conflict, DomainError, NotFound, ValidationFailed, describe
from teamsvoice.core.ids import new_uuid
from teamsvoice.core.limits import check_name
from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.teams_users import repository_bulk, repository_bulk_run, service, templates
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob
from teamsvoice.jobs.runtime import unit_failure
from teamsvoice.microsoft.directory_ports import DirectoryAdministration, DirectoryUser
from teamsvoice.microsoft.ports import TenantConnection


MAX_ITEMS = 10_000
INSERT_CHUNK = 500
BULK_NOT_FOUND = "bulk_job_not_found"
# A bulk item's `data` as stored (the names the client sent, Fusion's bulk item object; renaming them would
# need a migration of the stored rows) -> the UserUpdate field it sets (None: not a change).
ITEM_KEYS = {"upn": None, "displayName": "display_name", "number": "phone_number", "country": "location",
             "vrp": "vrp", "groups": "groups", "licenses": "licenses", "customerLicenses": "customer_licenses",
             "template": None}
FINAL = ("success", "partial", "error", "cancelled")
BULK_ENDED = "bulk_job_ended"
# What spec 004's "MS Teams User Bulk Object" marks required besides `upn`: Fusion's bulk refuses an item without it.
# teamsvoice's own CSV (console, `teamsvoice bulk import`) leaves the display name out when its cell is empty: a row
# changes only what it names (bulk_csv.COLUMNS).
SPEC_REQUIRED = ("displayName",)


def _check_items(data: Any, required: Sequence[str] = ()) -> None:
    if not isinstance(data, list) or not data:
        raise ValidationFailed("data: must be a non-empty list of MS Teams user objects")
    if len(data) > MAX_ITEMS:
        raise ValidationFailed(f"data: at most {MAX_ITEMS} users per bulk job")
    seen: set[str] = set()
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValidationFailed(f"data[{index}]: must be an object")
        upn = item.get("upn")
        if not isinstance(upn, str) or "@" not in upn:
            raise ValidationFailed(f"data[{index}].upn: a user principal name (name@domain) is required")
        if upn.lower() in seen:
            raise ValidationFailed(f"data[{index}].upn: {upn} appears twice in the job")
        seen.add(upn.lower())
        for field in required:
            value = item.get(field)
            if not isinstance(value, str) or not value.strip():
                raise ValidationFailed(f"data[{index}].{field}: required (a non-empty string)")


def new_job_id() -> str:
    """The vendor's `job_id` is a string of digits (its creation second); ours starts with the second and
    continues with 9 random digits, so jobs submitted in the same second do not share one."""
    return f"{int(time.time())}{secrets.randbelow(10**9):09d}"


def job_name(name: str) -> str:
    """A bulk job's name as it is stored: required, stripped, a name as every stored one (`core.limits.check_name`: at
    most 200 characters, no control characters); else a 400 naming `name`. The CLI checks `--name` with it before a
    dry run too."""
    if not name.strip():
        raise ValidationFailed("name: a bulk job descriptive name is required")
    return check_name("name", name.strip())


async def create_job(session: AsyncSession, access: SubscriptionAccess, name: str, data: Any, *,
                     required: Sequence[str] = ()) -> FusionBulkJob:
    """Records the job named `name` and all its items (`data`: a list of item objects keyed as `ITEM_KEYS`
    and `upn`; not yet applied), or refuses the whole job (a 400 naming the item's index and field) before
    anything is written: `name` as `job_name` takes it, every item needs `upn` and each field of `required` (Fusion's
    bulk: SPEC_REQUIRED).
    The caller commits, then starts the workflow."""
    await access.lock_linked(session)
    title = job_name(name)
    _check_items(data, required)
    job = FusionBulkJob(subscription_id=access.subscription.id, title=title, kind="ms_users",
                        job_id=new_job_id(), total_count=len(data), status="queued")
    session.add(job)
    await session.flush()
    for start in range(0, len(data), INSERT_CHUNK):
        session.add_all([FusionBulkItem(job_id=job.id, position=start + offset, upn=item["upn"], data=item,
                                        status="pending", attempts=0)
                         for offset, item in enumerate(data[start:start + INSERT_CHUNK])])
        await session.flush()
        session.expunge_all()  # keep the session's identity map small while large jobs go in
        session.add(job)
    return job


async def load_access(session: AsyncSession, subscription_id: int) -> SubscriptionAccess:
    """The subscription as jobs see it (the caller's rights were checked when the job was accepted)."""
    subscription = await session.get(FusionSubscription, subscription_id)
    if subscription is None:
        raise NotFound(f"Subscription {subscription_id} not found")
    tenant = await session.get(FusionTenant, subscription.fusion_tenant_id)
    enterprise = await session.get(Enterprise, subscription.enterprise_id)
    assert tenant is not None and enterprise is not None
    return SubscriptionAccess(None, tenant, subscription, enterprise)  # type: ignore[arg-type]


def parse_item(data: dict[str, Any]) -> service.UserUpdate:
    """The changes a stored item asks for, without its template (`service.parse_changes` under the item's
    names); a refusal carries the item's code unless the parser named a more precise one."""
    unknown = set(data) - set(ITEM_KEYS)
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field", code=service.INVALID_ITEM)
    fields = {name: field for name, field in ITEM_KEYS.items() if field}
    try:
        return service.parse_changes({field: data[name] for name, field in fields.items() if name in data},
                                     {field: name for name, field in fields.items()})
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, code=exc.code if exc.code != ValidationFailed.code else service.INVALID_ITEM) from None


async def _item_update(session: AsyncSession, subscription_id: int,
                       data: dict[str, Any]) -> tuple[service.UserUpdate, templates.Template | None]:
    """The changes a stored item names and the template it names (None: none), both checked before Microsoft is
    asked; the template's part depends on the user's licences, read afterwards (`_with_template`)."""
    changes = parse_item(data)
    template_name = data.get("template")
    if template_name is None:
        return changes, None
    if not isinstance(template_name, str) or not template_name.strip():
        raise ValidationFailed("template: must be a template name", code=service.INVALID_ITEM)
    return changes, await templates.by_name(session, subscription_id, template_name.strip())


async def _with_template(changes: service.UserUpdate, template: templates.Template,
                         admin: DirectoryAdministration, user: DirectoryUser) -> service.UserUpdate:
    """The item's changes with the template's in place of its country, vrp, groups and licences (spec 004's bulk
    object: "if provided country, vrp, groups and licenses will be overridden"), built as the single-user apply
    builds them (`templates.update_for`, without override: its groups and licences are added to the user's, its
    location and vrp set; the default template's licence only for a user without Teams Phone), from the tenant's
    SKUs as remembered (no read per item)."""
    from_template = await templates.update_for(template, admin, user, override=False, remembered=True)
    changes.groups, changes.licenses = from_template.groups, from_template.licenses
    if from_template.location is not service.UNSET:
        changes.location = from_template.location
    if from_template.vrp is not service.UNSET:
        changes.vrp = from_template.vrp
    return changes


Retry = Callable[[Callable[[], Awaitable[None]], Callable[[int, Any, float], Awaitable[None]]], Awaitable[None]]


class _NoLongerPending(Exception):
    """The item was cancelled (or ended elsewhere) while it waited."""


async def apply_item(
    sessions: async_sessionmaker[AsyncSession], access: SubscriptionAccess, connection: TenantConnection,
    item_id: int, group_cache: dict[str, str], retry: Retry, on_end: Callable[[str], None] = lambda status: None,
) -> str:
    """Applies one pending item and records its outcome once (a finished item is left alone, and so is one
    cancelled before this run attempted it; one cancelled while in flight ends with its outcome: `_settle`).
    `retry` runs the attempt until Microsoft stops failing transiently; only Microsoft's refusal or our
    validation ends the item in error. Answers the item's status; `on_end` is told it when this run ended the
    item (or saw it cancelled), not when the item had ended before (recovery running it again: it was counted and
    logged a second time)."""
    claimed: list[repository_bulk_run.ClaimedItem] = []

    async def attempt() -> None:
        async with single_statement(sessions) as session:
            # One statement counts the attempt and reads what the item applies (no read of its own first), in
            # the database's autocommit: no BEGIN and COMMIT round trips around it.
            item = await repository_bulk_run.claim_attempt(session, item_id)
            if item is None:
                raise _NoLongerPending
            claimed[:] = [item]
            changes, template = await _item_update(session, access.subscription.id, item.data)
        admin = connection.directory_admin
        try:
            user = await admin.user_batched(item.upn)  # with the job's other items' reads
        except NotFound:
            raise NotFound(f"The MS Teams user {item.upn} does not exist", code=service.USER_NOT_FOUND) from None
        if template is not None:
            changes = await _with_template(changes, template, admin, user)
        # The item's success is recorded in the update's last transaction (with the voice user's sync): one
        # commit where there were two. apply_update returning means that commit happened.
        succeeded = {"status": "success", "details": {}, "error": None}
        await service.apply_update(sessions, access, connection, user, changes, group_cache=group_cache,
                                   settle=lambda session: _settle(session, item.job_id, item_id, succeeded, attempted=True))

    async def waiting(failures: int, exc: Any, wait: float) -> None:
        async with transaction(sessions) as session:
            await repository_bulk_run.record_waiting(session, item_id, {"lastError": describe(exc), "retryInSeconds": round(wait, 1)})

    outcome: dict[str, Any]
    try:
        await retry(attempt, waiting)
        on_end("success")
        return "success"  # recorded with the update's last change (`_settle`)
    except _NoLongerPending:
        if claimed:
            on_end("cancelled")
            return "cancelled"  # it was pending at its first attempt: cancelled (or ended elsewhere) while it waited
        async with transaction(sessions) as session:  # not pending at all (a step run again after it ended)
            status = await repository_bulk_run.item_status(session, item_id)
        return status or "gone"
    except Exception as exc:  # noqa: BLE001 - an item never stays pending: whatever failed it is its outcome
        outcome = {"status": "error", "details": None, "error": unit_failure(exc, f"bulk item {item_id}")}
    if claimed:
        await _record_outcome(sessions, claimed[0].job_id, item_id, outcome, attempted=True)
    else:  # its data never read (the first claim failed before answering): the job is the item's
        async with transaction(sessions) as session:
            job_id = await repository_bulk_run.job_of_item(session, item_id)
        if job_id is not None:
            await _record_outcome(sessions, job_id, item_id, outcome, attempted=False)
    on_end(str(outcome["status"]))
    return str(outcome["status"])


async def _record_outcome(sessions: async_sessionmaker[AsyncSession], job_id: int, item_id: int, outcome: dict[str, Any],
                          *, attempted: bool) -> None:
    """Ends the item once and counts it on the job, in a transaction of its own (`_settle`)."""
    async with transaction(sessions) as session:
        await _settle(session, job_id, item_id, outcome, attempted=attempted)


async def _settle(session: AsyncSession, job_id: int, item_id: int, outcome: dict[str, Any], *, attempted: bool) -> None:
    """Ends the item once and counts it on the job, in the caller's transaction: the item's row first, then ONE
    statement on the job's row (every item of the job updates that row, so it is locked until the commit that
    follows) that answers the counts; a cancel takes the rows in the same order (`cancel_job`). The item counted
    last also sets the job's final status (an ORM change, so the audit log records the job's end as before). An
    item that has ended is left alone.

    An item cancelled while the caller's attempt of it was in flight (`attempted`: a cancel marks every pending
    item, it cannot tell those in flight) ends with its outcome all the same: its changes reached Microsoft and
    teamsvoice's records, and a cancel stops only what has not started ("what was done stays done"). It is counted
    here once, as any item: a cancelled item is counted nowhere (`job_summary`'s cancelled_count is the rest)."""
    if not await repository_bulk_run.end_item(session, item_id, outcome, attempted=attempted):
        return
    counts = await repository_bulk_run.count_item(session, job_id, succeeded=outcome["status"] == "success")
    # "queued" too: after a retry, an item of the earlier run still in flight may end the job's last item
    if counts.status in ("queued", "running") and counts.all_counted:
        job = await session.get(FusionBulkJob, job_id, populate_existing=True)
        assert job is not None  # jobs are never deleted
        job.status = final_status(job)


async def fail_pending(sessions: async_sessionmaker[AsyncSession], job_id: int, exc: DomainError) -> None:
    """The job cannot run at all (its subscription has no Microsoft tenant): every pending item fails."""
    async with transaction(sessions) as session:
        ids = await repository_bulk_run.pending_item_ids(session, job_id)
    for item_id in ids:
        await _record_outcome(sessions, job_id, item_id, {"status": "error", "details": None, "error": describe(exc)},
                              attempted=False)


class _Ended(Exception):
    """The job ended while it was being cancelled (its last item counted meanwhile)."""


async def cancel_job(session: AsyncSession, job: FusionBulkJob) -> None:
    """No item starts after this; an item waiting to retry stops at its next try. Finished items stay, and an
    item in flight ends with its outcome (`_settle`).

    The items' rows are written before the job's row, the order in which an item's end takes them (`_settle`: its
    own row, then the job's to count it). The other order deadlocked on PostgreSQL: the cancel held the job's row
    and waited for an item's, whose end held that row and waited for the job's. Now the cancel waits for the item
    to be counted and passes it by (it is no longer pending). Both writes are in a savepoint: should the job have
    ended meanwhile, the items' cancel is undone with the refusal, whatever the caller does next."""
    try:
        if job.status in FINAL:
            raise _Ended
        async with session.begin_nested():
            await repository_bulk.cancel_pending_items(session, job.id)
            if not await repository_bulk.cancel_unless_ended(session, job.id, FINAL):
                raise _Ended
    except _Ended:
        await session.refresh(job)
        raise Conflict(f"Bulk job {job.id} has already ended ({job.status})", code=BULK_ENDED) from None
    await session.refresh(job)


RETRYABLE = ("error", "cancelled")


async def retry_job(session: AsyncSession, job: FusionBulkJob) -> int:
    """Runs an ended job again for its failed and cancelled items only; succeeded items stay as they are.

    The items go back to `pending` (their error cleared, their attempts kept: they count every try), the job
    to `queued` with no errors counted, and the job gets a new `job_key`: the workflow ids of this run
    (`fusion-bulk-{job_key}`, `...-item-{id}`) never collide with an earlier run's. The caller commits, then
    enqueues (`workflows.enqueue_bulk(job.job_key, job.id)`); a crash in between is resumed like a new job's.
    Answers how many items run again. A job still queued or running, or with nothing failed, is a Conflict."""
    if job.status not in FINAL:
        raise Conflict(f"Bulk job {job.id} is still {job.status}: wait for it to end (or cancel it) before retrying",
                       code=BULK_ENDED)
    count = await repository_bulk.reset_items(session, job.id, RETRYABLE)
    if count == 0:
        raise Conflict(f"Bulk job {job.id} has no failed or cancelled item to retry", code=BULK_ENDED)
    job.status, job.error_count, job.job_key, job.updated_on = "queued", 0, new_uuid(), utcnow()
    await session.flush()
    return count


def final_status(job: FusionBulkJob) -> str:
    if job.error_count == 0:
        return "success"
    return "error" if job.success_count == 0 else "partial"


# --- reading -------------------------------------------------------------------------------------------


def error_text(error: Any, last_error: Any) -> str | None:
    """An item's error in one line (`jobs show`, `jobs list`): its final error's message; while it waits to be
    tried again (no final error yet), its last try's, marked as retrying (it showed nothing, though `lastError`
    said why: a 503 from Microsoft); else None."""
    def message(outcome: Any) -> str | None:
        return (outcome.get("message") or outcome.get("reason")) if isinstance(outcome, dict) else outcome and str(outcome)

    if error:
        return message(error)
    return f"retrying after: {message(last_error)}" if last_error else None


def item_view(item: FusionBulkItem) -> dict[str, Any]:
    """An item as teamsvoice shows it: `error` (an ended item's) and `lastError` (why a pending item waits)
    are `core.errors.describe` outcomes (kind, code, message); each API family renders them its own way."""
    body = {"id": item.id, "upn": item.upn, "data": {**item.data, "upn": item.upn}, "status": item.status,
            "created_on": item.created_on.isoformat(), "updated_on": item.updated_on.isoformat()}
    if item.error:
        body["error"] = item.error
    body["attempts"] = item.attempts
    if item.status == "pending" and item.details and "lastError" in item.details:
        body["lastError"] = item.details["lastError"]  # waiting for Microsoft: why, and that it retries
    return body


async def job_in_scope(session: AsyncSession, access: SubscriptionAccess, bulk_id: int) -> FusionBulkJob:
    job = await repository_bulk.job_of_subscription(session, access.subscription.id, bulk_id)
    if job is None:
        raise NotFound(f"Bulk job {bulk_id} not found", code=BULK_NOT_FOUND)
    return job


# A bulk job's kinds (spec 004: "one among ms_users and ms_resource_accounts"); teamsvoice's bulk updates are ms_users
KINDS = ("ms_users", "ms_resource_accounts")


def check_kinds(kinds: Sequence[object], field: str = "filters.kind") -> list[str]:
    """The job kinds asked for, each one of KINDS, or 400 naming the first that is not."""
    for kind in kinds:
        if not isinstance(kind, str) or kind not in KINDS:
            shown = json.dumps(kind)[:60]  # as the request wrote it (null, not Python's None)
            raise ValidationFailed(f"{field}: {shown} is not a bulk job kind (one of {', '.join(KINDS)})")
    return [str(kind) for kind in kinds]


async def list_jobs(session: AsyncSession, access: SubscriptionAccess, search: str | None, offset: int, limit: int,
                    *, kinds: Sequence[object] | None = None) -> tuple[list[FusionBulkJob], int]:
    """A page of the subscription's jobs (newest first) and how many match in all: `search` in the title or kind,
    of the `kinds` given (checked: `check_kinds`), filtered in the query so the page and the counts agree."""
    wanted = check_kinds(kinds) if kinds is not None else None
    return await repository_bulk.jobs_page(session, access.subscription.id, search, offset, limit, kinds=wanted)


@dataclass(frozen=True)
class JobSummary:
    """A bulk job's progress: `job_id` is the job's public number (`new_job_id`), `processed_count` the items
    ended so far, `cancelled_count` those a cancel stopped (0 unless the job is cancelled)."""

    id: int
    job_id: str
    title: str
    kind: str
    status: str
    total_count: int
    success_count: int
    error_count: int
    processed_count: int
    cancelled_count: int
    created_on: datetime
    updated_on: datetime


def job_summary(job: FusionBulkJob) -> JobSummary:
    return JobSummary(job.id, job.job_id, job.title, job.kind, job.status, job.total_count, job.success_count,
                      job.error_count, job.success_count + job.error_count,
                      job.total_count - job.success_count - job.error_count if job.status == "cancelled" else 0,
                      job.created_on, job.updated_on)


async def items(sessions: async_sessionmaker[AsyncSession], job_id: int, *, errors_only: bool = False,
                page: int = 500, after: int = -1) -> AsyncIterator[FusionBulkItem]:
    """The job's items in order (those after position `after`), read a page at a time; a page read when the database
    failed transiently is read again (`read_again_while_transient`: the answers these pages stream are already sent
    in part)."""
    async def read() -> list[FusionBulkItem]:
        async with transaction(sessions) as session:
            return list(await repository_bulk.items_after(session, job_id, after, page, errors_only=errors_only))

    while True:
        rows = await read_again_while_transient(read)
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].position
