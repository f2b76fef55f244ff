"""Plan and apply for one enterprise's tenant, with teamsvoice's records: plan (read-only), adopt
(Microsoft's value into the records for chosen differences), and the apply job's record.

Microsoft is read only after the read transaction ended (never inside a write transaction)."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from teamsvoice.domain.inventory import ownership
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.voice_state import repository
from teamsvoice.domain.voice_state.models import VoiceApplyJob
from teamsvoice.domain.voice_state.planner import Difference, Plan
from teamsvoice.domain.voice_state.service import plan_tenant
from teamsvoice.domain.voice_state.state import DesiredState
from teamsvoice.microsoft.ports import TenantVoiceAdmin

MAX_ADOPT = 10_000


async def current_plan(session: AsyncSession, enterprise: Enterprise, voice: TenantVoiceAdmin) -> tuple[DesiredState, Plan]:
    desired = await repository.desired_state(session, enterprise)
    await session.commit()  # end the read transaction before calling Microsoft
    return desired, await plan_tenant(voice, desired)


def _adopt_ids(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(i, str) and i for i in raw) or len(raw) > MAX_ADOPT:
        raise ValidationFailed(f"adopt: must be a list of difference ids (at most {MAX_ADOPT})")
    return list(dict.fromkeys(raw))


async def _take_number(session: AsyncSession, enterprise: Enterprise, record: TeamsVoiceUser, number: str) -> None:
    await ownership.require_assignable(session, enterprise.id, number, field="adopt")
    holder = await session.scalar(select(TeamsVoiceUser).where(
        TeamsVoiceUser.phone_number == number, TeamsVoiceUser.id != record.id))
    if holder is not None:
        if holder.enterprise_id != enterprise.id:
            raise Conflict(f"adopt: {number} is held by another customer's user")
        holder.phone_number = None  # Microsoft says the number moved: the record follows it
        await session.flush()
    record.phone_number = number


async def _adopt_one(session: AsyncSession, enterprise: Enterprise, d: Difference, quarantine_seconds: float) -> str:
    if d.kind in ("gateway", "usage", "route", "policy"):
        raise ValidationFailed(f"adopt: {d.id}: the Direct Routing configuration comes from the provider's SBC "
                               "gateways; converge it with apply instead")
    if d.action == "leave":
        raise ValidationFailed(f"adopt: {d.id}: nothing to adopt ({d.detail})")
    if d.kind == "number":
        holder_upn = str(d.observed)
        record = await repository.voice_user(session, enterprise, holder_upn)
        if record is None:
            record = TeamsVoiceUser(enterprise_id=enterprise.id, user_principal_name=holder_upn.lower(),
                                    microsoft_user_id=d.user_id, calling_enabled=True)
            session.add(record)
            await session.flush()
        await _take_number(session, enterprise, record, d.object)
        record.calling_enabled = True
        return f"{d.object} recorded as {holder_upn}'s"
    if d.field == "account":
        number = await repository.free_deleted_user(session, enterprise, d.object, quarantine_seconds)
        return f"{d.object} removed from the records" + (f"; {number} freed" if number else "")
    record = await repository.voice_user(session, enterprise, d.object)
    if record is None:
        raise NotFound(f"adopt: {d.id}: no record of {d.object}")
    if d.field == "phoneNumber":
        numbers = list(d.observed or [])
        if len(numbers) > 1:
            raise ValidationFailed(f"adopt: {d.id}: {d.object} holds several numbers in Teams; teamsvoice records one")
        if numbers:
            await _take_number(session, enterprise, record, numbers[0])
            record.calling_enabled = True
        else:
            record.phone_number = None
        return f"{d.object}'s number recorded as {numbers[0] if numbers else 'none'}"
    if d.field == "voiceRoutingPolicy":
        record.voice_routing_policy = d.observed
        return f"{d.object}'s voice routing policy recorded as {d.observed or 'Global'}"
    if d.field == "enterpriseVoice":
        record.calling_enabled = bool(d.observed)
        return f"{d.object}'s calling recorded as {'enabled' if d.observed else 'disabled'}"
    raise ValidationFailed(f"adopt: {d.id}: cannot be adopted")


async def adopt(session: AsyncSession, enterprise: Enterprise, current: Plan, raw_ids: Any,
                quarantine_seconds: float) -> list[dict[str, str]]:
    """All or nothing: every id must be a difference of the current plan that can be adopted."""
    ids = _adopt_ids(raw_ids)
    by_id = {d.id: d for d in current.differences}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ValidationFailed(f"adopt: {unknown[0]} is not a difference of the tenant's current plan")
    done = [{"id": i, "detail": await _adopt_one(session, enterprise, by_id[i], quarantine_seconds)} for i in ids]
    await session.flush()
    return done


async def new_apply_job(session: AsyncSession, enterprise: Enterprise, trigger: str) -> VoiceApplyJob:
    running = await session.scalar(select(VoiceApplyJob.id).where(
        VoiceApplyJob.enterprise_id == enterprise.id, VoiceApplyJob.status.in_(("queued", "running"))))
    if running is not None:
        raise PreconditionFailed(f"An apply of this tenant is already running (job {running})")
    job = VoiceApplyJob(enterprise_id=enterprise.id, trigger=trigger, status="queued", differences=[], desired={},
                        results=[])
    session.add(job)
    await session.flush()
    return job


async def apply_job(session: AsyncSession, enterprise: Enterprise, job_id: int) -> VoiceApplyJob:
    job = await session.get(VoiceApplyJob, job_id)
    if job is None or job.enterprise_id != enterprise.id:
        raise NotFound(f"Apply job {job_id} not found")
    return job


def render_job(job: VoiceApplyJob, tenant_id: str) -> dict[str, Any]:
    failed = [r for r in job.results if r.get("status") == "failed"]
    return {
        "jobId": job.id, "tenantId": tenant_id, "status": job.status, "trigger": job.trigger,
        "differences": job.differences, "results": job.results, "failed": len(failed), "error": job.error,
        "createdAt": job.created_at.isoformat() + "Z",
        "finishedAt": job.finished_at.isoformat() + "Z" if job.finished_at else None,
    }
