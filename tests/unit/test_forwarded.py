"""Who the client is behind a reverse proxy (api/forwarded.py, TEAMSVOICE_TRUSTED_PROXIES): X-Forwarded-For is believed
from a trusted peer only, read from the right, and a malformed entry never becomes an address."""

import pytest
from pydantic import ValidationError

from teamsvoice.api.forwarded import client_of, networks, scheme_of
from teamsvoice.settings import Settings

TRUSTED = networks(("10.0.0.5", "10.0.1.0/24", "::1"))


@pytest.mark.parametrize(("peer", "headers", "client"), [
    ("198.51.100.4", ["203.0.113.9"], "198.51.100.4"),  # an untrusted peer's header is its own claim
    ("127.0.0.1", ["203.0.113.9"], "127.0.0.1"),  # loopback is trusted only when listed
    ("10.0.0.5", [], "10.0.0.5"),  # the proxy's own request (a health check)
    ("10.0.0.5", ["203.0.113.9"], "203.0.113.9"),
    ("10.0.0.5", ["198.51.100.1, 203.0.113.9"], "203.0.113.9"),  # the left-most is the client's to write
    ("10.0.0.5", ["198.51.100.1", "203.0.113.9"], "203.0.113.9"),  # two header lines are one list, in order
    ("10.0.0.5", ["203.0.113.9, 10.0.1.7"], "203.0.113.9"),  # a trusted hop to its right is passed over
    ("10.0.0.5", ["10.0.1.7, 10.0.0.5"], "10.0.1.7"),  # all trusted: the farthest one believed
    ("::ffff:10.0.0.5", ["203.0.113.9:4711"], "203.0.113.9"),  # IPv4 in IPv6, and a port
    ("::1", ["[2001:db8::7]:443"], "2001:db8::7"),
    ("::1", ["2001:DB8:0::7"], "2001:db8::7"),  # one spelling per address: one counter per client
    ("10.0.0.5", ["not-an-address"], "10.0.0.5"),  # malformed: the hop that wrote it
    ("10.0.0.5", ["203.0.113.9, 10.0.1.7, x"], "10.0.0.5"),
    ("10.0.0.5", ["203.0.113.9, 999.1.1.1"], "10.0.0.5"),
    ("10.0.0.5", ["[2001:db8::7", "203.0.113.9:port"], "10.0.0.5"),
    ("10.0.0.5", ["", " , "], "10.0.0.5"),
    ("10.0.0.5", ["203.0.113.9, "], "203.0.113.9"),
])
def test_the_client_is_the_right_most_untrusted_address(peer: str, headers: list[str], client: str) -> None:
    assert client_of(peer, headers, TRUSTED) == client


def test_the_scheme_is_the_nearest_proxys_and_only_http_or_https() -> None:
    assert scheme_of(["https"]) == "https" and scheme_of(["HTTPS "]) == "https"
    assert scheme_of(["https, http"]) == "http" and scheme_of(["http", "https"]) == "https"
    assert scheme_of([]) is None and scheme_of(["ftp"]) is None and scheme_of([""]) is None


def test_the_setting_takes_addresses_and_networks_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAMSVOICE_TRUSTED_PROXIES", '["10.0.0.5", "10.0.1.0/24", "::1"]')
    assert Settings().trusted_proxies == ["10.0.0.5/32", "10.0.1.0/24", "::1/128"]
    assert Settings(trusted_proxies=[]).trusted_proxies == []
    for wrong in ("*", "proxy.internal", "10.0.1.7/24"):
        with pytest.raises(ValidationError, match="not an IP address or a CIDR network"):
            Settings(trusted_proxies=[wrong])
