"""The drift scan schedule is the job runtime's one schedule loop (jobs/runtime.run_every): one scan of every linked
tenant per interval slot, named by the slot, and registered so that stopping the job engine stops it (it once ran
a loop of its own that outlived the engine it was started by). Not in `api` processes; never with interval 0."""

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from teamsvoice.domain.voice_state import workflows
from teamsvoice.jobs import runtime


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(runtime, "start_once", lambda *args: calls.append(args))
    yield calls
    for stop in runtime._schedules.values():
        stop.set()
    runtime._schedules.clear()


def _context(monkeypatch: pytest.MonkeyPatch, role: str, interval: float) -> None:
    context = SimpleNamespace(role=role, settings=SimpleNamespace(drift_scan_interval_seconds=interval))
    monkeypatch.setattr(runtime, "job_context", lambda: context)
    monkeypatch.setattr(workflows, "job_context", lambda: context)


def test_a_worker_scans_once_per_slot_and_the_engine_stop_ends_it(monkeypatch, started) -> None:  # type: ignore[no-untyped-def]
    _context(monkeypatch, "worker", 3600)
    seen = threading.Event()
    monkeypatch.setattr(runtime, "start_once", lambda *args: (started.append(args), seen.set()))
    assert workflows.start_schedule() == 0
    assert seen.wait(10)
    workflow_id, workflow, slot_key = started[0]
    slot = slot_key.removeprefix("slot-")
    assert (workflow_id, workflow) == (f"voice-drift-schedule-3600-{slot}", workflows.scan_linked)
    stop = runtime._schedules["voice-drift-schedule"]  # what stop_jobs sets
    workflows.start_schedule()  # a second start replaces the first loop
    assert stop.is_set() and runtime._schedules["voice-drift-schedule"] is not stop


@pytest.mark.parametrize(("role", "interval"), [("api", 3600), ("worker", 0)])
def test_no_schedule_in_api_processes_or_at_interval_zero(monkeypatch, started, role, interval) -> None:  # type: ignore[no-untyped-def]
    _context(monkeypatch, role, interval)
    workflows.start_schedule()
    assert "voice-drift-schedule" not in runtime._schedules and started == []
