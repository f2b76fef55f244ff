"""The job catalogue: every kind of durable job (bulk updates, consent webhook deliveries, drift event
deliveries, onboarding wizard runs, Teams syncs, resource-account changes, voice-state applies) seen one way, and
the one place that decides whether a job may be retried or cancelled, and says why not in words. The console's
Jobs page and the CLI's `jobs list|show|retry|cancel` both use it.

A job is named `<kind>:<id>` (a bare id is a bulk job, as the Fusion API numbers them).
- Retry (of a failed or cancelled job) runs it again durably under a new, never-reused workflow id, and does
  not redo what succeeded: a bulk job re-runs its failed and cancelled items only; the wizard resumes at the
  step that failed; syncs, applies and resource accounts converge Microsoft to the recorded state, so what
  already matches is left alone; a webhook or drift event delivery (refused or cancelled) is sent again, the
  same body as before.
- Cancel (of a queued or running job, or a delivery still pending) records it as cancelled, then stops its DBOS
  workflow (a queued one never starts; a running one stops after the step it is in). What was already done
  stays done.
Both are recorded in the audit log (`job.retry`, `job.cancel`) in the caller's transaction. The caller commits,
then awaits the `FollowUp` returned (it enqueues or stops the workflow; it needs the job engine).
"""

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import json

import anyio
from sqlalchemy import ColumnElement, case, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import Conflict, NotFound, ValidationFailed
from teamsvoice.core.ids import new_uuid
from teamsvoice.core.limits import whole_number
from teamsvoice.domain.audit import repository as audit_log
from teamsvoice.domain.audit import service as audit
from teamsvoice.domain.audit.recorder import Owner, acting_scope
from teamsvoice.domain.calling import repository as calling_repository
from teamsvoice.domain.calling.models import CallingJob
from teamsvoice.domain.consent.models import WebhookDelivery
from teamsvoice.domain.fusion import onboarding
from teamsvoice.domain.fusion import repository as fusion_repository
from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant, FusionWizardRun
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.jobs import repository
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.teams_users import bulk
from teamsvoice.domain.teams_users.models import FusionBulkJob, FusionResourceAccount
from teamsvoice.domain.voice_state import drift
from teamsvoice.domain.voice_state.models import DriftDelivery, VoiceApplyJob

FollowUp = Callable[[], Awaitable[None]]
Scope = Iterable[int] | None  # the reseller nodes whose customers' jobs the caller may see; None: all (an operator)
LIMIT = 100
KINDS = {"bulk": "bulk update", "webhook": "webhook delivery", "drift-webhook": "drift event delivery",
         "wizard": "onboarding wizard", "sync": "Teams sync", "resource-account": "resource account",
         "voice-apply": "voice state apply"}
WIZARD_CANCELLED = "Cancelled by "
# The statuses each kind's jobs can be in (lower case, as listed): `list_jobs(status=...)` refuses any other.
STATUSES = {"bulk": ("queued", "running", "success", "partial", "error", "cancelled"),
            "webhook": ("pending", "delivered", "refused", "cancelled"),
            "drift-webhook": ("pending", "delivered", "refused", "cancelled"),
            "wizard": ("running", "completed", "failed", "cancelled"),
            "sync": ("queued", "running", "completed", "failed", "cancelled"),
            "resource-account": ("creating", "updating", "deleting", "active", "error"),
            "voice-apply": ("queued", "running", "completed", "failed", "cancelled")}
# A wizard run's status, computed by the database (so that a list of the runs in one status is cut after filtering,
# never before): running; cancelled (`jobs cancel` wrote WIZARD_CANCELLED into its error); completed (its last step
# succeeded, as `onboarding` tells an onboarded run); else failed.
WIZARD_STATUS: ColumnElement[str] = case(
    (FusionWizardRun.running, "running"), (FusionWizardRun.error.startswith(WIZARD_CANCELLED), "cancelled"),
    (FusionWizardRun.status == f"wizard_{len(onboarding.WIZARD_STEPS)}_OK", "completed"), else_="failed")
# Each kind's status as the database has it: `list_jobs(status=...)` filters in the query, before the limit.
STATUS_COLUMNS: dict[str, ColumnElement[str]] = {
    "bulk": FusionBulkJob.status, "webhook": WebhookDelivery.status, "drift-webhook": DriftDelivery.status,
    "wizard": WIZARD_STATUS, "sync": func.lower(CallingJob.status), "resource-account": FusionResourceAccount.status,
    "voice-apply": VoiceApplyJob.status}
