"""Running the emulator over HTTPS: in a background thread (tests, embedding) or as a uvicorn.Server
the product's `serve` command drives in its own event loop.

Logging: the server leaves the process's logging setup alone (no uvicorn log config of its own), and
every record made while it serves (uvicorn's loggers are shared by name with any other uvicorn server in
the process) carries `component="emulator"`, for the process's formatter to show.
"""

import asyncio
import contextvars
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from .app import create_app
from .settings import EmulatorSettings
from .tls import ensure_tls_material


def _url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


_serving = contextvars.ContextVar("m365_emulator_serving", default=False)


def _mark_emulator_records() -> None:
    """Wraps the log record factory once: records made in the emulator server's context are its own."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "marks_emulator", False):
        return

    def make_record(*args, **kwargs):  # type: ignore[no-untyped-def]
        record = previous(*args, **kwargs)
        if _serving.get():
            record.component = "emulator"
        return record

    make_record.marks_emulator = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)


class _EmulatorUvicornServer(uvicorn.Server):
    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # Connections and request tasks start from this context, so they inherit the mark.
        token = _serving.set(True)
        try:
            await super().serve(sockets)
        finally:
            _serving.reset(token)


class _AnswerWhenStopped:
    """uvicorn cancels the requests still running when its graceful shutdown ends. Such a request is answered
    503 with Retry-After (or just ends, when its answer had begun), as a Microsoft front end going away would,
    instead of dying with a traceback in the log."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state  # the emulator's state, for whoever stops the server

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = False

        async def tracking(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, tracking)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.uncancel() > 0:
                raise
            if not started:
                body = b'{"error":{"code":"serviceNotAvailable","message":"The service is shutting down. Please retry later."}}'
                await send({"type": "http.response.start", "status": 503,
                            "headers": [(b"content-type", b"application/json"), (b"retry-after", b"5"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})


def build_uvicorn_server(settings: EmulatorSettings, host: str, port: int) -> uvicorn.Server:
    """A TLS-configured uvicorn server for the emulator app; settings.public_url must already match. The emulator is
    never behind a reverse proxy, so it believes no forwarded header (proxy_headers=False, as teamsvoice's
    runner.server): uvicorn's default took X-Forwarded-For and X-Forwarded-Proto from 127.0.0.1 and ::1 as the
    client's address and scheme, so any local process could claim any."""
    tls = ensure_tls_material(settings.data_dir)
    config = uvicorn.Config(
        _AnswerWhenStopped(create_app(settings)),
        host=host,
        port=port,
        ssl_certfile=str(tls.cert_path),
        ssl_keyfile=str(tls.key_path),
        log_config=None,
        lifespan="off",
        timeout_graceful_shutdown=2,
        proxy_headers=False,
    )
    _mark_emulator_records()
    return _EmulatorUvicornServer(config)


class EmulatorServer:
    """The emulator on a background thread. With port=0 it binds a free port first and points
    settings.public_url at it, so issuer URLs and nextLinks use the real address."""

    def __init__(self, settings: EmulatorSettings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return _url(self.host, self.port)

    @property
    def ca_cert_path(self) -> Path:
        return ensure_tls_material(self.settings.data_dir).ca_cert_path

    def start(self, timeout: float = 15.0) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it Nagle + delayed ACK add ~40 ms to every TLS response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        if self.port == 0:
            self.port = sock.getsockname()[1]
            self.settings.public_url = self.url
        self._socket = sock
        self._server = build_uvicorn_server(self.settings, self.host, self.port)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="m365-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The Microsoft 365 emulator did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server.config.app.state.emulator.store.close()
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
