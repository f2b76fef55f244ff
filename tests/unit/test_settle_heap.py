"""A started process settles its heap (runner.settle_heap): what it built while starting leaves the cyclic
collector's sight, and the youngest generation is collected less often (bench/README.md run V)."""

import asyncio
import gc
import subprocess
import sys
import textwrap
from collections.abc import Callable

import uvicorn

from teamsvoice import runner
from tests.support.postgres import free_port


def test_settle_heap_freezes_what_was_built_and_raises_the_young_threshold() -> None:
    # In a process of its own: the test process's collector is left as it is.
    script = textwrap.dedent("""
        import gc
        from teamsvoice import runner
        built = [[i] for i in range(1000)]
        assert gc.get_freeze_count() == 0
        runner.settle_heap()
        print(gc.get_freeze_count() >= len(built), gc.get_threshold()[0], gc.get_threshold()[1:] == (10, 10))
    """)
    answer = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert answer.stdout.split() == ["True", str(runner.YOUNG_GENERATION_THRESHOLD), "True"]


async def _app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


async def _serve_briefly(once_started: Callable[[uvicorn.Server], None] | None) -> None:
    """Serves a bare app as the commands do, until `once_started(server)` ran (when given; serve_until looks every
    0.05 s), then stops."""
    sock = runner.bind("127.0.0.1", free_port(), "test")
    server = runner.server(_app, log_level="warning")
    stop, ran = asyncio.Event(), asyncio.Event()

    def started() -> None:
        assert once_started is not None
        once_started(server)
        ran.set()

    serving = asyncio.create_task(runner.serve_until(stop, server, sock, once_started=started if once_started else None))
    await runner.wait_started(server, serving, "test")
    if once_started is not None:
        await asyncio.wait_for(ran.wait(), 5)
    stop.set()
    await serving


def test_serve_until_runs_once_started_after_the_server_started_and_only_once() -> None:
    seen: list[bool] = []
    asyncio.run(_serve_briefly(lambda server: seen.append(server.started)))
    assert seen == [True]


def test_serve_until_without_once_started_leaves_the_collector_alone() -> None:
    before = (gc.get_freeze_count(), gc.get_threshold())
    asyncio.run(_serve_briefly(None))
    assert (gc.get_freeze_count(), gc.get_threshold()) == before
