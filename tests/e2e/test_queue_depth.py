"""The job queues' depth (the `teamsvoice_job_queue_depth` gauge each worker measures at every beat) is counted in
the job engine's database, not listed: listing every waiting workflow cost a worker 11% of its CPU while 3,000
items waited. The count must still say what DBOS's own listing says."""

import uuid

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

from teamsvoice.domain.sbc.workflows import sync_sbc
from teamsvoice.jobs.runtime import queue_depths

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
