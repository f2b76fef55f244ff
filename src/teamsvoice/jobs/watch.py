"""What a job step that runs long is waiting for.

A job step runs its async work on the job engine's one event loop and waits for it (`runtime.JobContext.run`).
Work that waits on Microsoft may rightly take minutes (an outage is retried, never final), but work waiting on
something that never answers would hold its item for ever without a word. So a step that has waited
`REPORT_SECONDS` says so in the log, and again every `REPORT_SECONDS`: for how long, and what its work awaits (its
chain of awaits, outermost first, down to the future at the bottom). When the event loop does not run that
report within `LOOP_ANSWER_SECONDS`, the loop itself is blocked, and the report names where the loop's thread is.
Nothing is cancelled: the report is for the operator (and `teamsvoice jobs show` still shows the item running).
"""

import asyncio
import concurrent.futures
import logging
import sys
import threading
import time
import traceback
from typing import Any, TypeVar

REPORT_SECONDS = 300.0
LOOP_ANSWER_SECONDS = 5.0
T = TypeVar("T")
log = logging.getLogger("teamsvoice.jobs")


def await_chain(task: "asyncio.Task[Any]") -> list[str]:
    """The task's coroutine and what each awaits in turn, as `function (module file:line)`, outermost first; the
    last entry is the object at the bottom (a future, through its iterator) when there is one."""
    chain: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(chain) < 64:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            chain.append(f"<{type(awaited).__name__}>")
            break
        where = "/".join(frame.f_code.co_filename.rsplit("/", 2)[-2:])
        chain.append(f"{frame.f_code.co_qualname} ({where}:{frame.f_lineno})")
        awaited = (getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
                   or getattr(awaited, "gi_yieldfrom", None))
    return chain


def wait_reporting(future: "concurrent.futures.Future[T]", loop: asyncio.AbstractEventLoop, task: "list[asyncio.Task[Any]]",
                   loop_thread_id: int | None, what: str) -> T:
    """`future.result()`, reporting every REPORT_SECONDS while it is not done (`task`: a list the work puts its
    task in when it starts)."""
    started = time.monotonic()
    while True:
        try:
            return future.result(timeout=REPORT_SECONDS)
        except concurrent.futures.TimeoutError:
            if future.done():
                raise  # the work's own TimeoutError
            report(loop, task, loop_thread_id, what, time.monotonic() - started)


def report(loop: asyncio.AbstractEventLoop, task: "list[asyncio.Task[Any]]", loop_thread_id: int | None, what: str,
           waited: float) -> None:
    answered = threading.Event()

    def describe() -> None:  # on the loop: the task's coroutines are read where they run
        try:
            chain = await_chain(task[0]) if task else ["(its work has not started: the loop has not run it yet)"]
            log.warning("%s has been running for %.0f s; its work awaits: %s", what, waited, " -> ".join(chain))
        finally:
            answered.set()

    try:
        loop.call_soon_threadsafe(describe)
    except RuntimeError:  # the loop is closed: the engine is stopping
        return
    if answered.wait(LOOP_ANSWER_SECONDS):
        return
    frame = sys._current_frames().get(loop_thread_id) if loop_thread_id is not None else None
    where = "".join(traceback.format_stack(frame, limit=12)) if frame is not None else "(its thread is gone)\n"
    log.warning("%s has been running for %.0f s, and the job engine's event loop did not answer within %.0f s: it is "
                "blocked, here:\n%s", what, waited, LOOP_ANSWER_SECONDS, where.rstrip())
