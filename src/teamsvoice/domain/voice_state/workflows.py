"""Durable apply of a tenant's voice state (DBOS), the same guarantees as bulk jobs: the plan is taken
and stored once, its operations run (service.schedule: each as soon as the one it waits for has ended, at most
TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY at once, every one safe to repeat) and their results are recorded as they
end; transient Microsoft failures wait and retry and are never final; a crash runs the step again, which skips the
operations recorded as ended.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import httpx
from dbos import DBOS

from teamsvoice.core import destinations
from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import sync_transaction, transaction
from teamsvoice.core.errors import DomainError, UpstreamError
from teamsvoice.core.logging import job_log_context
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.voice_state import apply as applying
from teamsvoice.domain.voice_state import drift, repository, repository_apply, repository_drift
from teamsvoice.domain.voice_state.models import DriftDelivery, DriftWebhook, VoiceApplyJob
from teamsvoice.domain.voice_state.planner import Difference, difference_from_wire
from teamsvoice.domain.voice_state.service import (
    grant_policies, is_policy_grant, operations, plan_tenant, run_operation, run_scheduled, schedule,
)
from teamsvoice.domain.voice_state.state import DesiredState, export_document, parse_document
from teamsvoice.jobs.runtime import (
    delivery_attempt, durable_step, failure_message,
    in_flight, job_context, park_if_stopping, run_every, start_once, until_delivered, until_microsoft_answers,
)
from teamsvoice.microsoft.ports import TenantVoiceAdmin

CHUNK = 50  # operations per step of the apply of earlier releases (`voice_apply`)
# A tenant Microsoft fails transiently (throttled, 5xx) while it is scanned: waited for up to SCAN_PATIENCE_SECONDS
# (until_microsoft_answers' backoff), then left for the scan's next pass, the other tenants scanned meanwhile; after
# SCAN_PASSES passes the scan leaves it to the next scan. A transient failure is never a scan's outcome.
SCAN_PATIENCE_SECONDS = 120.0
SCAN_PASSES = 5
RECORD_SECONDS = 0.5  # the results of the operations ended meanwhile are recorded together, at most this often
T = TypeVar("T")


def _run(work: Callable[[], Awaitable[T]]) -> T:
    return job_context().run(work)


async def _load(session: Any, job_id: int) -> tuple[VoiceApplyJob, Enterprise]:
    job = await session.get(VoiceApplyJob, job_id)
    assert job is not None
    enterprise = await session.get(Enterprise, job.enterprise_id)
    assert enterprise is not None
    return job, enterprise


def _waiting(job_id: int) -> Callable[[int, UpstreamError, float], Awaitable[None]]:
    async def on_wait(tries: int, exc: UpstreamError, delay: float) -> None:
        async with transaction(job_context().sessions) as session:
            job = await session.get(VoiceApplyJob, job_id)
            if job is not None:
                job.error = f"Microsoft failed transiently (try {tries}): {exc.message}; retrying in {delay:.0f} s"

    return on_wait


@durable_step("voice_apply_plan")
def plan_step(job_id: int) -> int:
    """Takes the plan (once: a replay finds it stored) and answers how many operations it has."""
    ctx = job_context()

    async def work() -> int:
        async with transaction(ctx.sessions) as session:
            job, enterprise = await _load(session, job_id)
            if job.status != "queued":
                return len(operations([difference_from_wire(d) for d in job.differences]))
            desired = await repository.desired_state(session, enterprise)
            tenant_id = enterprise.tenant_id
        if tenant_id is None:
            return await _fail(job_id, "The tenant is no longer linked")
        voice = ctx.connector.connect(tenant_id).tenant_voice
        try:
            plan = await until_microsoft_answers(lambda: plan_tenant(voice, desired), _waiting(job_id), workflow="voice_apply")
        except DomainError as exc:
            return await _fail(job_id, exc.message)
        async with transaction(ctx.sessions) as session:
            job, _ = await _load(session, job_id)
            job.differences = [d.wire() for d in plan.differences]
            job.desired = export_document(desired)
            job.status, job.error = "running", None
        return len(operations(plan.differences))

    with in_flight():
        return _run(work)


async def _stored_plan(job_id: int) -> tuple[TenantVoiceAdmin, list[Difference], DesiredState, set[tuple[str, str]]] | None:
    """The running job's stored plan: its tenant's voice administration, the differences, the desired state and the
    (id, stage) of the results already recorded; None when the job ended meanwhile (cancelled, or stopped by
    migration 0017) or its tenant is no longer linked."""
    ctx = job_context()
    async with transaction(ctx.sessions) as session:
        job, enterprise = await _load(session, job_id)
        differences = [difference_from_wire(d) for d in job.differences]
        desired = parse_document(job.desired)
        tenant_id, status = enterprise.tenant_id, job.status
        done = {(r["id"], r["stage"]) for r in job.results}
    if tenant_id is None or status != "running":
        return None
    return ctx.connector.connect(tenant_id).tenant_voice, differences, desired, done


async def _free_record(job_id: int, d: Difference, stage: str) -> dict[str, Any]:
    """A user deleted in Entra ID leaves the records, its number freed (into quarantine): the operation's result."""
    ctx = job_context()
    async with transaction(ctx.sessions) as session:
        _, enterprise = await _load(session, job_id)
        number = await repository.free_deleted_user(session, enterprise, d.object, ctx.settings.number_quarantine_seconds)
    return {"id": d.id, "stage": stage, "status": "done",
            "detail": f"{d.object} removed from the records" + (f"; {number} freed" if number else "")}


