"""Runs an ASGI app under uvicorn on loopback in a background thread (real HTTP for end-to-end tests)."""

import socket
import threading
import time
from typing import Any

import uvicorn

from teamsvoice import runner


def bound_socket() -> socket.socket:
    # proto=IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted connections (else Nagle adds ~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class LiveServer:
    def __init__(self, app: Any, sock: socket.socket) -> None:
        self._sock = sock
        # Kept-alive connections stay open for a minute (uvicorn's default is 5 s): the suite's clients reuse theirs, and
        # httpx does not send a request again when the server closed the connection just as it was reused (a fresh-clone
        # CI run on a loaded machine: httpx.ReadError in test_fusion_routes_refuse_another_reseller, which passes alone).
        # The server `teamsvoice serve` and `api` run (runner.server: its HTTP protocol, no proxy headers of uvicorn's),
        # so what the tests see at the HTTP edge is what production does.
        self.server: uvicorn.Server = runner.server(app, log_config=uvicorn.config.LOGGING_CONFIG, log_level="warning",
                                                    lifespan="on", timeout_keep_alive=60)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)


async def emulator_faults(emulator: Any, method: str, **config: int) -> dict[str, Any]:
    """The emulator's fault injection (`/_admin/faults`): PUT sets it, GET reads it, DELETE clears it."""
    import httpx

    async with httpx.AsyncClient(verify=str(emulator.ca_cert_path)) as admin:
        answer = await admin.request(method, f"{emulator.url}/_admin/faults", json=config or None)
        assert answer.status_code == 200, answer.text
        return answer.json()


async def answer_of_a_stopping_api(settings: Any, emulator: Any, send: Any, running: Any) -> Any:
    """Serves the API as `teamsvoice api` does (runner.server, stopped by runner.serve_until as a signal stops it;
    no job engine of its own) with a graceful timeout of half a second, while Microsoft answers slowly (400 ms);
    `send(client)` starts a request; once `running()` says it is under way (or it has answered) the server is
    stopped. Answers the request's response; the emulator's faults are cleared whatever happens."""
    import asyncio

    import httpx

    from teamsvoice.app import create_app

    sock = bound_socket()
    server = runner.server(create_app(settings, jobs_role=None), log_level="warning")
    server.config.timeout_graceful_shutdown = 0.5
    stop = asyncio.Event()
    serving = asyncio.create_task(runner.serve_until(stop, server, sock))
    await runner.wait_started(server, serving, "API")
    await emulator_faults(emulator, "PUT", latencyMs=400)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=30) as stopping:
            request = asyncio.create_task(send(stopping))
            deadline = asyncio.get_running_loop().time() + 60
            while not (request.done() or await running()):  # (however slowly a busy machine gets it under way)
                assert asyncio.get_running_loop().time() < deadline, "the request never got under way"
                await asyncio.sleep(0.05)
            stop.set()
            answer = await request
        await serving
    finally:
        await emulator_faults(emulator, "DELETE")
    return answer
