"""A job step still waiting for its async work after minutes says in the log what the work awaits, or that the job
engine's event loop is blocked and where (jobs/watch.py); the step's result is unchanged. The report period is
shortened here; the loop is a real one on its own thread, as the engine runs it."""

import asyncio
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from teamsvoice.jobs import watch
from teamsvoice.jobs.runtime import JobContext, job_event_loop


@pytest.fixture
def loop() -> Iterator[tuple[asyncio.AbstractEventLoop, threading.Thread]]:
    loop = job_event_loop()  # as the engine builds it
    thread = threading.Thread(target=loop.run_forever, name="test-jobs-loop", daemon=True)
    thread.start()
    yield loop, thread
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "REPORT_SECONDS", 0.3)
    monkeypatch.setattr(watch, "LOOP_ANSWER_SECONDS", 0.5)


def context(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> JobContext:
    # Only the loop matters to JobContext.run; the engine's other resources are not used by it.
    return JobContext(None, None, None, None, "test", "worker", loop, None, None, None,  # type: ignore[arg-type]
                      loop_thread_id=thread.ident)


def test_a_step_waiting_long_says_what_its_work_awaits(loop, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    ctx = context(*loop)
    released = asyncio.Event()

    async def waits_for_a_release() -> str:
        await released.wait()
        return "done"

    threading.Timer(3.0, lambda: loop[0].call_soon_threadsafe(released.set)).start()  # (several reports' time)
    with caplog.at_level(logging.WARNING, logger="teamsvoice.jobs"):
        assert ctx.run(waits_for_a_release) == "done"  # the answer is the work's, reports or not
    # (on a loaded machine an early report may find the work not started yet, or the loop slow to answer)
    reports = [r.getMessage() for r in caplog.records if "its work awaits: " in r.getMessage()]
    assert reports, caplog.text
    assert "job step of no workflow" in reports[-1]
    chain = reports[-1].split("its work awaits: ", 1)[1]
    assert "waits_for_a_release" in chain and "Event.wait" in chain, chain  # outermost first, down to the event


def test_a_blocked_loop_is_named_with_where_it_is_blocked(loop, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    ctx = context(*loop)

    def blocks_the_loop() -> None:
        time.sleep(3.0)  # a synchronous call on the loop: nothing else runs meanwhile (the watch needs 0.8 s)

    async def quick_work() -> int:
        return 7

    loop[0].call_soon_threadsafe(blocks_the_loop)
    with caplog.at_level(logging.WARNING, logger="teamsvoice.jobs"):
        assert ctx.run(quick_work) == 7
    blocked = [r.getMessage() for r in caplog.records if "did not answer" in r.getMessage()]
    assert blocked and "blocks_the_loop" in blocked[0], caplog.text


def test_the_works_own_timeout_is_its_outcome(loop) -> None:  # type: ignore[no-untyped-def]
    ctx = context(*loop)

    async def times_out() -> None:
        raise TimeoutError("Microsoft did not answer")

    with pytest.raises(TimeoutError, match="Microsoft did not answer"):
        ctx.run(times_out)
