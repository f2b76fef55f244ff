"""A request whose line or headers pass the HTTP server's limit (runner.ReadDeadline, h11's 16 KiB for the request
line and headers together) gets an answer the client can read: 414 for a long query string, 431 for a large header,
400 for a malformed head. uvicorn answered each 400 and closed the connection with the rest of the request unread:
the kernel then reset it, and the client lost the answer (httpx: ReadError, connection reset by peer)."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from teamsvoice import runner

WAIT = 20.0  # a probe's bound on a loaded machine, never reached


async def echo_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = f"{scope['method']} {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def answer_to(port: int, request: bytes) -> bytes:
    """Sends `request` whole, then reads until the server ends the connection; a reset fails the test."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.settimeout(WAIT)
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


@asynccontextmanager
async def served() -> AsyncIterator[int]:
    """`echo_app` served as the servers serve (`runner.server`) on a loopback port, for the block."""
    listener = socket.create_server(("127.0.0.1", 0))
    server = runner.server(echo_app, log_level="error", lifespan="off")
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        await task


def one_answer(connection: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    field = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    length = int(field.split(b":")[1])
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


async def test_oversized_and_malformed_heads_are_answered_not_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner.ReadDeadline, "linger_seconds", 1.0)
    async with served() as port:

        def probe() -> dict[str, bytes | float | None]:
            seen: dict[str, bytes | float | None] = {
                "query": answer_to(port, b"GET /search?q=" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
                "header": answer_to(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 300_000 + b"\r\n\r\n"),
                "malformed": answer_to(port, b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n" + b"c" * 300_000),
                "normal": answer_to(port, b"GET /small?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            }
            with socket.create_connection(("127.0.0.1", port)) as kept:  # a kept-alive connection's next request
                kept.settimeout(WAIT)
                kept.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
                seen["first"] = one_answer(kept)
                kept.sendall(b"GET /second HTTP/1.1\r\nHost: x\r\nX-Big: " + b"d" * 100_000 + b"\r\n\r\n")
                seen["second"] = one_answer(kept)
            with socket.create_connection(("127.0.0.1", port)) as endless:  # the rest is read for a while only
                endless.settimeout(WAIT)
                endless.sendall(b"GET /?q=" + b"e" * 20_000)
                start, closed = time.monotonic(), None
                while closed is None and time.monotonic() - start < WAIT:
                    try:
                        endless.sendall(b"e" * 100)  # slowly: the time bound, not the bytes', ends it
                    except OSError:
                        closed = time.monotonic() - start
                    time.sleep(0.05)
                seen["endless"] = closed
            return seen

        seen = await asyncio.to_thread(probe)
    query, header, malformed = seen["query"], seen["header"], seen["malformed"]
    assert isinstance(query, bytes) and query.startswith(b"HTTP/1.1 414 "), query[:300]
    assert query.endswith(b"\r\n\r\nURI Too Long: the request line (method, path and query string) is longer than "
                          b"16384 bytes.\n")
    assert isinstance(header, bytes) and header.startswith(b"HTTP/1.1 431 "), header[:300]
    assert header.endswith(b"\r\n\r\nRequest Header Fields Too Large: the request line and header fields are longer "
                           b"than 16384 bytes in all.\n")
    assert isinstance(malformed, bytes) and malformed.startswith(b"HTTP/1.1 400 "), malformed[:300]
    assert malformed.endswith(b"\r\n\r\nInvalid HTTP request received.")
    assert seen["normal"] and seen["normal"].startswith(b"HTTP/1.1 200 ") and seen["normal"].endswith(b"GET /small")
    first, second = seen["first"], seen["second"]
    assert isinstance(first, bytes) and first.startswith(b"HTTP/1.1 200 ") and first.endswith(b"GET /first")
    assert isinstance(second, bytes) and second.startswith(b"HTTP/1.1 431 "), second[:300]
    endless = seen["endless"]
    assert endless is not None and 0.5 <= endless < WAIT / 2, endless  # closed after linger_seconds, not held for ever


async def test_a_byte_that_is_not_printable_ascii_in_the_request_line_is_named() -> None:
    """uvicorn answered a raw "é" (0xC3 0xA9), 0xFF or a control byte in the path with "Invalid HTTP request
    received.", which neither says what is wrong nor what to do."""
    async with served() as port:

        def probe() -> dict[str, bytes]:
            return {
                "accented": answer_to(port, b"POST /api/teamsvoice/v1/tenants/\xc3\xa9/apply HTTP/1.1\r\nHost: x\r\n"
                                            b"Content-Length: 2\r\n\r\n{}"),
                "ff": answer_to(port, b"DELETE /api/v01/draas/draas_v1/tenants/t/subscriptions/\xff/msteams/templates/1 "
                                      b"HTTP/1.1\r\nHost: x\r\n\r\n"),
                "control": answer_to(port, b"GET /search?q=a\x01b HTTP/1.1\r\nHost: x\r\n\r\n"),
                "tab": answer_to(port, b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n"),
                # Printable but malformed (a space in the path, a header line without its colon): as before.
                "space": answer_to(port, b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"),
                "header": answer_to(port, b"GET / HTTP/1.1\r\nHost: x\r\nno colon \xc3\xa9\r\n\r\n"),
                "normal": answer_to(port, b"GET /caf%C3%A9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            }

        seen = await asyncio.to_thread(probe)

    def named(byte: str, at: int) -> bytes:
        return (f"\r\n\r\nBad Request: the request line (method, path and query string) holds a byte that is not "
                f"printable ASCII: 0x{byte} at byte {at}; percent-encode it in the path or query string "
                f"(%{byte}).\n").encode()

    for name, byte, at in (("accented", "C3", 33), ("ff", "FF", 56), ("control", "01", 16), ("tab", "09", 7)):
        assert seen[name].startswith(b"HTTP/1.1 400 "), (name, seen[name][:300])
        assert seen[name].endswith(named(byte, at)), (name, seen[name])
    for name in ("space", "header"):
        assert seen[name].startswith(b"HTTP/1.1 400 ") and seen[name].endswith(b"\r\n\r\nInvalid HTTP request received."), \
            (name, seen[name])
    assert seen["normal"].startswith(b"HTTP/1.1 200 ") and seen["normal"].endswith("GET /café".encode()), seen["normal"]
