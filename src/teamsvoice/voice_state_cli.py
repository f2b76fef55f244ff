"""`teamsvoice plan | apply | drift`: the operator's view of tenants' voice state, straight on the
database and Microsoft (platform-wide; no API credential). Imported only when one of them runs.

`apply` here runs the apply operations in this process and waits for them (the API's apply is a durable
job run by the job engine); `drift --scan` records what it sees like a scheduled scan, without webhook
events (the job engine's scans send those).
"""

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import or_, select

from teamsvoice.core.db import create_engine, end_transaction, session_factory, transaction
from teamsvoice.core.errors import DomainError, NotFound
from teamsvoice.core.limits import whole_number
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.voice_state import apply as applying
from teamsvoice.domain.voice_state import drift, repository
from teamsvoice.domain.voice_state.models import DriftEvent
from teamsvoice.domain.voice_state.planner import Plan
from teamsvoice.domain.voice_state.service import converge
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


async def apply_command(settings: Settings, tenant: str, adopt: list[str]) -> dict[str, Any]:
    engine, connector = create_engine(settings.effective_database_url), MicrosoftConnector(settings)
    try:
        async with transaction(session_factory(engine)) as session:
            enterprise = await _enterprise(session, tenant)
            voice = tenant_voice(connector.connect(enterprise.tenant_id or ""))
            adopted: list[dict[str, str]] = []
            if adopt:
                _, plan = await applying.current_plan(session, enterprise, voice)
                adopted = await applying.adopt(session, enterprise, plan, adopt, settings.number_quarantine_seconds)
                await end_transaction(session)
            desired, plan = await applying.current_plan(session, enterprise, voice)
            results, records = await converge(voice, plan, desired, limit=settings.microsoft_tenant_concurrency)
            for d in records:
                number = await repository.free_deleted_user(session, enterprise, d.object, settings.number_quarantine_seconds)
                results.append({"id": d.id, "stage": "record", "status": "done",
                                "detail": f"{d.object} removed from the records" + (f"; {number} freed" if number else "")})
            await end_transaction(session)
            _, after = await applying.current_plan(session, enterprise, voice)
            await drift.record_scan(session, enterprise, after, notify=False)  # the drift it fixed is resolved now
            return {"tenantId": plan.tenant_id, "adopted": adopted, "results": results, "after": after.wire()}
    finally:
        await connector.aclose()
        await engine.dispose()


async def drift_command(settings: Settings, scan: bool) -> list[dict[str, Any]]:
    engine, connector = create_engine(settings.effective_database_url), MicrosoftConnector(settings)
    try:
        sessions = session_factory(engine)
        if scan:
            async with transaction(sessions) as session:
                linked = list(await repository.linked_enterprises(session))
            for enterprise in linked:
                async with transaction(sessions) as session:
                    enterprise = await session.get(Enterprise, enterprise.id)
                    try:
                        _, plan = await applying.current_plan(session, enterprise, tenant_voice(connector.connect(enterprise.tenant_id)))
                    except DomainError as exc:
                        await drift.record_scan_failure(session, enterprise, exc.message)
                    else:
                        await drift.record_scan(session, enterprise, plan, notify=False)
        async with transaction(sessions) as session:
            rows = (await session.execute(select(DriftEvent, Enterprise.tenant_id)
                                          .join(Enterprise, Enterprise.id == DriftEvent.enterprise_id)
                                          .where(DriftEvent.resolved_at.is_(None)).order_by(DriftEvent.id))).all()
            return [drift.render_event(event, tenant_id) for event, tenant_id in rows]
    finally:
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
