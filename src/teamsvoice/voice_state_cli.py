"""`teamsvoice plan | apply | drift`: the operator's view of tenants' voice state, straight on the
database and Microsoft (platform-wide; no API credential). Imported only when one of them runs.

`apply` records the same durable apply job as the API's (trigger `cli`, under the same rule: one apply of a
tenant queued or running at a time) for the job engine of `serve` or a worker, and the CLI follows it to its end
(cli.py); `drift --scan` records what it sees like a scheduled scan, without webhook events (the job engine's scans
send those).
"""

import asyncio
import json
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import or_, select

from teamsvoice.core.db import create_engine, session_factory, transaction
from teamsvoice.core.errors import DomainError, NotFound, UpstreamError
from teamsvoice.core.limits import whole_number
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.voice_state import apply as applying
from teamsvoice.domain.voice_state import drift, repository, repository_drift
from teamsvoice.domain.voice_state.models import DriftEvent, VoiceApplyJob
from teamsvoice.domain.voice_state.planner import Plan
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.microsoft.voice_state import tenant_voice
from teamsvoice.settings import Settings

SIGNS = {"create": ("+", "green"), "change": ("~", "yellow"), "remove": ("-", "red"), "leave": ("=", "dim")}


def _show(value: Any) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def render_plan(plan: Plan, console: Console) -> None:
    if plan.empty:
        console.print(f"Tenant {plan.tenant_id}: no differences; Microsoft matches the desired state.")
        return
    counts = plan.counts()
    console.print(f"Tenant {plan.tenant_id}: {len(plan.differences)} difference(s): "
                  + ", ".join(f"{counts[a]} to {a}" for a in ("create", "change", "remove", "leave") if counts[a]))
    for d in plan.differences:
        sign, colour = SIGNS[d.action]
        console.print(f"[{colour}]{sign} {d.action:<6} {d.id}[/{colour}]  ({d.drift})", highlight=False)
        console.print(f"      {d.detail}", highlight=False)
        if d.action in ("change", "create", "remove") and (d.observed is not None or d.desired is not None):
            console.print(f"      Microsoft: {_show(d.observed)}  ->  wanted: {_show(d.desired)}", highlight=False)


async def _enterprise(session: Any, tenant: str) -> Enterprise:
    """By Microsoft tenant id, tenant domain or enterprise id."""
    conditions = [Enterprise.tenant_id == tenant, Enterprise.tenant_domain == tenant.lower()]
    if (number := whole_number(tenant)) is not None:
        conditions.append(Enterprise.id == number)
    enterprise = await session.scalar(select(Enterprise).where(or_(*conditions), Enterprise.tenant_id.is_not(None)))
    if enterprise is None:
        raise NotFound(f"No enterprise is linked to tenant {tenant}")
    return enterprise


async def plan_command(settings: Settings, tenant: str) -> Plan:
    engine, connector = create_engine(settings.effective_database_url), MicrosoftConnector(settings)
    try:
        async with transaction(session_factory(engine)) as session:
            enterprise = await _enterprise(session, tenant)
            _, plan = await applying.current_plan(session, enterprise, tenant_voice(connector.connect(enterprise.tenant_id or "")))
            return plan
    finally:
        await connector.aclose()
        await engine.dispose()


async def start_apply(settings: Settings, tenant: str, adopt: list[str]) -> dict[str, Any]:
    """Records the tenant's apply job (trigger `cli`), after adopting the differences named by `adopt`, in one
    transaction: `applying.new_apply_job` refuses it (nothing adopted) while another apply of the tenant is queued
    or running, as it refuses the API's, and the job holds the tenant against the others while it runs. The job
    is enqueued by the caller once this has committed."""
    engine, connector = create_engine(settings.effective_database_url), MicrosoftConnector(settings)
    try:
        async with transaction(session_factory(engine)) as session:
            enterprise = await _enterprise(session, tenant)
            await applying.refuse_if_running(session, enterprise)  # before Microsoft is asked
            adopted: list[dict[str, str]] = []
            if adopt:  # Microsoft is read before anything is written (SQLite: no write lock held meanwhile)
                _, plan = await applying.current_plan(session, enterprise, tenant_voice(connector.connect(enterprise.tenant_id or "")))
                adopted = await applying.adopt(session, enterprise, plan, adopt, settings.number_quarantine_seconds)
            job = await applying.new_apply_job(session, enterprise, "cli")
            return {"tenantId": enterprise.tenant_id, "adopted": adopted, "jobId": job.id, "jobKey": job.job_key}
    finally:
        await connector.aclose()
        await engine.dispose()


