"""Plan and apply for one enterprise's tenant, with teamsvoice's records: plan (read-only), adopt
(Microsoft's value into the records for chosen differences), and the apply job's record.

Microsoft is read only after the read transaction ended (never inside a write transaction)."""

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.db import end_transaction
from teamsvoice.core.errors import Conflict, NotFound, PreconditionFailed, UpstreamError, ValidationFailed
from teamsvoice.domain.fusion import licences
from teamsvoice.domain.inventory import ownership
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.voice_state import repository, repository_apply
from teamsvoice.domain.voice_state.models import VoiceApplyJob
from teamsvoice.domain.voice_state.planner import Difference, Plan
from teamsvoice.domain.voice_state.service import plan_tenant
from teamsvoice.domain.voice_state.state import DesiredState, parse_document, rename_domain
from teamsvoice.microsoft.ports import TeamsVoice, TenantVoiceAdmin, UserAccounts

MAX_ADOPT = 10_000


async def current_plan(session: AsyncSession, enterprise: Enterprise, voice: TenantVoiceAdmin) -> tuple[DesiredState, Plan]:
    desired = await repository.desired_state(session, enterprise)
    await end_transaction(session)  # end the read transaction before calling Microsoft
    return desired, await plan_tenant(voice, desired)


def _adopt_ids(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(i, str) and i for i in raw) or len(raw) > MAX_ADOPT:
        raise ValidationFailed(f"adopt: must be a list of difference ids (at most {MAX_ADOPT})")
    return list(dict.fromkeys(raw))


async def _take_number(session: AsyncSession, enterprise: Enterprise, record: TeamsVoiceUser, number: str,
                       adopted: list[TeamsVoiceUser]) -> bool:
    """Records the number as the record's; answers whether the record gains its first number (a newly voice-enabled
    user takes a licence of a Fusion subscription). A record of the enterprise it is taken from joins `adopted`."""
    await ownership.require_assignable(session, enterprise.id, number, field="adopt")
    holder = await repository_apply.number_holder(session, number, except_voice_user_id=record.id)
    if holder is not None:
        if holder.enterprise_id != enterprise.id:
            raise Conflict(f"adopt: {number} is held by another customer's user")
        holder.phone_number = None  # Microsoft says the number moved: the record follows it
        adopted.append(holder)
        await session.flush()
    gains = record.phone_number is None
    record.phone_number = number
    return gains


async def _adopt_one(session: AsyncSession, enterprise: Enterprise, d: Difference, quarantine_seconds: float,
                     gained: list[str], adopted: list[TeamsVoiceUser]) -> str:
    """Adopts one difference; a user it gives its first number is appended to `gained`, a record it changes to
    `adopted`."""
    if d.kind in ("gateway", "usage", "route", "policy"):
        raise ValidationFailed(f"adopt: {d.id}: the Direct Routing configuration comes from the provider's SBC "
                               "gateways; converge it with apply instead")
    if d.action == "leave":
        raise ValidationFailed(f"adopt: {d.id}: nothing to adopt ({d.detail})")
    if d.kind == "number":
        holder_upn = str(d.observed)
        record = await voice_users.find_or_add(session, enterprise.id, holder_upn, d.user_id, calling_enabled=True)
        if await _take_number(session, enterprise, record, d.object, adopted):
            gained.append(holder_upn)
        record.calling_enabled = True
        adopted.append(record)
        return f"{d.object} recorded as {holder_upn}'s"
    if d.field == "account":
        number = await repository.free_deleted_user(session, enterprise, d.object, quarantine_seconds)
        return f"{d.object} removed from the records" + (f"; {number} freed" if number else "")
    record = await repository.voice_user(session, enterprise, d.object)
    if record is None:
        raise NotFound(f"adopt: {d.id}: no record of {d.object}")
    adopted.append(record)
    if d.field == "phoneNumber":
        numbers = list(d.observed or [])
        if len(numbers) > 1:
            raise ValidationFailed(f"adopt: {d.id}: {d.object} holds several numbers in Teams; teamsvoice records one")
        if numbers:
            if await _take_number(session, enterprise, record, numbers[0], adopted):
                gained.append(d.object)
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
    """All or nothing: every id must be a difference of the current plan that can be adopted, and the users it
    voice-enables must fit the Fusion subscription's licences (a number a Teams administrator assigned by hand
    is recorded only within them)."""
    ids = _adopt_ids(raw_ids)
    by_id = {d.id: d for d in current.differences}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ValidationFailed(f"adopt: {unknown[0]} is not a difference of the tenant's current plan")
    gained: list[str] = []
    adopted: list[TeamsVoiceUser] = []
    done = [{"id": i, "detail": await _adopt_one(session, enterprise, by_id[i], quarantine_seconds, gained, adopted)}
            for i in ids]
    for record in adopted:
        record.settle()  # (its settings are Teams' now: a change left pending has nothing to undo to)
    await session.flush()
    if gained:
        await licences.check_user_quota(session, enterprise.id)
    await _accounts_follow(session, adopted)
    return done