async def _fail(job_id: int, message: str) -> int:
    async with transaction(job_context().sessions) as session:
        job, _ = await _load(session, job_id)
        job.status, job.error, job.finished_at = "failed", message, utcnow()
    return 0


@durable_step("voice_apply_operations")
def operations_step(job_id: int) -> None:
    """Every operation of the stored plan (service.run_scheduled), then the records' (a user deleted in Entra ID
    frees its number). Results are written as operations end (together, every RECORD_SECONDS), so the job shows its
    progress; run again after a crash, the step skips the operations recorded (a result lost with the crash is an
    operation run again: each is safe to repeat). A job ended meanwhile (cancelled, or by migration 0017) starts no
    further operation once its end is read (at each write)."""
    ctx = job_context()

    async def work() -> None:
        stored = await _stored_plan(job_id)
        if stored is None:
            return
        voice, differences, desired, done = stored
        order = schedule(differences)
        ended: list[dict[str, Any]] = []
        stopped = False
        finished = anyio.Event()

        async def record() -> None:
            nonlocal stopped
            batch = ended[:]
            del ended[:len(batch)]
            async with transaction(ctx.sessions) as session:
                job, _ = await _load(session, job_id)
                if batch:
                    keys = {(r["id"], r["stage"]) for r in batch}
                    job.results = [r for r in job.results if (r["id"], r["stage"]) not in keys] + batch
                    job.error = None
                stopped = job.status != "running"

        async def recorder() -> None:
            while not finished.is_set():
                with anyio.move_on_after(RECORD_SECONDS):
                    await finished.wait()
                await record()

        attempt = partial(until_microsoft_answers, on_wait=_waiting(job_id), workflow="voice_apply")
        with job_log_context(job_id=job_id):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(recorder)
                try:
                    await run_scheduled(
                        voice, order, differences, desired, attempt, limit=ctx.settings.microsoft_tenant_concurrency,
                        on_result=ended.append, done=done, stopped=lambda: stopped,
                        run=lambda *args: run_operation(*args),  # (looked up at each call: tests replace it)
                        failure=lambda exc, what: failure_message(exc, f"voice apply job {job_id}: {what}"))
                finally:
                    finished.set()
        by_id = {d.id: d for d in differences}
        for op in order.records:
            if stopped or (op.difference_id, op.stage) in done:
                continue
            ended.append(await _free_record(job_id, by_id[op.difference_id], op.stage))
        await record()

    with in_flight():
        _run(work)
    park_if_stopping()


