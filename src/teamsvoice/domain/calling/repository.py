"""Calling jobs (`CallingJob`: durable syncs of Teams users and of the Unified App): the queries of the
request side. The job steps read and write their row through `calling/workflows.py`'s sync sessions."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.calling.models import CallingJob


async def add_job(session: AsyncSession, enterprise_id: int, kind: str, *, detail: dict[str, Any] | None = None,
                  graph_token_encrypted: str | None = None) -> CallingJob:
    """A queued job of the enterprise, flushed (it has its id and key); the caller enqueues it after commit."""
    job = CallingJob(enterprise_id=enterprise_id, kind=kind, status="QUEUED", total=0, results={},
                     detail=detail or {}, graph_token_encrypted=graph_token_encrypted)
    session.add(job)
    await session.flush()
    return job


async def job_by_key(session: AsyncSession, job_key: str) -> CallingJob | None:
    return await session.scalar(select(CallingJob).where(CallingJob.job_key == job_key))
