"""The audit log's retention as a durable scheduled job: worker processes enqueue `audit_purge` once per
`TEAMSVOICE_AUDIT_PURGE_INTERVAL_SECONDS` slot (jobs/runtime.run_every); it deletes the entries older than
`TEAMSVOICE_AUDIT_RETENTION_DAYS` (retention.py). A purge cut short by a crash is resumed by DBOS, and deleting
again what is already gone does nothing. Resolved drift events are purged alike, by `drift_purge` in the same slots
(`TEAMSVOICE_DRIFT_RETENTION_DAYS`, voice_state/drift.purge_resolved): a workflow of its own, so that each
setting turns its purge off alone and `audit_purge` keeps its one step."""

import logging

from dbos import DBOS

from teamsvoice.domain.audit import retention
from teamsvoice.domain.voice_state import drift
from teamsvoice.jobs.runtime import durable_step, job_context, run_every

log = logging.getLogger("teamsvoice.audit")


@durable_step("audit_purge_expired")
def purge_step() -> int:
    ctx = job_context()
    deleted = retention.purge_expired(ctx.engine, ctx.settings.audit_retention_days)
    if deleted:
        log.info("audit log: %d entries older than %d days deleted", deleted, ctx.settings.audit_retention_days)
    return deleted


@DBOS.workflow(name="audit_purge", max_recovery_attempts=None)
def audit_purge(slot_key: str) -> int:
    return purge_step()


@durable_step("drift_purge_resolved")
def drift_purge_step() -> int:
    ctx = job_context()
    deleted = drift.purge_resolved(ctx.engine, ctx.settings.drift_retention_days)
    if deleted:
        log.info("drift: %d events resolved more than %d days ago deleted", deleted, ctx.settings.drift_retention_days)
    return deleted


@DBOS.workflow(name="drift_purge", max_recovery_attempts=None)
def drift_purge(slot_key: str) -> int:
    return drift_purge_step()


def resume_orphaned() -> int:
    """Starts the purge schedules when the job engine starts (runtime.resume_orphaned_work); nothing is orphaned."""
    settings = job_context().settings
    if settings.audit_retention_days > 0:
        run_every("audit-purge", settings.audit_purge_interval_seconds, audit_purge)
    if settings.drift_retention_days > 0:
        run_every("drift-purge", settings.audit_purge_interval_seconds, drift_purge)
    return 0
