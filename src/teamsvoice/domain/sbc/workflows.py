"""Keeping the SBC in step with teamsvoice, as a durable job.

Every change to PBX users or locations (after its commit) enqueues `sync_sbc` on the SBC queue, which
runs one at a time across every worker (global concurrency 1), so two syncs never interleave their
writes. A sync reads the whole desired state when it runs, so it covers every change committed before
it started: a change made while one sync is *waiting in the queue* needs no second one (it is coalesced),
which keeps 500 changes at once to a couple of syncs. Kamailio being down delays a sync (it waits and
retries, capped backoff) but loses nothing. An enqueue lost after its commit (a crash in between, or the job
engine's database refusing the enqueue: the request still answers its committed change) is covered by the sync
every process enqueues at start (`resume_orphaned`) and by the workers' periodic sweep (`resume_unstarted`,
every TEAMSVOICE_JOB_ORPHAN_SWEEP_SECONDS), which enqueues one when the SBC's tables are behind the records.
"""

import logging
import random
import time
import uuid
from typing import Any

import anyio
from dbos import DBOS, SetWorkflowID
from sqlalchemy.orm import Session

from teamsvoice.core.db import sync_transaction
from teamsvoice.core.metrics import record_job_retry
from teamsvoice.domain.sbc.ports import DesiredSbc, SbcUnavailable
from teamsvoice.domain.sbc.service import desired_state
from teamsvoice.jobs.runtime import durable_step, job_context, park_if_stopping, queue, queue_depths, register_queue, stopping
from teamsvoice.sbc import sbc_configured, sbc_from_settings
from teamsvoice.settings import Settings

SBC_QUEUE = "teamsvoice-sbc"
log = logging.getLogger("teamsvoice.sbc")
_registered_for: str | None = None  # the job engine start (executor id) the queue was registered in


def _queue() -> None:
    """Registers the queue once per start of the job engine (a process may start it more than once)."""
    global _registered_for
    executor_id = job_context().executor_id
    if _registered_for != executor_id:
        register_queue(SBC_QUEUE, global_concurrency=1, polling_interval_sec=0.1)
        _registered_for = executor_id


def read_desired(session: Session, settings: Settings) -> DesiredSbc:
    return desired_state(session, job_context().keyring, gateway_fqdn=settings.sbc_gateway_fqdn,
                         default_expires=settings.sbc_registration_expires,
                         microsoft_proxies=settings.sbc_microsoft_proxies)


def until_sbc_answers() -> dict[str, Any]:
    """Applies the desired state, re-read on every try, until Kamailio answers. Its being down is never
    final: the sync waits (capped exponential backoff, jittered) and tries again; stopping parks it."""
    ctx = job_context()
    delay, failures = 0.2, 0
    while True:
        sbc = sbc_from_settings(ctx.settings)
        if sbc is None:
            return {"skipped": "no SBC attached"}
        with sync_transaction(ctx.engine) as session:
            desired = read_desired(session, ctx.settings)
        try:
            report = sbc.apply(desired)
            return {"registrations": len(desired.registrations), "refreshed": report.registered_or_refreshed,
                    "unregistered": report.unregistered, "targetsReloaded": report.targets_reloaded,
                    "refused": report.refused}
        except SbcUnavailable as exc:
            failures += 1
            wait = min(ctx.settings.sbc_retry_max_delay_seconds, delay) * (0.5 + random.random() / 2)
            record_job_retry("sync_sbc")
            log.warning("SBC unavailable (try %d): %s; retrying in %.1f s", failures, exc.message, wait)
            end = time.monotonic() + wait
            while time.monotonic() < end:
                if stopping():
                    park_if_stopping()
                time.sleep(min(0.1, max(0.0, end - time.monotonic())))
            delay = min(ctx.settings.sbc_retry_max_delay_seconds, delay * 2)


@durable_step("sbc_apply")
def apply_step() -> dict[str, Any]:
    return until_sbc_answers()


@DBOS.workflow(name="sync_sbc", max_recovery_attempts=None)
def sync_sbc() -> dict[str, Any]:
    return apply_step()


def _enqueue() -> bool:
    _queue()
    if queue_depths([SBC_QUEUE])[SBC_QUEUE]:  # it has not started: it will read this change (committed before this check)
        return False
    with SetWorkflowID(f"sbc-sync-{uuid.uuid4()}"):
        queue(SBC_QUEUE).enqueue(sync_sbc)
    return True


async def enqueue_sync(settings: Settings) -> None:
    """After a commit that changed PBX users or locations. No SBC attached: nothing to do. The change is committed
    whatever happens here, so an enqueue that fails (the job engine's database busy or away) is logged, not raised:
    the request answers what it committed (a raise here answered a 500 for a change that was made, and a client
    sending it again got a 404 for a user already deleted), and the workers' sweep (`resume_unstarted`) finds the
    SBC behind and syncs it."""
    if not sbc_configured(settings):
        return
    try:
        await anyio.to_thread.run_sync(_enqueue)
    except Exception:  # noqa: BLE001 - committed: the sweep applies it; the request's answer stays the truth
        log.warning("the SBC sync could not be enqueued after a committed change; the next sweep (every %.0f s) "
                    "applies it", settings.job_orphan_sweep_seconds, exc_info=True)


def resume_orphaned() -> int:
    """Each start enqueues one sync: it covers a change committed just before a crash, whose enqueue was lost (and
    what Kamailio holds in memory apart from its tables)."""
    if not sbc_configured(job_context().settings):
        return 0
    return int(_enqueue())


def resume_unstarted() -> int:
    """The workers' periodic sweep (`runtime.sweep_unstarted_work`): a sync when the SBC's tables are behind
    teamsvoice's records, i.e. a change was committed whose enqueue was lost and no later sync covered it. Nothing
    when a sync already waits in the queue (it reads every change when it starts), when the tables hold the desired
    state, or when Kamailio's database does not answer (the next sweep asks again; a sync could not write either)."""
    ctx = job_context()
    sbc = sbc_from_settings(ctx.settings)
    if sbc is None:
        return 0
    _queue()
    if queue_depths([SBC_QUEUE])[SBC_QUEUE]:
        return 0
    with sync_transaction(ctx.engine) as session:
        desired = read_desired(session, ctx.settings)
    try:
        if sbc.up_to_date(desired):
            return 0
    except SbcUnavailable as exc:
        log.info("the SBC sweep could not read the SBC's state (%s); it asks again at the next sweep", exc.message)
        return 0
    log.warning("the SBC is behind teamsvoice's records (a change whose sync was never enqueued): syncing it")
    return int(_enqueue())