Where = ColumnElement[bool] | None


@dataclass(frozen=True)
class Job:
    ref: str
    kind: str
    label: str
    title: str
    customer: str
    enterprise_id: int | None  # None: a drift event delivery whose body names no customer on record
    reseller_id: int  # the customer's reseller; a drift event delivery's: the reseller whose webhook it goes to
    status: str  # lower case: queued, running, pending, waiting, success, partial, completed, error, failed, ...
    done: int | None
    total: int | None
    # Tries: a bulk job's most tried item, a webhook's POSTs; other kinds count their runs (the first and each
    # retry, from the audit log's job.retry entries, so as long as the log keeps them).
    attempts: int | None
    last_error: str | None
    started: datetime
    finished: datetime | None
    retry_refusal: str | None  # why it cannot be retried now; None: it can
    cancel_refusal: str | None
    subscription_id: int | None = None  # a Fusion subscription's job (the console links its pages)

    @property
    def id(self) -> int:
        return int(self.ref.split(":", 1)[1])

    def render(self) -> dict[str, Any]:
        data = asdict(self) | {"id": self.id}
        data["started"] = self.started.isoformat()
        data["finished"] = self.finished.isoformat() if self.finished else None
        data["canRetry"], data["canCancel"] = self.retry_refusal is None, self.cancel_refusal is None
        return data


def parse_ref(ref: str) -> tuple[str, int]:
    kind, _, number = ref.strip().rpartition(":")
    kind = kind or "bulk"
    if kind not in KINDS:
        raise ValidationFailed(f"Job {ref[:40]!r}: the kind must be one of {', '.join(KINDS)} (e.g. webhook:12)")
    job_id = whole_number(number)
    if not job_id:
        raise ValidationFailed(f"Job {ref[:40]!r}: expected <kind>:<id>, e.g. webhook:12 (a bare id is a bulk job)")
    return kind, job_id


def _still(status: str) -> str:
    return f"it is still {status}: wait for it to end, or cancel it first"


def _ended(status: str) -> str:
    return f"it has already ended ({status}): there is nothing to stop"


# --- each kind ------------------------------------------------------------------------------------------


async def _bulk(session: AsyncSession, scope: Scope, ids: Sequence[int] | None, limit: int,
                where: Where = None) -> list[Job]:
    rows = await repository.subscription_jobs(session, FusionBulkJob, scope, ids, limit, where)
    job_ids = [job.id for job, _ in rows]
    tries = await repository.bulk_item_tries(session, job_ids)
    errors: dict[int, str | None] = {}
    for job_id, details in await repository.bulk_item_waits(session, job_ids):  # an item's last try, while it waits
        if isinstance(details, dict) and details.get("lastError"):
            errors[job_id] = bulk.error_text(None, details["lastError"])
    for job_id, error in await repository.bulk_item_errors(session, job_ids):  # the latest final error comes first
        errors[job_id] = bulk.error_text(error, None)
    jobs = []
    for job, enterprise in rows:
        final = job.status in bulk.FINAL
        retry = (_still(job.status) if not final else
                 "every item succeeded: there is nothing to retry" if job.status == "success" else None)
        jobs.append(Job(f"bulk:{job.id}", "bulk", KINDS["bulk"], job.title, enterprise.enterprise_name, enterprise.id,
                        enterprise.reseller_id, job.status, job.success_count + job.error_count, job.total_count,
                        tries.get(job.id), errors.get(job.id), job.created_on, job.updated_on if final else None,
                        retry, _ended(job.status) if final else None, job.subscription_id))
    return jobs


async def _webhooks(session: AsyncSession, scope: Scope, ids: Sequence[int] | None, limit: int,
                    where: Where = None) -> list[Job]:
    jobs = []
    for delivery, enterprise in await repository.consent_deliveries(session, scope, ids, limit, where):
        jobs.append(Job(f"webhook:{delivery.id}", "webhook", KINDS["webhook"], f"consent outcome to {urlsplit(delivery.url).netloc}",
                        enterprise.enterprise_name, enterprise.id, enterprise.reseller_id, delivery.status, None, None,
                        delivery.attempts, delivery.last_error, delivery.created_at, delivery.delivered_at,
                        *_delivery_refusals(delivery.status, delivery.delivered_at)))
    return jobs


