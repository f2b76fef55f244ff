"""A request answered while the server stops. uvicorn's graceful shutdown (SIGTERM to `teamsvoice api`) cancels the
requests still running after its timeout, and uvicorn then answers its own bare text/plain 500: a client takes that for
a failure of its request, though the work may have been done or go on. A request that may be running then (one that
waits on a durable job, `job_wait.until_ended`, or does its work inline, as ConnecttoTeams' small syncs) runs it in
`answer_if_stopping`: the cancellation becomes `ServerStopping`, which app.py renders (its `unavailable`: 503 with
Retry-After in the family's envelope) saying what became of the work and what to do."""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ServerStopping(Exception):
    """The server stopped before the request's work ended: `message` says what became of it, `headers` go with the
    503 (a job's Location)."""

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        self.message = message
        self.headers = headers or {}
        super().__init__(message)


@contextmanager
def answer_if_stopping(stopped: Callable[[], ServerStopping]) -> Iterator[None]:
    """Runs the block; a cancellation of it (the server stopping) raises `stopped()`, made at that moment (so it may
    say how far the work got). The task carries no pending cancellation further: the answer still has to be sent."""
    try:
        yield
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        raise stopped() from None
