"""Which executors' work a worker takes over: a stopped one, a silent one, and (a process starting on SQLite,
where it is the only worker of its data directory) every other one, however recent its last beat."""

import asyncio
import threading
from datetime import timedelta

import pytest

from sqlalchemy import select
from sqlalchemy.orm import Session

from teamsvoice.core.clock import utcnow
from teamsvoice.jobs.models import JobExecutor
from teamsvoice.jobs import runtime
from teamsvoice.jobs.runtime import job_context, recover_dead_executors


def _record(executor_id: str, *, stopped: bool = False, seconds_ago: float = 0.0) -> None:
    with Session(job_context().engine) as session, session.begin():
        beat = utcnow() - timedelta(seconds=seconds_ago)
        session.add(JobExecutor(executor_id=executor_id, hostname="elsewhere", pid=1, role="worker", started_at=beat,
                                heartbeat_at=beat, stopped=stopped))


def _recorded() -> set[str]:
    with Session(job_context().engine) as session:
        return set(session.scalars(select(JobExecutor.executor_id)))


async def test_a_worker_takes_over_stopped_and_silent_executors_and_at_start_on_sqlite_every_other(live, organisation, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    timeout = live.settings.job_executor_timeout_seconds
    # The live engine's own recovery round (every beat, on its housekeeping thread) would take the executors recorded
    # here between their commit and this test's call: it is held for the test, once a round of the held kind has
    # begun (the rounds run one after another on that thread, so no round that could take them is still running).
    held = threading.Event()
    monkeypatch.setattr(runtime, "recover_dead_executors", lambda **_: held.set() or [])
    assert await asyncio.to_thread(held.wait, 60)
    _record("beating")
    _record("stopped", stopped=True)
    _record("silent", seconds_ago=timeout + 5)

    recovered = await asyncio.to_thread(recover_dead_executors)
    assert sorted(recovered) == ["silent", "stopped"]
    assert "beating" in _recorded() and not {"silent", "stopped"} & _recorded()

    recovered = await asyncio.to_thread(recover_dead_executors, all_others=True)
    assert recovered == ["beating"] and "beating" not in _recorded()
    assert job_context().executor_id not in recovered  # never its own
