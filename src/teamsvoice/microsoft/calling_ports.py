"""What the calling services need from a customer tenant beyond user voice settings: Direct Routing
objects (Teams PowerShell), the Teams app catalog and app installations."""

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class PstnGateway:
    fqdn: str
    sip_port: int
    enabled: bool


@dataclass(frozen=True)
class VoiceRoute:
    identity: str
    number_pattern: str
    gateways: list[str]
    usages: list[str]
    priority: int


@dataclass(frozen=True)
class VoiceRoutingPolicy:
    identity: str  # without the "Tag:" prefix
    usages: list[str]
    description: str | None = field(default=None, compare=False)  # shown to staff; not configuration


@dataclass
class RoutingInventory:
    gateways: list[PstnGateway] = field(default_factory=list)
    usages: list[str] = field(default_factory=list)
    routes: list[VoiceRoute] = field(default_factory=list)
    policies: list[VoiceRoutingPolicy] = field(default_factory=list)


class DirectRouting(Protocol):
    async def inventory(self) -> RoutingInventory: ...

    async def policy_names(self) -> list[str]: ...

    async def has_policy(self, name: str) -> bool: ...

    async def routing_policies(self) -> list[VoiceRoutingPolicy]: ...

    async def create_gateway(self, fqdn: str, sip_port: int) -> None: ...

    async def update_gateway(self, fqdn: str, sip_port: int) -> None: ...

    async def add_usage(self, usage: str) -> None: ...

    async def create_route(self, route: VoiceRoute) -> None: ...

    async def update_route(self, route: VoiceRoute) -> None: ...

    async def create_policy(self, policy: VoiceRoutingPolicy) -> None: ...

    async def update_policy(self, policy: VoiceRoutingPolicy) -> None: ...


@dataclass(frozen=True)
class CatalogApp:
    id: str
    external_id: str
    version: str | None  # the newest definition's version


@dataclass(frozen=True)
class Installation:
    id: str
    version: str | None


class TeamsApps(Protocol):
    async def find_app(self, external_id: str) -> CatalogApp | None: ...

    async def publish(self, package: bytes) -> CatalogApp: ...

    async def update(self, app_id: str, package: bytes) -> None: ...

    async def installation(self, user_id: str, app_id: str) -> Installation | None: ...

    async def install(self, user_id: str, app_id: str) -> None: ...

    async def upgrade(self, user_id: str, installation_id: str) -> None: ...


class Users(Protocol):
    async def find(self, upn: str) -> dict[str, Any] | None: ...

    async def create(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def set_password(self, user_id: str, password: str) -> None: ...
