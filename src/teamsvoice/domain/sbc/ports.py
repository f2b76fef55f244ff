"""The SBC port: what teamsvoice asks of the provider's SBC, independent of the SIP server behind it."""

from dataclasses import dataclass, field
from typing import Literal, Protocol

from teamsvoice.core.errors import DomainError

# What the SBC reports for one registration. FAILED: the PBX refused or did not answer (retried later).
RegistrationState = Literal["REGISTERED", "REGISTERING", "PENDING", "FAILED", "DISABLED"]


class SbcUnavailable(DomainError):
    """The SBC could not be reached or did not answer: the change waits and is applied when it is back."""

    code = "sbc_unavailable"


@dataclass(frozen=True)
class Registration:
    """One remote registration: the SBC registers to the customer's PBX on behalf of a Teams user."""

    key: str  # stable and ours: "tv-<PBX user id>" (also the user part of the Contact the PBX calls)
    number: str  # the Teams user's E.164 number (local user of the registration)
    gateway_fqdn: str  # local domain: the SBC gateway FQDN of the user's direct route
    pbx_user_id: str  # remote user (AOR user at the PBX)
    pbx_auth_user_id: str  # digest user name
    password: str
    pbx_domain: str  # the PBX location's canonical SIP domain
    proxy: str  # sip:<domain>[:<port>]: where the REGISTER is sent
    expires: int


@dataclass(frozen=True)
class RouteTarget:
    """A routing destination: a dispatcher set (Microsoft's proxies, or one PBX location) and one URI."""

    set_id: int
    uri: str
    description: str


@dataclass(frozen=True)
class DesiredSbc:
    registrations: list[Registration]
    targets: list[RouteTarget]


@dataclass(frozen=True)
class HeldRegistration:
    """A registration as the SBC holds it now (without its password)."""

    key: str
    number: str
    pbx_user_id: str
    pbx_domain: str
    proxy: str
    state: RegistrationState
    refresh_in: int | None  # seconds until the SBC next registers (refresh, or retry after a failure)
    matches: bool  # the SBC holds what teamsvoice wants (the same password included)


@dataclass
class ApplyReport:
    registered_or_refreshed: list[str] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)
    targets_reloaded: bool = False
    refused: dict[str, str] = field(default_factory=dict)  # key -> why the SBC refused it (the others went on)


class Sbc(Protocol):
    """Raises SbcUnavailable when the SBC cannot be reached; every call is safe to repeat."""

    name: str

    def apply(self, desired: DesiredSbc) -> ApplyReport:
        """Makes the SBC hold exactly `desired` (only what is ours: other records are left alone)."""
        ...

    def held(self, desired: DesiredSbc) -> list[HeldRegistration]:
        """The registrations the SBC holds that are ours, compared with `desired`."""
        ...

    def up_to_date(self, desired: DesiredSbc) -> bool:
        """Whether what the SBC was last given (its own store, read without asking the SIP server) is exactly
        `desired`: False is a change no sync has applied yet. Raises SbcUnavailable when its store cannot be read."""
        ...
