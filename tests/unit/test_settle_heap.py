"""A started process settles its heap (runner.settle_heap): what it built while starting leaves the cyclic
collector's sight, and the youngest generation is collected less often (bench/README.md run V)."""

import asyncio
import subprocess
import sys
import textwrap

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


def test_serve_until_runs_once_started_after_the_server_started_and_only_once() -> None:
    seen: list[bool] = []

    async def main() -> None:
        sock = runner.bind("127.0.0.1", free_port(), "test")
        server = runner.server(_app, log_level="warning")
        stop = asyncio.Event()
        serving = asyncio.create_task(runner.serve_until(stop, server, sock, once_started=lambda: seen.append(server.started)))
        await runner.wait_started(server, serving, "test")
        for _ in range(100):  # (it looks every 0.05 s)
            if seen:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await serving

    asyncio.run(main())
    assert seen == [True]


def test_serve_until_without_once_started_leaves_the_collector_alone() -> None:
    async def main() -> None:
        sock = runner.bind("127.0.0.1", free_port(), "test")
        server = runner.server(_app, log_level="warning")
        stop = asyncio.Event()
        serving = asyncio.create_task(runner.serve_until(stop, server, sock))
        await runner.wait_started(server, serving, "test")
        stop.set()
        await serving

    import gc

    before = (gc.get_freeze_count(), gc.get_threshold())
    asyncio.run(main())
    assert (gc.get_freeze_count(), gc.get_threshold()) == before
