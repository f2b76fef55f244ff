"""Ctrl-C on `teamsvoice serve` while a bulk job's parent workflow is still enqueueing its items (seen in the job
engine's own tables: some items enqueued, not all): a clean exit, with no DBOS error in the log (the engine's stop
used to destroy DBOS under an enqueue: "No DBOS was created yet"), the parent left PENDING for its replay. The parent
enqueues a page of items per transaction; here pages of PAGE items, so that the stop lands between the first and the
last."""

import signal
import sqlite3
import time
from contextlib import closing

import httpx
import pytest
from sqlalchemy import create_engine, text

from teamsvoice.core.db import sync_url
from tests.e2e.test_serve import STOP_SECONDS, Served, database_env, served  # noqa: F401  (fixtures)
from tests.support.fusion_bulk import prepare_bulk

pytestmark = pytest.mark.long

N = 300  # items: the parent enqueues them PAGE at a time, the stop reaches the engine within 0.5 s
# One item a page: the stop found 17-29 of the 300 enqueued (pages of 3: 48-117, a margin a loaded machine could eat)
PAGE = 1


def job_engine(served_: Served):  # type: ignore[no-untyped-def]
    """(query, dispose): `query(sql)` answers the first column of `sql`'s rows in the job engine's own tables
    (DBOS's workflow_status), on the server's backend."""
    url = served_.env.get("TEAMSVOICE_DATABASE_URL")
    if url is None:
        path = served_.data_dir / "teamsvoice-jobs.sqlite3"

        def on_sqlite(sql: str) -> list:
            with closing(sqlite3.connect(path, timeout=5)) as connection:
                return [row[0] for row in connection.execute(sql.format(schema=""))]

        return on_sqlite, lambda: None
    engine = create_engine(sync_url(url), pool_size=1)

    def on_postgres(sql: str) -> list:
        with engine.connect() as connection:
            return list(connection.scalars(text(sql.format(schema="dbos."))))

    return on_postgres, engine.dispose


ITEMS = "SELECT count(*) FROM {schema}workflow_status WHERE name = 'fusion_bulk_item'"
PARENTS = "SELECT status FROM {schema}workflow_status WHERE name = 'fusion_bulk_job'"


async def test_sigint_while_the_parent_enqueues_exits_cleanly_and_leaves_it_pending(served: Served) -> None:  # noqa: F811
    served.env["TEAMSVOICE_BULK_ENQUEUE_PAGE_SIZE"] = str(PAGE)
    served.start()
    creds = served.credentials()
    query, dispose = job_engine(served)
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=120) as http:
            setup = await prepare_bulk(http, creds, N, first_number=24600000)
            accepted = await http.put(f"{setup.path}/msteams/users/bulk",
                                      headers={**setup.headers, "Prefer": "respond-async"}, json=setup.body("halfway"))
            assert accepted.status_code == 202, accepted.text
        deadline = time.monotonic() + 60
        while (enqueued := query(ITEMS)[0]) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert served.process is not None
        served.process.send_signal(signal.SIGINT)
        assert 0 < enqueued < N, f"the stop did not land while the parent was enqueueing ({enqueued} of {N} enqueued)"
        started = time.monotonic()
        code = served.process.wait(timeout=30)
        took = time.monotonic() - started
        log = (served.data_dir.parent / "serve.log").read_text(errors="replace")
        assert code == 0 and took < STOP_SECONDS, (code, took, log[-3000:])
        assert "Traceback" not in log and "DBOSException" not in log and "No DBOS" not in log, log[-3000:]
        # Stopped halfway and left PENDING (not failed): a restart replays it and it enqueues the rest, as any
        # stopped workflow (tests/e2e/test_shutdown.py restarts and completes a job).
        assert query(ITEMS)[0] < N, f"the parent had enqueued all {N} items before the engine stopped"
        assert query(PARENTS) == ["PENDING"]
    finally:
        dispose()
