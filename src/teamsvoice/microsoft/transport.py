"""The HTTP client and transport of the connector's pools: httpx's own, with two costs taken out.

**No cookie jar.** Graph authenticates every request with its bearer token; nothing of Microsoft's needs a cookie
sent back. httpx extracts each response's cookies into its client's jar all the same (a urllib request and response
built and handed to http.cookiejar per response: 3.6% of a worker's CPU in bench/microsoft_budget.py, py-spy
2026-12-04), and a client of the connector is shared by many tenants (one pool per tenant group), so a cookie set
in one tenant's answer would go out with the next tenant's requests. `cookieless_client` keeps none.

**The idle-connection check.**
Each time a request starts or ends, httpcore's pool asks every connection it holds whether it has expired, and an
idle connection answers by looking at its socket ("is_readable": the server closed it). Over TLS that look went
through anyio's typed attributes, which build a dictionary of every attribute of the TLS stream and the stream
below it on each call: with a few dozen connections per pool, a quarter of the CPU the connector spent on a
request (py-spy on a worker, 2026-12-02). Here each connection keeps its socket from the moment it connects (the
same socket under TLS: `start_tls` wraps it) and answers the look from it directly, as httpcore would.
"""

import ssl
import typing

import httpcore
import httpx
from httpcore._utils import is_socket_readable


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, sock: typing.Any) -> None:
        self._inner, self._socket = inner, sock

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout), self._socket)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable" and self._socket is not None:
            return is_socket_readable(self._socket)
        return self._inner.get_extra_info(info)


def _keeping_socket(stream: httpcore.AsyncNetworkStream) -> _Stream:
    return _Stream(stream, stream.get_extra_info("socket"))


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:
        return _keeping_socket(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:
        return _keeping_socket(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: responses' Set-Cookie headers are ignored."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def cookieless_client(**options: typing.Any) -> httpx.AsyncClient:
    """An httpx.AsyncClient (`options` as its own) that keeps no cookie from any response."""
    client = httpx.AsyncClient(**options)
    if not isinstance(getattr(client, "_cookies", None), httpx.Cookies):  # (httpx keeps its jar there; no option)
        raise RuntimeError("httpx changed: the connector's client cannot turn its cookie jar off")
    client._cookies = _NoCookies()
    return client


def pooled_transport(*, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport (TLS, limits and all), its pool connecting through `_Backend`."""
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits)
    pool = transport._pool  # httpcore's AsyncConnectionPool (httpx builds it; no other way to give it a backend)
    if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx/httpcore changed: the connector's transport cannot wrap its connection pool's backend")
    pool._network_backend = _Backend(pool._network_backend)
    return transport
