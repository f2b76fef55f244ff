"""The connector's transport (microsoft/transport.py) answers httpcore's "has the server closed this idle connection?"
from each connection's own socket: a connection the server closed is never used again, one it keeps is."""

import asyncio
import socket

import httpx

from teamsvoice.microsoft.transport import _Stream, pooled_transport


class _Silent:
    def get_extra_info(self, info: str) -> None:
        return None


def test_an_idle_connection_is_readable_once_its_peer_closes() -> None:
    ours, theirs = socket.socketpair()
    try:
        stream = _Stream(_Silent(), ours)  # type: ignore[arg-type]
        assert stream.get_extra_info("is_readable") is False
        theirs.close()
        assert stream.get_extra_info("is_readable") is True
    finally:
        ours.close()


async def test_a_connection_the_server_closed_is_replaced_and_one_it_keeps_is_reused() -> None:
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                close = b"/close" in request.split(b"\r\n", 1)[0]
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                if close:  # answered, then the server ends the kept-alive connection
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = pooled_transport(verify=True, limits=httpx.Limits(max_connections=10, max_keepalive_connections=10))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/keep")).text == "ok"
            assert (await client.get("/keep")).text == "ok"
            assert len(connections) == 1  # kept alive and used again
            assert (await client.get("/close")).text == "ok"
            await asyncio.sleep(0.2)  # the server's close reaches the idle connection
            assert (await client.get("/keep")).text == "ok"  # not sent on the closed connection
            assert len(connections) == 2
    finally:
        server.close()
        await server.wait_closed()


async def test_the_connectors_clients_send_no_cookie_a_response_set() -> None:
    """Graph authenticates with bearer tokens, and one client serves many tenants: a cookie one tenant's answer
    sets must not go out with the next request (the connector's clients keep none)."""
    from teamsvoice.microsoft.connector import MicrosoftConnector
    from teamsvoice.settings import Settings

    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "affinity=tenant-a; Path=/"}, json={})

    connector = MicrosoftConnector(Settings(microsoft_mode="emulator"), transport=httpx.MockTransport(answer))
    try:
        for client in (connector.http, connector.pool("tenant-a"), connector.pool("tenant-a")):
            await client.get("https://graph.microsoft.com/v1.0/users")
            await client.get("https://graph.microsoft.com/v1.0/users")
        assert seen == [None] * 6
        assert not connector.pool("tenant-a").cookies
        # the same client type without the connector's change keeps it (what the test guards against)
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as plain:
            await plain.get("https://graph.microsoft.com/v1.0/users")
            await plain.get("https://graph.microsoft.com/v1.0/users")
        assert seen[-1] == "affinity=tenant-a"
    finally:
        await connector.aclose()