@durable_step("voice_apply_chunk")
def chunk_step(job_id: int, start: int, end: int) -> None:
    """A chunk of the apply of earlier releases (`voice_apply`), in `operations`' order."""
    ctx = job_context()

    async def work() -> None:
        stored = await _stored_plan(job_id)
        if stored is None:
            return
        voice, differences, desired, _ = stored
        by_id = {d.id: d for d in differences}
        attempt = partial(until_microsoft_answers, on_wait=_waiting(job_id), workflow="voice_apply")
        chunk = operations(differences)[start:end]
        # Voice routing policies: one Microsoft call per policy for all the chunk's users who need it, in
        # the place of the first of them (after the stages that create the policies).
        grants = [by_id[op.difference_id] for op in chunk if is_policy_grant(by_id[op.difference_id])]
        results: list[dict[str, Any]] = []
        for op in chunk:
            d = by_id[op.difference_id]
            if is_policy_grant(d):
                if d is grants[0]:
                    with job_log_context(job_id=job_id):
                        results.extend(await grant_policies(voice, grants, desired, attempt))
                continue
            with job_log_context(job_id=job_id, item_id=d.id):
                if op.stage == "record":
                    results.append(await _free_record(job_id, d, op.stage))
                    continue
                try:
                    detail = await run_operation(voice, op, d, desired, attempt)
                    results.append({"id": d.id, "stage": op.stage, "status": "done", "detail": detail})
                except Exception as exc:  # noqa: BLE001 - one operation's failure, whatever it is, is its outcome
                    results.append({"id": d.id, "stage": op.stage, "status": "failed",
                                    "detail": failure_message(exc, f"voice apply job {job_id}: {d.id}")})
        async with transaction(ctx.sessions) as session:
            job, _ = await _load(session, job_id)
            done = {(r["id"], r["stage"]) for r in results}  # a replayed chunk replaces its own results
            job.results = [r for r in job.results if (r["id"], r["stage"]) not in done] + results
            job.error = None

    with in_flight():
        _run(work)
    park_if_stopping()


@durable_step("voice_apply_finish")
def finish_step(job_id: int) -> str:
    async def work() -> str:
        async with transaction(job_context().sessions) as session:
            job, _ = await _load(session, job_id)
            if job.status == "running":
                job.status, job.finished_at = "completed", utcnow()
            return job.status

    return _run(work)


@durable_step("voice_apply_rescan")
def rescan_step(job_id: int) -> list[tuple[int, str]]:
    """After a completed apply, the tenant is scanned again (never auto-applied from here): the drift events
    the apply fixed are resolved now, not at the next scheduled scan (an hour later by default). Answers the
    webhook deliveries to send."""
    async def work() -> int | None:
        async with transaction(job_context().sessions) as session:
            job = await session.get(VoiceApplyJob, job_id)
            return job.enterprise_id if job is not None and job.status == "completed" else None

    enterprise_id = _run(work)
    if enterprise_id is None:
        return []
    with in_flight():
        return _run(lambda: _scan(enterprise_id, auto_apply=False,
                                  patience=SCAN_PATIENCE_SECONDS * SCAN_PASSES))["deliveries"]


@DBOS.workflow(name="voice_apply_scheduled", max_recovery_attempts=None)
def voice_apply_scheduled(job_id: int) -> str:
    plan_step(job_id)
    operations_step(job_id)
    status = finish_step(job_id)
    for delivery_id, job_key in rescan_step(job_id):
        start_delivery(delivery_id, job_key)
    return status


@DBOS.workflow(name="voice_apply", max_recovery_attempts=None)
def voice_apply(job_id: int) -> str:
    """The apply as releases before `voice_apply_scheduled` recorded it (chunks of CHUNK operations, one at a time,
    every number released before any is placed), kept only so that a job such a release left unfinished replays its
    recorded steps after an upgrade; nothing starts it any more. Remove it once no release before 2026-12 is
    upgraded from."""
    count = plan_step(job_id)
    for start in range(0, count, CHUNK):
        chunk_step(job_id, start, start + CHUNK)
    status = finish_step(job_id)
    for delivery_id, job_key in rescan_step(job_id):
        start_delivery(delivery_id, job_key)
    return status


def _start(job_id: int, job_key: str) -> None:
    start_once(f"voice-apply-{job_key}", voice_apply_scheduled, job_id)


async def enqueue_apply(job_id: int, job_key: str) -> None:
    await anyio.to_thread.run_sync(_start, job_id, job_key)


def resume_unstarted() -> int:
    """Apply jobs and drift deliveries committed but never enqueued (a crash in between) start now
    (idempotent by their keys)."""
    with sync_transaction(job_context().engine) as session:
        queued = repository_apply.queued_jobs(session)
        pending = repository_drift.pending_deliveries(session)
    for job_id, job_key in queued:
        _start(job_id, job_key)
    for delivery_id, job_key in pending:
        start_delivery(delivery_id, job_key)
    return len(queued) + len(pending)


def resume_orphaned() -> int:
    """At start: `resume_unstarted`, and the drift schedule starts (once per slot across processes)."""
    return resume_unstarted() + start_schedule()


