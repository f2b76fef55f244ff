"""The Fusion MS Teams onboarding wizard as a durable job: one idempotent step per wizard step.

Each step records its outcome on the `FusionWizardRun` row (what `GET msteams/wizard` reports) before the
next one starts; a restarted process resumes the workflow and skips the steps already done.
"""

import asyncio
import logging
from typing import Any

import anyio
from dbos import DBOS
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import sync_transaction
from teamsvoice.core.errors import DomainError
from teamsvoice.core.security import Keyring
from teamsvoice.domain.fusion import onboarding, repository_onboarding
from teamsvoice.domain.fusion.models import FusionWizardRun
from teamsvoice.jobs.runtime import durable_step, failure_message, job_context, start_once, until_microsoft_answers
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.microsoft.ports import Connector
from teamsvoice.settings import Settings

log = logging.getLogger("teamsvoice.jobs")

NO_PUBLIC_URL = ("teamsvoice cannot give this subscription's consent URL: the process that ran the wizard has no "
                 "TEAMSVOICE_PUBLIC_URL (the API's public URL, which Microsoft redirects the consent to). The provider "
                 "must set it for every worker, as for the API processes; then run the wizard again")


async def check_admin(connector: Connector, keyring: Keyring, settings: Settings, data: onboarding.WizardInput,
                      consented: str | None) -> str:
    """Step 1 (`onboarding.check_admin`) in this process. A consent URL is built from `public_url`: a worker has no
    host or port to default it from, and without it the URL's redirect_uri was a bare path, which Microsoft refuses
    when the administrator opens it. So the step fails naming the setting instead (a tenant consented already
    needs no URL, and passes)."""
    try:
        return await onboarding.check_admin(connector, keyring, settings.public_url or "", data, consented)
    except onboarding.StepFailed as failed:
        if failed.consent_url is None or settings.public_url:
            raise
        log.error("onboarding wizard run %s needs a consent URL, and TEAMSVOICE_PUBLIC_URL is not set in this "
                  "process: set it for every worker, as for the API processes", data.run_id)
        raise onboarding.StepFailed(NO_PUBLIC_URL) from failed


def _record(engine: Engine, run_id: int, number: int, ok: bool, detail: str | None, *, value: Any = None,
            status: str | None = None, consent_url: str | None = None, ms_tenant_id: str | None = None) -> None:
    with sync_transaction(engine) as session:
        run = session.get(FusionWizardRun, run_id)
        assert run is not None
        _outcome(run, number, ok, detail, value=value, status=status, consent_url=consent_url, ms_tenant_id=ms_tenant_id)


def _outcome(run: FusionWizardRun, number: int, ok: bool, detail: str | None, *, value: Any = None,
             status: str | None = None, consent_url: str | None = None, ms_tenant_id: str | None = None) -> None:
    """Step `number`'s outcome on the run; a failed step, or the last one, ends it."""
    steps = [dict(step) for step in run.steps]
    steps[number - 1].update(executed=True, ok=ok, detail=detail, value=value)
    run.steps = steps
    run.status = status or f"wizard_{number}_{'OK' if ok else 'ERROR'}"
    if ms_tenant_id:
        run.ms_tenant_id = ms_tenant_id
    if not ok:
        run.running, run.finished_at, run.error, run.consent_url = False, utcnow(), detail, consent_url
    elif number == len(onboarding.WIZARD_STEPS):
        run.running, run.finished_at = False, utcnow()


def _record_waiting(engine: Engine, run_id: int, number: int, detail: str) -> None:
    """Microsoft failed transiently: the step is not done and not failed; it says why it waits."""
    with sync_transaction(engine) as session:
        run = session.get(FusionWizardRun, run_id)
        assert run is not None
        steps = [dict(step) for step in run.steps]
        steps[number - 1].update(detail=detail)
        run.steps = steps