ACCOUNT_JOB_RUNNING = ("creating", "updating", "deleting")  # a resource account's statuses while its job runs


async def _accounts_follow(session: AsyncSession, records: list[TeamsVoiceUser]) -> None:
    """A resource account's wish (`desired`: its number and policy) follows its record adopted from Microsoft: kept
    as it was, the account's next change (a new display name) sent the number adopt replaced back to Teams. Not while
    the account's own job runs: that job brings Microsoft and the record to the wish, and the wish was sent later."""
    by_id = {record.id: record for record in records}
    for account in await repository_apply.resource_accounts_of(session, list(by_id)):
        record = by_id[account.voice_user_id or 0]
        if account.status not in ACCOUNT_JOB_RUNNING:
            account.desired = {**account.desired, "phoneNumber": record.phone_number,
                               "vrp": record.voice_routing_policy}


def _running(job_id: int | None) -> PreconditionFailed:
    """How another apply of a tenant is refused while one is queued or running. A tenant has one at a time (a unique
    index on the unfinished jobs): two would act on Microsoft side by side, the same numbers assigned and the same
    routes created twice."""
    return PreconditionFailed("An apply of this tenant is already running" + (f" (job {job_id})" if job_id else ""))


async def lost_to_another_apply(session: AsyncSession, enterprise_id: int) -> PreconditionFailed:
    """The refusal once writing an unfinished job broke the unique index: another was recorded at the same moment."""
    return _running(await repository_apply.unfinished_apply_job(session, enterprise_id))


async def refuse_if_running(session: AsyncSession, enterprise: Enterprise) -> None:
    """The refusal `new_apply_job` gives while an apply of the tenant is queued or running, for a caller that asks
    Microsoft before it records its job (the CLI's apply with --adopt): said before Microsoft is asked."""
    running = await repository_apply.unfinished_apply_job(session, enterprise.id)
    if running is not None:
        raise _running(running)


async def new_apply_job(session: AsyncSession, enterprise: Enterprise, trigger: str) -> VoiceApplyJob:
    await refuse_if_running(session, enterprise)
    job = VoiceApplyJob(enterprise_id=enterprise.id, trigger=trigger, status="queued", differences=[], desired={},
                        results=[])
    try:
        async with session.begin_nested():  # another apply started at the same moment found none running either
            session.add(job)
    except IntegrityError:
        raise await lost_to_another_apply(session, enterprise.id) from None
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


def restore_request(body: Any) -> DesiredState:
    """The body of a restore: a document, or `{"document": ..., "renameDomain": {"from": ..., "to": ...}}` for
    a replacement tenant with another domain."""
    if isinstance(body, dict) and "document" in body:
        wanted = parse_document(body["document"])
        rename = body.get("renameDomain")
        if rename is not None:
            if (not isinstance(rename, dict) or not all(isinstance(rename.get(k), str) and "." in rename[k]
                                                        for k in ("from", "to"))):
                raise ValidationFailed("renameDomain: must be {\"from\": \"<old domain>\", \"to\": \"<new domain>\"}")
            wanted = rename_domain(wanted, rename["from"], rename["to"])
        return wanted
    return parse_document(body)