# --- drift scans --------------------------------------------------------------------------------------


@durable_step("voice_drift_scan_tenant")
def scan_tenant_step(enterprise_id: int) -> dict[str, Any]:
    """Plans one tenant and records what differs. Answers the deliveries to send and the auto-apply job
    to start, and `unanswered` when Microsoft kept failing transiently (the scan comes back to it). A tenant
    Microsoft refuses to be read (or a defect) is recorded as such; the scan goes on."""
    with in_flight():
        return _run(lambda: _scan(enterprise_id, auto_apply=True, patience=SCAN_PATIENCE_SECONDS))


class _Unanswered(Exception):
    """Microsoft kept failing a tenant's scan transiently past the scan's patience."""


def _scan_waiting(enterprise_id: int, patience: float) -> Callable[[int, UpstreamError, float], Awaitable[None]]:
    """`until_microsoft_answers`' `on_wait` of a tenant's scan: why it waits is the tenant's `lastScanError` (its
    `lastScanAt` stays its last scan's); past `patience` seconds of waiting the scan gives the tenant up for now."""
    started = time.monotonic()

    async def on_wait(tries: int, exc: UpstreamError, delay: float) -> None:
        later = time.monotonic() - started + delay > patience
        note = (f"Not scanned yet: Microsoft failed transiently (try {tries}): {exc.message}; "
                + ("the tenant is scanned again later" if later else f"trying again in {delay:.0f} s"))
        async with transaction(job_context().sessions) as session:
            enterprise = await session.get(Enterprise, enterprise_id)
            if enterprise is not None:
                (await drift.settings_of(session, enterprise)).last_scan_error = note
        if later:
            raise _Unanswered(note)

    return on_wait


async def _scan(enterprise_id: int, *, auto_apply: bool, patience: float) -> dict[str, Any]:
    """One tenant's scan: its drift events recorded; an auto-apply job made when the tenant opted in and
    `auto_apply` (not after an apply: one that left a failure would start another, and so on). Microsoft failing
    transiently is waited for (`_scan_waiting`), up to `patience` seconds: then `unanswered`, nothing recorded as the
    scan's outcome."""
    ctx = job_context()
    async with transaction(ctx.sessions) as session:
        enterprise = await session.get(Enterprise, enterprise_id)
        if enterprise is None or enterprise.tenant_id is None:
            return {"deliveries": [], "apply": None}
        desired = await repository.desired_state(session, enterprise)
        tenant_id = enterprise.tenant_id
    voice = ctx.connector.connect(tenant_id).tenant_voice
    try:
        plan = await until_microsoft_answers(lambda: plan_tenant(voice, desired), _scan_waiting(enterprise_id, patience),
                                             workflow="voice_drift_scan")
    except _Unanswered:
        return {"deliveries": [], "apply": None, "unanswered": True}
    except Exception as exc:  # noqa: BLE001 - one tenant's failure is its own: the scan goes on to the next
        message = failure_message(exc, f"drift scan of enterprise {enterprise_id}")
        async with transaction(ctx.sessions) as session:
            enterprise = await session.get(Enterprise, enterprise_id)
            assert enterprise is not None
            await drift.record_scan_failure(session, enterprise, message)
        return {"deliveries": [], "apply": None}
    async with transaction(ctx.sessions) as session:
        enterprise = await session.get(Enterprise, enterprise_id)
        assert enterprise is not None
        _, deliveries = await drift.record_scan(session, enterprise, plan)
        job = None
        settings = await drift.settings_of(session, enterprise)
        if auto_apply and settings.auto_apply and any(d.action != "leave" for d in plan.differences):
            try:
                job = await applying.new_apply_job(session, enterprise, "auto")
            except DomainError:
                job = None  # an apply is already running: the next scan sees what it left
        return {"deliveries": drift.pending_deliveries(deliveries),
                "apply": (job.id, job.job_key) if job is not None else None}


@DBOS.workflow(name="voice_drift_scan", max_recovery_attempts=None)
def scan_tenants(scan_key: str, enterprise_ids: list[int]) -> int:
    """Each tenant in turn; those Microsoft left unanswered (`scan_tenant_step`) again after the others, up to
    SCAN_PASSES passes in all."""
    sent, waiting = 0, list(enterprise_ids)
    for _ in range(SCAN_PASSES):
        unanswered = []
        for enterprise_id in waiting:
            outcome = scan_tenant_step(enterprise_id)
            if outcome.get("unanswered"):  # (absent from the outcomes recorded by earlier releases)
                unanswered.append(enterprise_id)
                continue
            for delivery_id, job_key in outcome["deliveries"]:
                start_delivery(delivery_id, job_key)
                sent += 1
            if outcome["apply"] is not None:
                _start(*outcome["apply"])
        if not unanswered:
            break
        waiting = unanswered
    return sent


