"""What the domain needs from Microsoft, in domain terms. Services depend on these, not on HTTP."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from teamsvoice.microsoft.calling_ports import DirectRouting, RoutingInventory, VoiceRoute, VoiceRoutingPolicy
    from teamsvoice.microsoft.directory import DirectoryAdmin


@dataclass(frozen=True)
class VoiceState:
    """A Teams user's voice configuration as Microsoft reports it."""

    user_id: str
    user_principal_name: str
    enterprise_voice: bool
    phone_numbers: list[str] = field(default_factory=list)
    voice_routing_policy: str | None = None


class Directory(Protocol):
    async def organization(self) -> dict[str, Any]: ...

    async def user(self, id_or_upn: str) -> dict[str, Any]: ...

    async def is_global_admin(self, user_id: str) -> bool: ...


class TeamsVoice(Protocol):
    async def voice_state(self, user_id: str) -> VoiceState: ...

    async def assign_number(self, user_principal_name: str, phone_number: str) -> None: ...

    async def remove_numbers(self, user_principal_name: str) -> None: ...

    async def set_enterprise_voice(self, user_principal_name: str, enabled: bool) -> None: ...

    async def grant_voice_routing_policy(self, user_principal_name: str, policy: str | None) -> None: ...

    async def grant_voice_routing_policy_to_many(self, upns_or_ids: Iterable[str], policy: str | None) -> None:
        """The same policy for many users in as few Microsoft calls as it allows; None or "Global" removes
        the per-user grant."""
        ...


class Cmdlets(Protocol):
    """Runs a MicrosoftTeams PowerShell cmdlet with parameters passed as data."""

    async def run(self, cmdlet: str, parameters: dict[str, Any], *, idempotent: bool | None = None) -> list[dict[str, Any]]:
        """`idempotent` says whether the cmdlet may be retried after a failure that may have run it
        (None: decided by its verb, see microsoft/cmdlets.py)."""
        ...


class TenantVoiceAdmin(Protocol):
    """A whole tenant's Teams voice state, read in bulk and written object by object or, for a policy, many
    users at once (plan / apply: domain/voice_state). Adapter: microsoft/voice_state.py."""

    async def routing(self) -> "RoutingInventory": ...

    async def voice_users(self) -> list[VoiceState]:
        """Every user of the tenant with its voice configuration (a user deleted in Entra ID is absent)."""
        ...

    async def disabled_user_ids(self) -> set[str]:
        """Object ids of the tenant's users whose Entra ID account is disabled (accountEnabled false)."""
        ...

    async def create_gateway(self, fqdn: str, sip_port: int) -> None: ...

    async def update_gateway(self, fqdn: str, sip_port: int) -> None: ...

    async def add_usage(self, usage: str) -> None: ...

    async def create_route(self, route: "VoiceRoute") -> None: ...

    async def update_route(self, route: "VoiceRoute") -> None: ...

    async def create_policy(self, policy: "VoiceRoutingPolicy") -> None: ...

    async def update_policy(self, policy: "VoiceRoutingPolicy") -> None: ...

    async def assign_number(self, user_principal_name: str, phone_number: str) -> None: ...

    async def remove_number(self, user_principal_name: str, phone_number: str) -> None: ...

    async def set_enterprise_voice(self, user_principal_name: str, enabled: bool) -> None: ...

    async def grant_voice_routing_policy(self, user_principal_name: str, policy: str | None) -> None: ...

    async def grant_voice_routing_policy_to_many(self, upns_or_ids: Iterable[str], policy: str | None) -> None:
        """As TeamsVoice.grant_voice_routing_policy_to_many."""
        ...


class UserAccounts(Protocol):
    """Offboarding a user in Entra ID (domain/voice_state). Adapter: microsoft/voice_state.py."""

    async def disable(self, id_or_upn: str) -> None: ...

    async def delete(self, id_or_upn: str) -> None:
        """Deleting a user already gone is done."""
        ...


@dataclass(frozen=True)
class TenantConnection:
    """Everything that talks to one customer tenant. Capability adapters (direct routing, apps, resource
    accounts ...) are built from `graph` and `cmdlets`; services only see the ports."""

    tenant_id: str
    directory: Directory
    voice: TeamsVoice
    graph: Any  # teamsvoice.microsoft.graph.GraphClient
    cmdlets: Cmdlets

    @cached_property
    def directory_admin(self) -> "DirectoryAdmin":
        """Users, licences, groups, memberships and domains of this tenant (microsoft/directory.py)."""
        from teamsvoice.microsoft.directory import DirectoryAdmin

        return DirectoryAdmin(self.graph)

    @cached_property
    def direct_routing(self) -> "DirectRouting":
        """Gateways, PSTN usages, voice routes and voice routing policies of this tenant (Teams cmdlets:
        microsoft/direct_routing.py)."""
        from teamsvoice.microsoft.direct_routing import CmdletDirectRouting

        return CmdletDirectRouting(self.cmdlets)