async def restore(session: AsyncSession, enterprise: Enterprise, wanted: DesiredState, user_ids: dict[str, str]) -> dict[str, Any]:
    """Makes a document the enterprise's desired state (the same or a replacement tenant): its users become
    the enterprise's voice users (records of users it does not name lose number and calling), and each of
    its voice routes on a gateway named after one of the reseller's SBCs becomes a direct route of the
    enterprise. `user_ids` maps each document UPN to its Microsoft object id (looked up by the caller before
    this write). What cannot be restored is answered as `notRestored`. Plan / apply then converge."""
    # A user gone from the tenant with nothing to restore (calling off, no number) is left out.
    users = [u for u in wanted.users if u.user_principal_name in user_ids or u.calling_enabled or u.phone_number]
    missing = [u.user_principal_name for u in users if u.user_principal_name not in user_ids]
    if missing:
        raise ValidationFailed(f"users: {', '.join(missing[:10])} not found in tenant {enterprise.tenant_id}")
    for u in users:
        if u.phone_number:
            await ownership.require_assignable(session, enterprise.id, u.phone_number, field="users.phoneNumber")
    records = await repository_apply.records_by_upn(session, enterprise.id)
    holding = {upn for upn, record in records.items() if record.phone_number}
    named = {u.user_principal_name for u in users}
    for upn, record in records.items():
        record.phone_number = None  # freed first: numbers may move between users of the document
        if upn not in named:
            record.calling_enabled = False
    await session.flush()
    for u in users:
        record = records.get(u.user_principal_name)
        if record is None:
            record = TeamsVoiceUser(enterprise_id=enterprise.id, user_principal_name=u.user_principal_name)
            session.add(record)
        record.microsoft_user_id = user_ids[u.user_principal_name]
        record.phone_number, record.voice_routing_policy = u.phone_number, u.voice_routing_policy
        record.calling_enabled = u.calling_enabled
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("users: a number of the document is held by another customer's user") from exc
    if any(u.phone_number and u.user_principal_name not in holding for u in users):  # newly voice-enabled users
        await licences.check_user_quota(session, enterprise.id)  # take Fusion licences: all of them fit, or nothing
    await repository.restore_direct_routes(session, enterprise, wanted.routing)
    derived = (await repository.desired_state(session, enterprise)).routing
    not_restored = ([f"gateway:{g.fqdn}" for g in wanted.routing.gateways if g.fqdn not in {d.fqdn for d in derived.gateways}]
                    + [f"route:{r.identity}" for r in wanted.routing.routes if r.identity not in {d.identity for d in derived.routes}]
                    + [f"policy:{p.identity}" for p in wanted.routing.policies
                       if p.identity not in {d.identity for d in derived.policies}])
    return {"tenantId": enterprise.tenant_id, "users": len(users), "notRestored": not_restored}


OFFBOARDED = "OFFBOARDED"  # a voice user's record after offboarding (its last_sync_status)


async def offboard(session: AsyncSession, enterprise: Enterprise, upn: str, *, delete_user: bool, quarantine_seconds: float,
                   voice: TeamsVoice, accounts: UserAccounts) -> dict[str, Any]:
    """Offboards a voice user: the record loses number and calling, the number goes to quarantine (then back
    to the inventory), and in Microsoft the user's numbers are removed, Enterprise Voice turned off and the
    account disabled (or deleted). The records are committed first: should Microsoft fail midway, the plan
    shows what is left and apply finishes it, or the offboarding is sent again: that retry answers what the first
    attempt would have (the number it freed, kept in the record's `last_sync_detail`). That detail's `account`
    ("disabled", "deleted") is written once Microsoft did it; a failure's answer says what is recorded and whether
    sending the request again finishes it (a refusal, say a 403 for an account with an admin role, does not)."""
    record = await repository.voice_user(session, enterprise, upn)
    if record is None:
        raise NotFound(f"No voice user {upn} in tenant {enterprise.tenant_id}")
    number, user = record.phone_number, record.microsoft_user_id or record.user_principal_name
    if number is None and record.last_sync_status == OFFBOARDED:  # offboarded before (Microsoft failed midway)
        number = (record.last_sync_detail or {}).get("numberFreed")
    account = "deleted" if delete_user else "disabled"
    await repository.free_deleted_user(session, enterprise, upn, quarantine_seconds, status=OFFBOARDED,
                                       detail={"numberFreed": number})
    await end_transaction(session)
    step = "remove its numbers in Teams"
    try:
        await voice.remove_numbers(record.user_principal_name)
        step = "turn Enterprise Voice off"
        await voice.set_enterprise_voice(record.user_principal_name, False)
        step = "delete the account" if delete_user else "disable the account"
        if delete_user:
            await accounts.delete(user)
        else:
            await accounts.disable(user)
    except UpstreamError as exc:  # our words first: a long message is cut at its end
        freed = f"number {number} freed" if number else "no number"
        again = ("send the request again to finish it" if exc.retryable
                 else "sending the request again fails the same way until what Microsoft refuses is resolved")
        raise UpstreamError(f"Offboarding of {record.user_principal_name} recorded ({freed}, calling off), "
                            f"not finished in Microsoft: {again}. Microsoft failed to {step}: {exc.message}",
                            retryable=exc.retryable, status=exc.status, upstream_code=exc.upstream_code) from exc
    record.last_sync_detail = {**(record.last_sync_detail or {}), "account": account}  # committed with the request
    return {"userPrincipalName": record.user_principal_name, "numberFreed": number,
            "quarantineSeconds": quarantine_seconds if number else 0, "account": account}