def _delivery_refusals(status: str, delivered_at: datetime | None) -> tuple[str | None, str | None]:
    """A delivery's (retry, cancel) refusals: pending, it may only be cancelled; delivered, neither; refused or
    cancelled, it may be retried."""
    retry = ("it is still being delivered: it is tried again until the receiver answers (cancel it to stop)"
             if status == "pending" else
             f"it was delivered at {delivered_at:%Y-%m-%d %H:%M:%S} UTC: the receiver has it"
             if status == "delivered" and delivered_at else None)
    return retry, None if status == "pending" else _ended(status)


def _drift_body(body: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def _drift_deliveries(session: AsyncSession, scope: Scope, ids: Sequence[int] | None, limit: int,
                            where: Where = None) -> list[Job]:
    """Scoped by the reseller whose webhook they go to (events of a customer also go to the webhooks of the
    resellers above its own); the customer is the tenant the body names."""
    rows = await repository.drift_deliveries(session, scope, ids, limit, where)
    bodies = {delivery.id: _drift_body(delivery.body) for delivery, _, _ in rows}
    enterprises = await repository.enterprises_by_id(
        session, {n for b in bodies.values() if type(n := b.get("enterpriseId")) is int})
    jobs = []
    for delivery, hook, reseller in rows:
        body = bodies[delivery.id]
        enterprise = enterprises.get(body.get("enterpriseId"))  # type: ignore[arg-type]
        customer = (enterprise.enterprise_name if enterprise else
                    f"tenant {body['tenantId']}" if isinstance(body.get("tenantId"), str) else reseller.name)
        url, _ = drift.delivery_target(delivery, hook)  # where it goes: its own URL, not the webhook's of today
        jobs.append(Job(f"drift-webhook:{delivery.id}", "drift-webhook", KINDS["drift-webhook"],
                        f"{body.get('type') or 'drift event'} to {urlsplit(url).netloc}", customer,
                        enterprise.id if enterprise else None, hook.reseller_id, delivery.status, None, None,
                        delivery.attempts, delivery.last_error, delivery.created_at, delivery.delivered_at,
                        *_delivery_refusals(delivery.status, delivery.delivered_at)))
    return jobs


async def _wizards(session: AsyncSession, scope: Scope, ids: Sequence[int] | None, limit: int,
                   where: Where = None) -> list[Job]:
    rows = await repository.wizard_runs(session, scope, ids, limit, WIZARD_STATUS, where)
    newest = await repository.newest_wizard_runs(session, {s.id for _, s, _, _ in rows})
    jobs = []
    for run, subscription, enterprise, status in rows:
        retry = (_still(status) if status == "running" else
                 "every step succeeded: the tenant is onboarded" if status == "completed" else
                 "the subscription is onboarded (its tenant is linked): there is nothing to redo"
                 if enterprise.tenant_id is not None else
                 f"a newer run of this subscription's wizard exists (wizard:{newest[subscription.id]}): retry that one"
                 if newest.get(subscription.id, run.id) != run.id else None)
        done = sum(1 for step in run.steps if step.get("ok"))
        jobs.append(Job(f"wizard:{run.id}", "wizard", KINDS["wizard"], f"onboarding of {subscription.name}",
                        enterprise.enterprise_name, enterprise.id, enterprise.reseller_id, status, done, len(run.steps),
                        None, run.error, run.started_at, run.finished_at, retry,
                        None if status == "running" else _ended(status), subscription.id))
    return jobs


def _failed_results(results: Iterable[Any]) -> list[dict[str, Any]]:
    return [r for r in results if isinstance(r, dict) and str(r.get("status", "")).lower() == "failed"]


async def _syncs(session: AsyncSession, scope: Scope, ids: Sequence[int] | None, limit: int,
                 where: Where = None) -> list[Job]:
    jobs = []
    rows = await repository.calling_jobs(session, scope, ids, limit, where)
    tallies = await repository.calling_result_tallies(session, [job.id for job, _ in rows])
    for job, enterprise in rows:
        status = job.status.lower()
        processed, failed, last_failure = tallies.get(job.id, (0, 0, None))
        active = status in ("queued", "running")
        retry = (_still(status) if active else
                 "it completed and every user succeeded: there is nothing to retry" if status == "completed" and not failed else None)
        jobs.append(Job(f"sync:{job.id}", "sync", KINDS["sync"], job.kind.lower().replace("_", " "), enterprise.enterprise_name,
                        enterprise.id, enterprise.reseller_id, status, processed, job.total, None,
                        job.error or (last_failure.get("error") if isinstance(last_failure, dict) else None),
                        job.created_at, job.finished_at, retry, None if active else _ended(status)))
    return jobs


async def _resource_accounts(session: AsyncSession, scope: Scope, ids: Sequence[int] | None, limit: int,
                             where: Where = None) -> list[Job]:
    jobs = []
    for account, enterprise in await repository.subscription_jobs(session, FusionResourceAccount, scope, ids, limit,
                                                                      where):
        status = account.status
        active = status in ("creating", "updating", "deleting")
        retry = (_still(status) if active else "it is active: nothing failed" if status == "active" else None)
        jobs.append(Job(f"resource-account:{account.id}", "resource-account", KINDS["resource-account"],
                        f"{account.account_type} {account.user_principal_name}", enterprise.enterprise_name, enterprise.id,
                        enterprise.reseller_id, status, None, None, None, account.error, account.created_on,
                        None if active else account.updated_on, retry,
                        "a resource account's change is one Microsoft operation that ends by itself and cannot be "
                        "stopped halfway (retry it if it fails)" if active else _ended(status), account.subscription_id))
    return jobs


async def _applies(session: AsyncSession, scope: Scope, ids: Sequence[int] | None, limit: int,
                   where: Where = None) -> list[Job]:
    jobs = []
    for job, enterprise in await repository.apply_jobs(session, scope, ids, limit, where):
        failed = _failed_results(job.results or [])
        active = job.status in ("queued", "running")
        retry = (_still(job.status) if active else
                 "it completed and every change succeeded: there is nothing to retry" if job.status == "completed" and not failed
                 else None)
        jobs.append(Job(f"voice-apply:{job.id}", "voice-apply", KINDS["voice-apply"], f"apply ({job.trigger})",
                        enterprise.enterprise_name, enterprise.id, enterprise.reseller_id, job.status, len(job.results or []),
                        len(job.differences or []), None, job.error or (failed[-1].get("detail") if failed else None),
                        job.created_at, job.finished_at, retry, None if active else _ended(job.status)))
    return jobs


_LOADERS = {"bulk": _bulk, "webhook": _webhooks, "drift-webhook": _drift_deliveries, "wizard": _wizards, "sync": _syncs,
            "resource-account": _resource_accounts, "voice-apply": _applies}


# --- reading --------------------------------------------------------------------------------------------


async def _with_runs(session: AsyncSession, jobs: list[Job]) -> list[Job]:
    counted = [j.ref for j in jobs if j.attempts is None]
    if not counted:
        return jobs
    retries = await audit_log.counts_of_action(session, "job.retry", counted)
    return [replace(j, attempts=1 + retries.get(j.ref, 0)) if j.attempts is None else j for j in jobs]


async def listing(session: AsyncSession, scope: Scope, *, kind: str | None = None, status: str | None = None,
                  limit: int = LIMIT, leave_out: Collection[str] = ()) -> tuple[list[Job], bool]:
    """Newest first: at most `limit` of each kind (of `kind` only, when given; never of the kinds in `leave_out`),
    optionally in one status (filtered in the query: before, only the newest `limit` of each kind were filtered, so an
    older job in that status was never listed); and whether a kind had more than `limit` (the list is cut)."""
    kinds = [name for name in KINDS if name not in leave_out]
    if kind is not None and kind not in kinds:
        raise ValidationFailed(f"kind: must be one of {', '.join(kinds)}")
    wanted = status.strip().lower() if status else None
    if wanted is not None:
        allowed = sorted({s for name in kinds if kind in (None, name) for s in STATUSES[name]})
        if wanted not in allowed:
            raise ValidationFailed(f"status: must be one of {', '.join(allowed)}" + (f" for {kind} jobs" if kind else ""))
    scope = None if scope is None else list(scope)
    jobs: list[Job] = []
    cut = False
    for name, load in _LOADERS.items():
        if (kind is None or kind == name) and name in kinds:
            found = await load(session, scope, None, limit + 1,
                               None if wanted is None else STATUS_COLUMNS[name] == wanted)
            cut = cut or len(found) > limit
            jobs += found[:limit]
    return sorted(await _with_runs(session, jobs), key=lambda j: j.started, reverse=True), cut


async def list_jobs(session: AsyncSession, scope: Scope, *, kind: str | None = None, status: str | None = None,
                    limit: int = LIMIT) -> list[Job]:
    """The jobs of `listing`."""
    return (await listing(session, scope, kind=kind, status=status, limit=limit))[0]


async def bulk_history(session: AsyncSession, principal: FusionPrincipal, offset: int, limit: int
                       ) -> tuple[list[tuple[FusionBulkJob, FusionSubscription, FusionTenant]], int]:
    """A page of the bulk jobs of every subscription `principal` sees (the Fusion API's scope: the subscriptions of
    `fusion.repository.visible_tenants`, as `fusion.scope.subscription_in_scope` resolves them), newest first, each
    with its subscription and tenant, and how many there are. Like the API's bulk job history, for a login holding
    its role (`...msteams.users.bulk.jobs`): the caller checks it, as the API's route does."""
    return await repository.bulk_jobs_of_tenants(session, fusion_repository.visible_tenants(principal), offset, limit)


async def find(session: AsyncSession, scope: Scope, ref: str) -> Job:
    """One job, if it is of a customer in scope (else "not found", as for anything out of scope)."""
    kind, number = parse_ref(ref)
    found = await _LOADERS[kind](session, None if scope is None else list(scope), [number], 1)
    if not found:
        raise NotFound(f"Job {kind}:{number} not found" if kind != "bulk" else f"Bulk job {number} not found")
    return (await _with_runs(session, found))[0]


# --- acting ---------------------------------------------------------------------------------------------


async def _record(session: AsyncSession, job: Job, action: str, after: str) -> None:
    enterprise = await session.get(Enterprise, job.enterprise_id) if job.enterprise_id is not None else None
    owner = Owner(job.reseller_id, job.enterprise_id, job.customer, enterprise.tenant_id if enterprise else None)
    await audit.record_action(session, owner, action=f"job.{action}", aggregate="job", object_id=job.ref,
                              label=f"{job.label}: {job.title}"[:400], before={"status": job.status}, after={"status": after})


def _stopping(workflow_id: str) -> FollowUp:
    async def stop() -> None:
        from teamsvoice.jobs.runtime import stop_workflow

        await anyio.to_thread.run_sync(stop_workflow, workflow_id)

    return stop


async def retry(session: AsyncSession, scope: Scope, ref: str) -> tuple[Job, FollowUp]:
    """Makes a failed or cancelled job run again (see the module's words); a Conflict says why it cannot."""
    job = await find(session, scope, ref)
    if job.retry_refusal is not None:
        raise Conflict(f"Job {job.ref} cannot be retried: {job.retry_refusal}")
    follow: FollowUp
    if job.kind == "bulk":
        from teamsvoice.domain.teams_users import workflows

        row = await session.get(FusionBulkJob, job.id)
        assert row is not None
        await bulk.retry_job(session, row)
        key, job_id = row.job_key, row.id
        follow = lambda: workflows.enqueue_bulk(key, job_id)  # noqa: E731
        status = "queued"
    elif job.kind == "webhook":
        from teamsvoice.jobs import webhooks

        delivery = await session.get(WebhookDelivery, job.id)
        assert delivery is not None
        delivery.status, delivery.delivered_at, delivery.job_key = "pending", None, new_uuid()
        follow = lambda: webhooks.enqueue_delivery(job.id)  # noqa: E731
        status = "pending"
    elif job.kind == "drift-webhook":
        from teamsvoice.domain.voice_state import workflows as voice_workflows

        event = await session.get(DriftDelivery, job.id)
        assert event is not None
        event.status, event.delivered_at, event.job_key = "pending", None, new_uuid()
        key = event.job_key
        follow = lambda: voice_workflows.enqueue_delivery(job.id, key)  # noqa: E731
        status = "pending"
    elif job.kind == "wizard":
        from teamsvoice.jobs import fusion_wizard

        run = await session.get(FusionWizardRun, job.id)
        assert run is not None
        done = 0
        for step in run.steps:  # it resumes at the first step that did not succeed
            if not step.get("ok"):
                break
            done += 1
        tenant = run.ms_tenant_id or ""
        try:
            async with session.begin_nested():  # a tenant has one running run: another subscription's may hold it
                run.running, run.error, run.finished_at, run.consent_url = True, None, None, None
                run.status, run.job_key = f"wizard_{done}_OK", new_uuid()
        except IntegrityError:
            raise Conflict(f"Job {job.ref} cannot be retried: "
                           f"{onboarding.tenant_busy_refusal(tenant).message}") from None
        follow = lambda: fusion_wizard.enqueue_wizard(job.id)  # noqa: E731
        status = "running"
    elif job.kind == "sync":
        from teamsvoice.domain.calling import workflows as calling_workflows

        calling = await session.get(CallingJob, job.id)
        assert calling is not None
        calling.status, calling.error, calling.finished_at, calling.total = "QUEUED", None, None, 0
        await calling_repository.clear_results(session, job.id)
        calling.job_key = new_uuid()
        follow = lambda: calling_workflows.enqueue(job.id)  # noqa: E731
        status = "queued"
    elif job.kind == "resource-account":
        from teamsvoice.domain.teams_users import workflows

        account = await session.get(FusionResourceAccount, job.id)
        assert account is not None
        account.status = "creating" if account.microsoft_user_id is None else "updating"
        account.error, account.generation = None, account.generation + 1
        key, generation, status = account.job_key, account.generation, account.status
        follow = lambda: workflows.enqueue_resource_account(key, job.id, generation)  # noqa: E731
    else:
        from teamsvoice.domain.voice_state import apply as applying
        from teamsvoice.domain.voice_state import workflows as voice_workflows

        apply = await session.get(VoiceApplyJob, job.id)
        assert apply is not None
        enterprise_id = apply.enterprise_id
        try:
            async with session.begin_nested():  # a tenant has one apply at a time: another may be queued or running
                apply.status, apply.error, apply.finished_at, apply.results, apply.differences = "queued", None, None, [], []
                apply.job_key = new_uuid()
        except IntegrityError:
            refusal = await applying.lost_to_another_apply(session, enterprise_id)
            raise Conflict(f"Job {job.ref} cannot be retried: {refusal.message}") from None
        key = apply.job_key
        follow = lambda: voice_workflows.enqueue_apply(job.id, key)  # noqa: E731
        status = "queued"
    await _record(session, job, "retry", status)
    await session.flush()
    return await find(session, scope, job.ref), follow


async def cancel(session: AsyncSession, scope: Scope, ref: str) -> tuple[Job, FollowUp | None]:
    """Records a queued or running job as cancelled; the follow-up stops its workflow."""
    job = await find(session, scope, ref)
    if job.cancel_refusal is not None:
        raise Conflict(f"Job {job.ref} cannot be cancelled: {job.cancel_refusal}")
    follow: FollowUp | None = None
    if job.kind == "bulk":
        row = await session.get(FusionBulkJob, job.id)
        assert row is not None
        await bulk.cancel_job(session, row)  # its items stop at their next try; no item starts after this
    elif job.kind == "webhook":
        delivery = await session.get(WebhookDelivery, job.id)
        assert delivery is not None
        delivery.status = "cancelled"
        follow = _stopping(f"webhook-{delivery.job_key}")
    elif job.kind == "drift-webhook":
        from teamsvoice.domain.voice_state import workflows as voice_workflows

        event = await session.get(DriftDelivery, job.id)
        assert event is not None
        event.status = "cancelled"
        follow = _stopping(voice_workflows.delivery_workflow_id(event.job_key))
    elif job.kind == "wizard":
        run = await session.get(FusionWizardRun, job.id)
        assert run is not None
        actor = acting_scope().actor
        steps = [dict(step) for step in run.steps]
        current = next((s for s in steps if not s.get("ok")), None)
        if current is not None:  # the step it was in is reported as stopped, in the wizard's own terms
            current.update(executed=True, ok=False, detail="Cancelled")
            run.status = f"wizard_{current['step']}_ERROR"
        run.steps, run.running, run.finished_at = steps, False, utcnow()
        run.error = f"{WIZARD_CANCELLED}{actor.label() if actor else 'system'}"
        follow = _stopping(f"fusion-wizard-{run.job_key}")
    elif job.kind == "sync":
        calling = await session.get(CallingJob, job.id)
        assert calling is not None
        calling.status, calling.finished_at, calling.graph_token_encrypted = "CANCELLED", utcnow(), None
        follow = _stopping(f"calling-{calling.job_key}")
    elif job.kind == "voice-apply":
        apply = await session.get(VoiceApplyJob, job.id)
        assert apply is not None
        apply.status, apply.finished_at = "cancelled", utcnow()
        follow = _stopping(f"voice-apply-{apply.job_key}")
    await _record(session, job, "cancel", "cancelled")
    await session.flush()
    return await find(session, scope, job.ref), follow
