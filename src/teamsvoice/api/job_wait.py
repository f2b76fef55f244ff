"""A request that waits for the durable job it started (Fusion's synchronous bulk update, the only one: the
other families answer 202 with the job at once). The job runs in the workers, not in the request, so a server that
stops while the request waits loses nothing: uvicorn's graceful shutdown cancels the wait after its timeout, and
the caller is told where the job goes on (503 with Retry-After and Location, in the family's envelope:
app.py renders `StoppedWaiting`, a `stopping.ServerStopping`). It was answered with uvicorn's bare text/plain 500
for a job that then succeeded, and a client that took that for a failure sent the work again."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from teamsvoice.api.stopping import ServerStopping, answer_if_stopping

T = TypeVar("T")
POLL_SECONDS = 0.25


class StoppedWaiting(ServerStopping):
    """The server stopped waiting for `what` before it ended: it runs on, followed at `location`."""

    def __init__(self, what: str, location: str) -> None:
        self.location = location
        super().__init__(f"The server is stopping and answers before {what} has ended; the job was not lost and goes on: "
                         f"follow it at {location} rather than sending the request again", {"Location": location})


async def until_ended(read: Callable[[], Awaitable[T]], ended: Callable[[T], bool], *, what: str, location: str) -> T:
    """Reads the job (`read`, a short transaction of its own each time) until `ended`. A cancelled wait (the server
    stopping) raises `StoppedWaiting` naming the job: the request is answered, and the task carries no pending
    cancellation further (the answer still has to be sent)."""
    with answer_if_stopping(lambda: StoppedWaiting(what, location)):
        while not ended(current := await read()):
            await asyncio.sleep(POLL_SECONDS)
    return current
