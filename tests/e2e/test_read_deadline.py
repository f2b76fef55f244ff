"""The HTTP server's deadline for reading a request (runner.ReadDeadline, TEAMSVOICE_REQUEST_READ_TIMEOUT_SECONDS):
a connection that sends nothing, or its headers or body a byte at a time, is closed (each was held for ever); an
answer the app takes longer than the deadline to give still arrives, and a kept-alive connection serves its next
request."""

import asyncio
import socket
import time

from teamsvoice import runner

TIMEOUT = 0.5
WAIT = 20.0  # how long a probe waits for the close: far longer than TIMEOUT (a loaded machine), never reached


async def slow_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await asyncio.sleep(TIMEOUT * 3)  # the app's own time is not bounded by the deadline
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def closed_within(connection: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """Sends `trickle` a byte every 0.1 s; answers when the server closed the connection (None: still open)."""
    start, sent = time.monotonic(), 0
    connection.settimeout(0.1)
    while time.monotonic() - start < seconds:
        if sent < len(trickle):
            try:
                connection.sendall(trickle[sent:sent + 1])
            except OSError:
                return time.monotonic() - start
            sent += 1
        try:
            if connection.recv(1024) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


async def test_slow_clients_are_closed_and_slow_answers_are_not() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = runner.server(slow_app, log_level="warning", lifespan="off", read_timeout=TIMEOUT)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)

        def probe() -> tuple[float | None, float | None, float | None, bytes, bytes]:
            with socket.create_connection(("127.0.0.1", port)) as idle:
                nothing = closed_within(idle, WAIT)
            with socket.create_connection(("127.0.0.1", port)) as slow:
                headers = closed_within(slow, WAIT, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100)
            with socket.create_connection(("127.0.0.1", port)) as slow:
                body = closed_within(slow, WAIT, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"b" * 100)
            with socket.create_connection(("127.0.0.1", port)) as kept:
                kept.settimeout(10)
                answers = []
                for _ in range(2):  # the second request on the same connection, after the first's answer
                    kept.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
                    answer = b""
                    while not answer.endswith(b"ok"):
                        answer += kept.recv(1024)
                    answers.append(answer)
            return nothing, headers, body, answers[0], answers[1]

        nothing, headers, body, first, second = await asyncio.to_thread(probe)
    finally:
        server.should_exit = True
        await task
    assert None not in (nothing, headers, body), (nothing, headers, body)  # closed (after about TIMEOUT)
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