async def enqueue_scan(scan_key: str, enterprise_ids: list[int]) -> None:
    await anyio.to_thread.run_sync(lambda: start_once(f"voice-drift-scan-{scan_key}", scan_tenants, scan_key, enterprise_ids))


@durable_step("voice_drift_linked")
def linked_step() -> list[int]:
    async def work() -> list[int]:
        async with transaction(job_context().sessions) as session:
            return [e.id for e in await repository.linked_enterprises(session)]

    return _run(work)


@DBOS.workflow(name="voice_drift_scan_all", max_recovery_attempts=None)
def scan_linked(slot_key: str) -> int:
    return scan_tenants(slot_key, linked_step())


def start_schedule() -> int:
    """Scans every linked tenant once per `drift_scan_interval_seconds` slot in worker processes
    (jobs/runtime.run_every: one scan per slot however many workers run, stopped with the job engine)."""
    run_every("voice-drift-schedule", job_context().settings.drift_scan_interval_seconds, scan_linked)
    return 0


# --- webhook deliveries -------------------------------------------------------------------------------


@durable_step("voice_drift_post")
def post_drift_event(delivery_id: int) -> bool:
    """One attempt; True once delivered (2xx). Redirects are not followed (and count as failures). An attempt that
    fails with a defect is a failed try like any other (its error recorded, tried again later): it ended the
    delivery's workflow, and the delivery stayed pending with no try ever again."""
    return delivery_attempt(_post_drift_event, DriftDelivery, delivery_id, "drift event delivery")


def _post_drift_event(delivery_id: int) -> bool:
    ctx = job_context()
    with sync_transaction(ctx.engine) as session:
        delivery = session.get(DriftDelivery, delivery_id)
        if delivery is None or delivery.status != "pending":
            return True
        hook = session.get(DriftWebhook, delivery.webhook_id)
        assert hook is not None
        (url, secret_encrypted), recorded = drift.delivery_target(delivery, hook), delivery.body
        secret = ctx.keyring.decrypt(secret_encrypted, purpose=drift.SECRET_PURPOSE)
    now = int(time.time())  # each try is stamped and signed anew: a receiver refuses stale timestamps
    body = drift.stamped(recorded, now)
    error: str | None = None
    refused = False
    try:
        # Resolved and checked now, connected to the address checked (core/destinations.py).
        response = destinations.post(ctx.http, url, allow_internal=ctx.settings.allow_loopback_redirects, content=body,
                                     headers={"Content-Type": "application/json", drift.TIMESTAMP_HEADER: str(now),
                                              drift.SIGNATURE_HEADER: drift.sign(secret, body)})
        if not response.is_success:
            error = f"HTTP {response.status_code}"
    except destinations.RefusedDestination as exc:
        error, refused = exc.message, True
        logging.getLogger("teamsvoice.security").warning("security: drift event delivery %s refused: %s", delivery_id,
                                                         exc.message)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    with sync_transaction(ctx.engine) as session:
        delivery = session.get(DriftDelivery, delivery_id)
        assert delivery is not None
        delivery.attempts += 0 if refused else 1
        delivery.last_error = error
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", utcnow()
        elif refused:
            delivery.status = "refused"
    return error is None or refused


@DBOS.workflow(name="voice_drift_delivery", max_recovery_attempts=None)
def deliver_drift_event(delivery_id: int) -> int:
    return until_delivered(post_drift_event, delivery_id)


def delivery_workflow_id(job_key: str) -> str:
    """A delivery's workflow: one per job key (a retry gives the delivery a new key, so a new workflow)."""
    return f"voice-drift-delivery-{job_key}"


def start_delivery(delivery_id: int, job_key: str) -> None:
    start_once(delivery_workflow_id(job_key), deliver_drift_event, delivery_id)


async def enqueue_delivery(delivery_id: int, job_key: str) -> None:
    """Starting twice under the same key is a no-op, so this is safe to repeat."""
    await anyio.to_thread.run_sync(start_delivery, delivery_id, job_key)
