"""The long-running processes' event loop (`runner.new_event_loop`): uvloop, installed with teamsvoice, unless
TEAMSVOICE_EVENT_LOOP=asyncio asks for Python's own; the job engine's loop is the same kind."""

import asyncio
import subprocess
import sys

import pytest
import uvloop

from teamsvoice import runner


def test_uvloop_by_default_and_asyncio_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runner.EVENT_LOOP_ENV, raising=False)
    loop = runner.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    monkeypatch.setenv(runner.EVENT_LOOP_ENV, "asyncio")
    loop = runner.new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop) and isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()


def test_run_answers_on_that_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runner.EVENT_LOOP_ENV, raising=False)

    async def kind() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    assert runner.run(kind()).startswith("uvloop")


def test_a_process_without_uvloop_runs_on_asyncio() -> None:
    """Where uvloop cannot be imported (a platform without its build), asyncio's loop runs instead."""
    code = ("import sys; sys.modules['uvloop'] = None\n"
            "from teamsvoice import runner\n"
            "import asyncio\n"
            "async def kind(): return type(asyncio.get_running_loop()).__module__\n"
            "print(runner.run(kind()))")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().startswith("asyncio")