def run_wizard_step(engine: Engine, settings: Settings, keyring: Keyring, run_id: int, number: int) -> bool:
    """Performs one step (skipped when already done). True when the wizard may go on."""
    with sync_transaction(engine) as session:
        run = session.get(FusionWizardRun, run_id)
        if run is None or not run.running:
            return False
        data = onboarding.load_input(session, run_id)
        if data is None:  # its MS Teams administrator deleted since it started: it ends here (it stayed running for
            # ever, and no wizard of the subscription could start again)
            _outcome(run, number, False, "The subscription's MS Teams administrator was deleted while the wizard ran; "
                     "configure one (POST msteams/admins) and start the wizard again")
            return False
        step = run.steps[number - 1]
        if step.get("executed") and step.get("ok"):
            return True
        domain = run.steps[1].get("value")
        fqdn = onboarding.sbc_fqdn(session, data.reseller_id, domain) if number == 5 and domain else None
        # Before every step that acts on the tenant, not only step 2: a retried run resumes at its failed step, by
        # when another subscription may have linked the tenant (step 5 rewrote that customer's voice configuration).
        # (Step 6, the link, checks it in its own transaction: `onboarding.link`.)
        linked_elsewhere = (1 < number < len(onboarding.WIZARD_STEPS) and data.ms_tenant_id is not None
                            and onboarding.tenant_linked_elsewhere(session, data.enterprise_id, data.ms_tenant_id))
        consented = onboarding.consented_tenant(session, data.enterprise_id) if number == 1 else None

    async def microsoft_work() -> tuple[str | None, Any]:
        connector = MicrosoftConnector(settings)
        tenant = data.ms_tenant_id or ""
        try:
            if linked_elsewhere:
                raise onboarding.linked_elsewhere_refusal(tenant)
            if number == 1:
                tenant = await check_admin(connector, keyring, settings, data, consented)
                return f"tenant {tenant}, {data.admin_username} is a Global Administrator", tenant
            if number == 2:
                found = await onboarding.verified_domain(connector, tenant)
                return f"verified domain {found}", found
            if number == 3:
                return await onboarding.check_licences(connector, tenant), None
            if number == 4:
                await onboarding.check_powershell(connector, tenant, data.admin_username)
                return "Get-CsOnlineUser answered", None
            if number == 5:
                if fqdn is None:
                    raise onboarding.StepFailed("No verified domain was recorded by step 2")
                return await onboarding.create_voice_configuration(connector, tenant, fqdn), fqdn
            return None, None
        finally:
            await connector.aclose()

    try:
        if number == 6:
            with sync_transaction(engine) as session:
                onboarding.link(session, data, data.ms_tenant_id or "", domain)
            detail, value = f"linked to tenant {data.ms_tenant_id}", None
        else:
            async def waiting(failures: int, exc: DomainError, wait: float) -> None:
                _record_waiting(engine, run_id, number, f"waiting for Microsoft (try {failures}): {exc.message}")

            detail, value = asyncio.run(until_microsoft_answers(microsoft_work, waiting,
                                                                workflow="fusion_onboarding_wizard"))
    except onboarding.StepFailed as failed:
        _record(engine, run_id, number, False, failed.message, status=failed.status,
                consent_url=failed.consent_url)
        return False
    except Exception as error:  # noqa: BLE001 - whatever failed the step is its outcome: the run never stays running
        _record(engine, run_id, number, False, failure_message(error, f"onboarding wizard run {run_id}: step {number}"))
        return False
    try:
        _record(engine, run_id, number, True, detail, value=value, ms_tenant_id=value if number == 1 else None)
    except IntegrityError:  # step 1 named a tenant that another subscription's running run holds (one per tenant)
        _record(engine, run_id, number, False, onboarding.tenant_busy_refusal(value).message)
        return False
    return True


def run_wizard(engine: Engine, settings: Settings, keyring: Keyring, run_id: int) -> bool:
    """Every step in order, without the job engine (used by the demo seed, which runs before it starts)."""
    return all(run_wizard_step(engine, settings, keyring, run_id, n) for n, _ in onboarding.WIZARD_STEPS)


@durable_step("fusion_wizard_step")
def wizard_step(run_id: int, number: int) -> bool:
    ctx = job_context()
    return run_wizard_step(ctx.engine, ctx.settings, ctx.keyring, run_id, number)


@DBOS.workflow(name="fusion_onboarding_wizard", max_recovery_attempts=None)
def onboarding_wizard(run_id: int) -> bool:
    for number, _text in onboarding.WIZARD_STEPS:
        if not wizard_step(run_id, number):
            return False
    return True


def _start(run_id: int) -> None:
    with sync_transaction(job_context().engine) as session:
        job_key = repository_onboarding.wizard_run_key(session, run_id)
    start_once(f"fusion-wizard-{job_key}", onboarding_wizard, run_id)


async def enqueue_wizard(run_id: int) -> None:
    """Idempotent: the workflow id is the run's never-reused key."""
    await anyio.to_thread.run_sync(_start, run_id)


def resume_orphaned() -> int:
    """A crash between commit and enqueue leaves a running run with no workflow; start those (idempotent).
    To be called from runtime.start_jobs after DBOS.launch()."""
    with sync_transaction(job_context().engine) as session:
        running = repository_onboarding.running_wizard_run_ids(session)
    for run_id in running:
        _start(run_id)
    return len(running)


resume_unstarted = resume_orphaned  # (all it starts is work committed but never enqueued: runtime.sweep_unstarted_work)
