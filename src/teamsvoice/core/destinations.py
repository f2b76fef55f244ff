"""Where an outbound webhook (a consent outcome, a drift event) may connect, decided at delivery time.

A delivery URL's host is resolved when the delivery is attempted; every address it resolves to must be
public. Internal addresses are refused unless the operator allows them (`allow_loopback_redirects`, the
embedded default and the test suite's loopback receivers; set false in production): loopback, link-local
(169.254.0.0/16 with the cloud metadata endpoint 169.254.169.254, fe80::/10), private (RFC 1918, 100.64/10
shared address space), unique local (fc00::/7), unspecified (0.0.0.0, ::), multicast, reserved and other
non-global ranges, and IPv4 addresses embedded in IPv6 (::ffff:a.b.c.d, 6to4, NAT64) by the address they embed.

The connection is then made to the address that was checked, never to a second answer of the resolver
(no DNS rebinding between check and connect): the request goes to `scheme://ADDRESS:port/...` with the
original `Host` header, and for https the TLS server name (SNI) and certificate check stay the host name;
each such request has a connection of its own (never one pooled for another name at the same address).
"""

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from teamsvoice.core.errors import ValidationFailed

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedDestination(ValidationFailed):
    """The delivery URL's host is, or resolves to, an address a webhook may not reach."""


def resolve(host: str, port: int) -> list[str]:
    """The resolver's answer (every address, in its order). Tests replace this function to pretend a name."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def internal_kind(address: IpAddress) -> str | None:
    """What makes the address internal ("loopback", "link-local", ...), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            return internal_kind(embedded)
    checks = (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
              ("link-local", address.is_link_local), ("multicast", address.is_multicast),
              ("private", address.is_private), ("reserved", address.is_reserved), ("non-global", not address.is_global))
    for kind, hit in checks:
        if hit:
            if kind == "private" and isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"):
                return "unique local"
            return kind
    return None


@dataclass(frozen=True)
class Destination:
    url: str  # the URL as checked (host name kept)
    host: str
    port: int
    address: str  # the one address the connection goes to

    @property
    def pinned_url(self) -> str:
        parts = urlsplit(self.url)
        host = f"[{self.address}]" if ":" in self.address else self.address
        return urlunsplit((parts.scheme, f"{host}:{self.port}", parts.path or "/", parts.query, ""))

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = urlsplit(self.url).scheme
        return host if _DEFAULT_PORTS.get(scheme) == self.port else f"{host}:{self.port}"


def check_destination(url: str, *, allow_internal: bool) -> Destination:
    """Resolves the URL's host once and checks every address; RefusedDestination names the problem (never
    the resolver's whole answer); a name that does not resolve is an httpx.ConnectError (try again later)."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise RefusedDestination("webhook URL: must be an absolute http(s) URL")
    host = parts.hostname
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            # Transient as far as a delivery knows: it is tried again later (an httpx error, like a refused connection).
            raise httpx.ConnectError(f"the host {host[:100]} does not resolve ({type(exc).__name__})") from None
        if not addresses:
            raise httpx.ConnectError(f"the host {host[:100]} does not resolve")
    if not allow_internal:
        for address in addresses:
            kind = internal_kind(address)
            if kind is not None:
                # Any internal answer refuses the name: a resolver that alternates must not get a second try.
                raise RefusedDestination(f"webhook URL: the host {host[:100]} resolves to a {kind} address ({address}); "
                                         f"webhooks go to public addresses only")
    return Destination(url, host, port, str(addresses[0]))


def post(client: httpx.Client, url: str, *, allow_internal: bool, content: bytes,
         headers: Mapping[str, str]) -> httpx.Response:
    """POSTs to the URL after check_destination, connected to the checked address (redirects not followed)."""
    destination = check_destination(url, allow_internal=allow_internal)
    extensions = {"sni_hostname": destination.host} if urlsplit(url).scheme == "https" else {}
    # Connection: close, so no connection to this address is left in the client's pool: one opened (and its
    # certificate checked) for another host name at the same address must never carry this request.
    request = client.build_request("POST", destination.pinned_url, content=content, extensions=extensions,
                                   headers={**headers, "Host": destination.host_header, "Connection": "close"})
    return client.send(request, follow_redirects=False)