RESCAN_WAIT_SECONDS = 30.0


async def ended_apply(settings: Settings, job_id: int) -> dict[str, Any]:
    """An apply job that has ended, as the API renders it, with the tenant's plan after it (read from Microsoft).
    A completed job's workflow scans the tenant again once the job has ended (the drift it fixed resolved): that
    scan is waited for (up to RESCAN_WAIT_SECONDS), so that `teamsvoice drift` run next shows none of it."""
    engine, connector = create_engine(settings.effective_database_url), MicrosoftConnector(settings)
    sessions = session_factory(engine)
    try:
        deadline = asyncio.get_running_loop().time() + RESCAN_WAIT_SECONDS
        while True:
            async with transaction(sessions) as session:
                job = await session.get(VoiceApplyJob, job_id)
                enterprise = await session.get(Enterprise, job.enterprise_id) if job is not None else None
                if job is None or enterprise is None:
                    raise NotFound(f"Apply job {job_id} not found")
                scan = await repository_drift.drift_settings(session, enterprise.id)
                rendered = applying.render_job(job, enterprise.tenant_id or "")
            rescanned = scan is not None and scan.last_scan_at is not None and job.finished_at is not None \
                and scan.last_scan_at >= job.finished_at
            if job.status != "completed" or rescanned or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        async with transaction(sessions) as session:
            enterprise = await session.get(Enterprise, job.enterprise_id)
            assert enterprise is not None
            _, after = await applying.current_plan(session, enterprise, tenant_voice(connector.connect(enterprise.tenant_id or "")))
        return rendered | {"after": after.wire()}
    finally:
        await connector.aclose()
        await engine.dispose()


async def drift_command(settings: Settings, scan: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """The open drift events; with `scan`, every linked tenant scanned first, and the tenants whose scan failed, each
    with Microsoft's reason (their events are those of their last scan that worked; a transient failure is not recorded
    as the tenant's scan, as the scheduled scans wait it out). Microsoft's connector is built
    for a scan only: the events are the database's (in cloud mode, `drift` refused them on a host without Teams
    PowerShell)."""
    connector = MicrosoftConnector(settings) if scan else None
    engine = create_engine(settings.effective_database_url)
    failed: list[str] = []
    try:
        sessions = session_factory(engine)
        if connector is not None:
            async with transaction(sessions) as session:
                linked = list(await repository.linked_enterprises(session))
            for enterprise in linked:
                async with transaction(sessions) as session:
                    enterprise = await session.get(Enterprise, enterprise.id)
                    try:
                        _, plan = await applying.current_plan(session, enterprise, tenant_voice(connector.connect(enterprise.tenant_id)))
                    except DomainError as exc:
                        transient = isinstance(exc, UpstreamError) and exc.retryable and not exc.is_refusal
                        if not transient:  # (a transient failure is not the scan's outcome: its last scan stands)
                            await drift.record_scan_failure(session, enterprise, exc.message)
                        failed.append(f"tenant {enterprise.tenant_id} ({enterprise.enterprise_name}): {exc.message}"
                                      + (" (Microsoft failed transiently: not recorded; run it again)" if transient else ""))
                    else:
                        await drift.record_scan(session, enterprise, plan, notify=False)
        async with transaction(sessions) as session:
            rows = (await session.execute(select(DriftEvent, Enterprise.tenant_id)
                                          .join(Enterprise, Enterprise.id == DriftEvent.enterprise_id)
                                          .where(DriftEvent.resolved_at.is_(None)).order_by(DriftEvent.id))).all()
            return [drift.render_event(event, tenant_id) for event, tenant_id in rows], failed
    finally:
        if connector is not None:
            await connector.aclose()
        await engine.dispose()


def render_events(events: list[dict[str, Any]], console: Console) -> None:
    if not events:
        console.print("No open drift.")
        return
    table = Table("tenant", "difference", "action", "drift", "first seen", "last seen")
    for e in events:
        table.add_row(e["tenantId"], e["differenceId"], e["action"], e["drift"], e["firstSeenAt"], e["lastSeenAt"])
    console.print(table)
