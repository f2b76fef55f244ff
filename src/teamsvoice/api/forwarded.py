"""Who the client is: the TCP peer, or, when the peer is a trusted reverse proxy (`trusted_proxies`), the client that
proxy reports in `X-Forwarded-For`, and the scheme it reports in `X-Forwarded-Proto`.

One place decides it: `ForwardedClient`, outside every middleware but api/paths.py's, sets the request's `client` and
`scheme` once; everything inside reads them (the login throttle's address, the audit's source address, /metrics'
loopback check, the console's Secure cookies). uvicorn's own proxy-header handling is off (`runner.server`): it
trusted 127.0.0.1 and ::1 by default, so any process on the host could claim any address, and any other proxy was not
trusted at all (every client behind it shared the proxy's address: about 30 failed logins from anyone locked every
login out).

`X-Forwarded-For` is read from the right: each proxy appends the address its connection came from, so the
right-most entry is what the nearest proxy saw. Entries that are trusted proxies themselves are passed over; the
first one that is not is the client. What stands left of it is whatever the client sent, never believed. An entry
that is no IP address ends the walk, and the client is then the last trusted hop (whoever wrote it). From a peer
that is not trusted, both headers are ignored.
"""

import functools
import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from teamsvoice.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """The setting's entries as networks (a bare address is a network of one); the setting checked them."""
    return tuple(ipaddress.ip_network(entry) for entry in trusted)


def address(text: str) -> Address | None:
    """An address as a peer or an `X-Forwarded-For` entry gives it: bare, `a.b.c.d:port`, `[v6]` or `[v6]:port`;
    an IPv4 address carried in IPv6 (::ffff:a.b.c.d) is that IPv4 address. None: not an address."""
    text = text.strip()
    if text.startswith("["):
        text, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and rest[1:].isascii() and rest[1:].isdigit())):
            return None
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not (port.isascii() and port.isdigit()):
            return None
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def _trusted(candidate: Address, trusted: Iterable[Network]) -> bool:
    return any(candidate in network for network in trusted)


def client_of(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str | None:
    """The client's address: `peer` unless it is trusted, then the right-most `forwarded_for` entry (the header's
    values in the order received) that is not itself trusted."""
    hop = address(peer) if peer else None
    if hop is None or not _trusted(hop, trusted):
        return peer
    entries = [entry for value in forwarded_for for entry in value.split(",")]
    for entry in reversed(entries):
        if not entry.strip():
            continue  # "a, , b" or an empty header: nothing said
        claimed = address(entry)
        if claimed is None:
            break  # not an address: believe nothing further left
        hop = claimed
        if not _trusted(hop, trusted):
            break
    return str(hop)


def scheme_of(forwarded_proto: list[str]) -> str | None:
    """http or https as the nearest proxy reports it (the right-most value), else None."""
    values = [value.strip().lower() for header in forwarded_proto for value in header.split(",")]
    return values[-1] if values and values[-1] in ("http", "https") else None


class ForwardedClient:
    """Sets `scope["client"]` (and `scope["scheme"]`) from a trusted proxy's headers; see the module's docstring."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.settings.trusted_proxies:
            trusted = networks(tuple(self.settings.trusted_proxies))
            peer = scope.get("client")
            if peer and (hop := address(peer[0])) is not None and _trusted(hop, trusted):
                forwarded_for, forwarded_proto = [], []
                for name, value in scope.get("headers", []):
                    if name == b"x-forwarded-for":
                        forwarded_for.append(value.decode("latin-1"))
                    elif name == b"x-forwarded-proto":
                        forwarded_proto.append(value.decode("latin-1"))
                scope["client"] = (client_of(peer[0], forwarded_for, trusted), 0)
                scope["scheme"] = scheme_of(forwarded_proto) or scope.get("scheme", "http")
        await self.app(scope, receive, send)
