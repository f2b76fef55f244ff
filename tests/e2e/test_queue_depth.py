"""How the job engine's queues are used. Their depth (the `teamsvoice_job_queue_depth` gauge each worker measures at every beat) is counted in
the job engine's database, not listed: listing every waiting workflow cost a worker 11% of its CPU while 3,000
items waited. The count must still say what DBOS's own listing says. And
enqueueing goes through the queue object registered at the engine's start, reading no queue row (a bulk job's parent
enqueues each of its items)."""

import threading
import uuid

import pytest

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID
from dbos._dbos import _get_dbos_instance

from teamsvoice.domain.sbc.workflows import sync_sbc
from sqlalchemy import event

from teamsvoice.jobs import runtime
from teamsvoice.jobs.runtime import queue, queue_depths, register_queue

QUEUE = "teamsvoice-test-depth"


def test_queue_depths_count_what_waits(live) -> None:  # type: ignore[no-untyped-def]
    DBOS.register_queue(QUEUE, on_conflict="always_update")
    other = f"{QUEUE}-empty"
    assert queue_depths([QUEUE, other]) == {QUEUE: 0, other: 0}
    ids = [f"{QUEUE}-{uuid.uuid4()}" for _ in range(3)]
    try:
        for workflow_id in ids:
            # Recorded for another release of the workflows: no worker of this one starts them, so they wait.
            with SetWorkflowID(workflow_id), SetEnqueueOptions(app_version="teamsvoice-workflows-elsewhere"):
                DBOS.retrieve_queue(QUEUE).enqueue(sync_sbc)
        assert queue_depths([QUEUE, other]) == {QUEUE: 3, other: 0}
        listed = DBOS.list_queued_workflows(queue_name=QUEUE, status="ENQUEUED", load_input=False, load_output=False)
        assert sorted(w.workflow_id for w in listed) == sorted(ids)
        DBOS.cancel_workflow(ids[0])
        assert queue_depths([QUEUE])[QUEUE] == 2  # a cancelled workflow no longer waits
    finally:
        for workflow_id in ids:
            DBOS.cancel_workflow(workflow_id)
    assert queue_depths([QUEUE]) == {QUEUE: 0}


def test_enqueueing_reads_no_queue_row(live, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Through the queue object `register_queue` kept, an enqueue reads no queue row. Through `DBOS.retrieve_queue`
    each enqueue read it once before the engine took a queue's settings as read for REMEMBER_SECONDS
    (runtime._remember_what_rarely_changes); now at most once in that time."""
    monkeypatch.setattr(runtime, "_monotonic", lambda: -3e9)  # (one moment, whatever the machine's speed)
    name = f"{QUEUE}-registered"
    register_queue(name)
    engine = _get_dbos_instance()._sys_db.engine
    sent: list[str] = []

    here = threading.get_ident()

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if threading.get_ident() == here:  # the engine's own pollers use the same engine meanwhile
            sent.append(statement)

    ids: list[str] = []

    def enqueue_three(through) -> list[str]:  # type: ignore[no-untyped-def]
        sent.clear()
        for _ in range(3):
            ids.append(f"{name}-{uuid.uuid4()}")
            with SetWorkflowID(ids[-1]), SetEnqueueOptions(app_version="teamsvoice-workflows-elsewhere"):
                through(name).enqueue(sync_sbc)
        return list(sent)

    def queue_reads(statements: list[str]) -> int:
        return sum(statement.lstrip().startswith("SELECT") and "queues.name =" in statement for statement in statements)

    event.listen(engine, "before_cursor_execute", count)
    try:
        registered = enqueue_three(queue)
        retrieved = enqueue_three(DBOS.retrieve_queue)
    finally:
        event.remove(engine, "before_cursor_execute", count)
        for workflow_id in ids:
            DBOS.cancel_workflow(workflow_id)
    assert queue_depths([name]) == {name: 0}
    assert registered and queue_reads(registered) == 0, registered
    assert queue_reads(retrieved) <= 1, retrieved
    assert len(retrieved) - queue_reads(retrieved) == len(registered)  # otherwise the same statements
