"""Accepting durable syncs and reporting their progress."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import NotFound, ValidationFailed
from teamsvoice.core.security import Keyring
from teamsvoice.domain.calling import repository as jobs
from teamsvoice.domain.calling.models import CallingJob
from teamsvoice.domain.orgs import repository
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal

# Sync Teams Users runs inline (200 with per-user results) up to this many users, as a durable job above.
INLINE_SYNC_LIMIT = 25


async def voice_user_count(session: AsyncSession, enterprise: Enterprise) -> int:
    return await jobs.voice_user_count(session, enterprise.id)


GRAPH_TOKEN_PURPOSE = "calling-job-graph-token"


async def create_job(session: AsyncSession, keyring: Keyring, enterprise: Enterprise, kind: str,
                     graph_token: str | None = None) -> CallingJob:
    return await jobs.add_job(session, enterprise.id, kind, graph_token_encrypted=keyring.encrypt(
        graph_token, purpose=GRAPH_TOKEN_PURPOSE) if graph_token else None)


async def add_users_sync(session: AsyncSession, enterprise_id: int, voice_user_ids: list[int] | None = None) -> int:
    """Records a sync of the enterprise's Teams users (only `voice_user_ids`, TeamsVoiceUser ids, when given)
    and answers its id; the caller enqueues it (`calling/workflows.enqueue`) once committed."""
    from teamsvoice.domain.calling.workflows import SYNC_TEAMS_USERS

    job = await jobs.add_job(session, enterprise_id, SYNC_TEAMS_USERS,
                             detail={} if voice_user_ids is None else {"voiceUserIds": voice_user_ids})
    return job.id


async def add_users_refresh(session: AsyncSession, enterprise_id: int, voice_user_ids: list[int] | None = None) -> int:
    """Records a refresh of the enterprise's records from Teams (`voice_state/refresh`: Teams is read, never written;
    only the records of `voice_user_ids`, TeamsVoiceUser ids, when given) and answers its id; the caller enqueues it
    (`calling/workflows.enqueue`) once committed."""
    from teamsvoice.domain.calling.workflows import REFRESH_TEAMS_USERS

    job = await jobs.add_job(session, enterprise_id, REFRESH_TEAMS_USERS,
                             detail={} if voice_user_ids is None else {"voiceUserIds": voice_user_ids})
    return job.id


# A whole-enterprise refresh recorded this long ago and still queued or running no longer stands for one to come
# (`users_refresh_waiting`): a job left so by a defect would otherwise keep every later refresh from starting.
REFRESH_WAITING_SECONDS = 3600.0


async def users_refresh_waiting(session: AsyncSession, enterprise_id: int) -> int | None:
    """The id of a refresh of all the enterprise's records (`add_users_refresh` without `voice_user_ids`) queued or
    running, recorded within REFRESH_WAITING_SECONDS, if there is one: a list's `refresh` while it waits or runs
    starts no other (the portal's scroll sent one with every page). A queued one reads Teams once it starts; a running
    one may have read it already, so a change made in Teams since is taken by the next refresh after it."""
    from teamsvoice.domain.calling.workflows import REFRESH_TEAMS_USERS

    since = utcnow() - timedelta(seconds=REFRESH_WAITING_SECONDS)
    rows = await jobs.unended_jobs_since(session, enterprise_id, REFRESH_TEAMS_USERS, since)
    return next((job_id for job_id, detail in rows if "voiceUserIds" not in (detail or {})), None)


async def start_users_refresh(session: AsyncSession, enterprise_id: int) -> int | None:
    """Records a refresh of all the enterprise's records (`add_users_refresh`) unless one waits or runs
    (`users_refresh_waiting`), and answers its id; None, recording nothing, while one waits or runs, or once the
    enterprise's tenant is unlinked (its records went with it: nothing to refresh). The caller enqueues the job once
    committed. Finding none waiting, it locks the enterprise until that commit and looks again: two lists' `refresh`
    at the same moment each found none waiting and each recorded a whole-tenant job; the second now waits for the
    first's commit and finds its job (and an unlink and a refresh wait for each other, as for any work started in the
    tenant). Finding one (the scroll's every page), it takes no lock."""
    if await users_refresh_waiting(session, enterprise_id) is not None:
        return None
    enterprise = await repository.locked_enterprise(session, enterprise_id)
    if enterprise is None or enterprise.tenant_id is None:
        return None
    if await users_refresh_waiting(session, enterprise_id) is not None:
        return None
    return await add_users_refresh(session, enterprise_id)


async def job_in_scope(session: AsyncSession, principal: Principal, job_key: str) -> CallingJob:
    job = await jobs.job_by_key(session, job_key)
    if job is None or await repository.get_enterprise(session, principal, job.enterprise_id) is None:
        raise NotFound(f"Job {job_key} not found")
    return job


# A job's per-user results answered at once at most (getSyncJobStatus' `limit`, and its default: every result of a
# job of up to this many users in one answer; a larger job's are read page after page with `offset`).
RESULTS_PAGE_MAX = 10_000


@dataclass(frozen=True)
class JobProgress:
    """A calling job as its status reads it: how many of its results are in each status (all of them, counted by the
    database) and a page of its per-user results (`workflows.user_result`), in the order it first recorded each
    user."""

    job: CallingJob
    counts: dict[str, int]
    results: list[dict[str, Any]]

    @property
    def processed(self) -> int:
        """How many users have a result (WAITING ones too)."""
        return sum(self.counts.values())


async def job_progress(session: AsyncSession, principal: Principal, job_key: str, *, offset: int = 0,
                       limit: int = RESULTS_PAGE_MAX) -> JobProgress:
    """The job of that key, if its enterprise is in the principal's scope (else NotFound), with its results' counts
    and at most `limit` (1 to RESULTS_PAGE_MAX) of its results from the `offset`th (0 or more)."""
    if offset < 0:
        raise ValidationFailed("offset: must be 0 or more")
    if not 1 <= limit <= RESULTS_PAGE_MAX:
        raise ValidationFailed(f"limit: must be from 1 to {RESULTS_PAGE_MAX}")
    job = await job_in_scope(session, principal, job_key)
    page = await jobs.results_page(session, job.id, offset, limit)
    # Counted after the page is read: a result the job records meanwhile is counted, never shown and left uncounted.
    return JobProgress(job, await jobs.result_counts(session, job.id), page)
