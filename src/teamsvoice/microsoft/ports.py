"""What the domain needs from Microsoft, in domain terms. Services depend on these, not on HTTP."""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from teamsvoice.microsoft.calling_ports import (
        DirectRouting, RoutingInventory, TeamsApps, Users, VoiceRoute, VoiceRoutingPolicy,
    )
    from teamsvoice.microsoft.directory_ports import DirectoryAdministration
    from teamsvoice.microsoft.graph import GraphClient
    from teamsvoice.settings import Settings


GRAPH_RESOURCE = "https://graph.microsoft.com"
# The "Skype and Teams Tenant Admin API" resource the MicrosoftTeams PowerShell module talks to.
TEAMS_ADMIN_RESOURCE = "48ac35b8-9aa8-4d74-927d-1f4a14a0b239"
# OAuth errors of Microsoft's sign-in service that say it could not answer for now (RFC 6749 4.1.2.1 and 5.2; Entra:
# "The server is temporarily too busy to handle the request"), at the sign-in's redirect or the token endpoint:
# tried again, never a final refusal.
TRANSIENT_SIGN_IN_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


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

    async def assign_number(self, user_principal_name: str, phone_number: str, *,
                            meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
        """`meanwhile` runs once Teams accepted the number, while it completes; the number's outcome is
        awaited either way (its failure first, then `meanwhile`'s)."""
        ...

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
class ApplicationInstance:
    """A Teams resource account (the user behind a call queue or an auto attendant) as Teams reports it."""

    object_id: str
    user_principal_name: str
    display_name: str
    application_id: str
    phone_number: str | None = None  # E.164, without Teams' "tel:"


class ResourceAccounts(Protocol):
    """Teams resource accounts of a tenant (`TenantConnection.resource_accounts`). Adapter: the
    *-CsOnlineApplicationInstance cmdlets, microsoft/resource_accounts.py."""

    async def create(self, user_principal_name: str, application_id: str, display_name: str) -> str:
        """Creates the account; returns its object id."""
        ...

    async def get(self, object_id: str) -> ApplicationInstance:
        """NotFound when Teams has no such resource account."""
        ...

    async def update(self, object_id: str, *, display_name: str | None = None,
                     application_id: str | None = None) -> None:
        """Changes what is given (None: left as it is)."""
        ...

    async def all(self) -> list[ApplicationInstance]: ...


@dataclass(frozen=True)
class CivicAddress:
    """An emergency (civic) address as Teams holds it."""

    company_name: str | None
    house_number: str
    street_name: str
    city: str
    postal_code: str
    country: str  # ISO 3166 alpha-2
    state: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class EmergencyAddress:
    civic_address_id: str
    default_location_id: str | None  # the LocationId numbers are placed at


class EmergencyLocations(Protocol):
    """Emergency addresses of a tenant and the emergency location of a user's number
    (`TenantConnection.emergency_locations`). Adapter: the *-CsOnlineLisCivicAddress and
    Set-CsPhoneNumberAssignment cmdlets, microsoft/emergency_locations.py."""

    async def create_address(self, address: CivicAddress) -> EmergencyAddress: ...

    async def update_address(self, civic_address_id: str, address: CivicAddress) -> None: ...

    async def remove_address(self, civic_address_id: str) -> None: ...

    async def locate_number(self, user_principal_name: str, phone_number: str, location_id: str | None) -> None:
        """Places the user's Direct Routing number at the location (None: at none). Teams refuses with
        UpstreamError(status 400)."""
        ...


class TeamsAdmin(Protocol):
    """Teams' own view of the tenant beyond voice settings (`TenantConnection.teams_admin`). Adapter:
    microsoft/teams_admin.py (Graph's admin/teams and the Teams cmdlets)."""

    async def sip_address(self, id_or_upn: str) -> str | None:
        """The user's SIP address as Teams holds it (None: it has none). NotFound: no such Teams user."""
        ...

    async def check_graph_teams_admin(self) -> None:
        """Graph's Teams administration (admin/teams) answers for this tenant; raises what it answered."""
        ...

    async def check_powershell(self, as_user: str | None = None) -> None:
        """The Teams PowerShell integration runs a read cmdlet (reading `as_user`'s Teams account when
        given); raises what it answered."""
        ...


@dataclass(frozen=True)
class RedeemedCode:
    """A signed-in user's authorization code, redeemed."""

    access_token: str
    id_token: str
    id_token_claims: dict[str, Any]
    expires_in: int
    scopes: list[str]

    @property
    def tenant_id(self) -> str:
        """The tenant the user signed in to (the id token's `tid`)."""
        return str(self.id_token_claims.get("tid", ""))

    @property
    def user_id(self) -> str:
        """The user's object id in that tenant (`oid`)."""
        return str(self.id_token_claims.get("oid", ""))

    @property
    def user_principal_name(self) -> str:
        """Who signed in, by name (`preferred_username`, else `upn`; "" when the token names neither)."""
        return str(self.id_token_claims.get("preferred_username") or self.id_token_claims.get("upn") or "")


class SignIn(Protocol):
    """Users signing in to teamsvoice's app (delegated consent). Adapter: microsoft/identity.MicrosoftIdentity."""

    async def authorization_url(self, *, scopes: list[str], redirect_uri: str, state: str, nonce: str,
                                prompt: str | None = None) -> str: ...

    async def redeem_code(self, *, code: str, scopes: list[str], redirect_uri: str, nonce: str) -> RedeemedCode:
        """UpstreamError(not retryable) when Microsoft refuses the code."""
        ...


class Connector(Protocol):
    """Opens connections to customer tenants, and answers what is asked before one is linked (which
    tenant a domain belongs to, whether the tenant consented to teamsvoice's app, users signing in).
    Adapter: microsoft/connector.MicrosoftConnector."""

    settings: "Settings"
    identity: SignIn

    def connect(self, tenant_id: str, *, delegated_graph_token: str | None = None) -> "TenantConnection": ...

    async def tenant_of_domain(self, domain: str) -> str | None:
        """The tenant id Microsoft's sign-in service names for the domain; None when it knows none.
        UpstreamError(retryable) when it cannot be reached."""
        ...

    async def check_app_access(self, tenant_id: str, service: str) -> None:
        """An app-only token for `service` ("graph" or "teams_admin") is granted in the tenant; raises
        UpstreamError (not retryable: no admin consent) otherwise."""
        ...

    def admin_consent_url(self, tenant_id: str, redirect_uri: str, state: str, nonce: str) -> str:
        """Where the tenant's Global Administrator grants admin consent to teamsvoice's app (and signs in: the
        code Microsoft sends back to `redirect_uri` is redeemed with `nonce` to learn who did)."""
        ...


@dataclass(frozen=True)
class TenantConnection:
    """Everything that talks to one customer tenant. The domain uses the ports (`directory`, `voice`, and the
    properties below); `graph` and `cmdlets` are the transport the microsoft/ adapters are built on, for
    adapters only (tests/unit/test_ports_only.py keeps the domain off them)."""

    tenant_id: str
    directory: Directory
    voice: TeamsVoice
    graph: "GraphClient"
    cmdlets: Cmdlets

    @cached_property
    def directory_admin(self) -> "DirectoryAdministration":
        """Users, licences, groups, memberships and domains of this tenant (microsoft/directory.py)."""
        from teamsvoice.microsoft.directory import DirectoryAdmin

        return DirectoryAdmin(self.graph)

    @cached_property
    def direct_routing(self) -> "DirectRouting":
        """Gateways, PSTN usages, voice routes and voice routing policies of this tenant (Teams cmdlets:
        microsoft/direct_routing.py)."""
        from teamsvoice.microsoft.direct_routing import CmdletDirectRouting

        return CmdletDirectRouting(self.cmdlets, self.tenant_id)

    @cached_property
    def resource_accounts(self) -> ResourceAccounts:
        from teamsvoice.microsoft.resource_accounts import CmdletResourceAccounts

        return CmdletResourceAccounts(self.cmdlets)

    @cached_property
    def emergency_locations(self) -> EmergencyLocations:
        from teamsvoice.microsoft.emergency_locations import CmdletEmergencyLocations

        return CmdletEmergencyLocations(self.cmdlets)

    @cached_property
    def teams_admin(self) -> TeamsAdmin:
        from teamsvoice.microsoft.teams_admin import TeamsAdminAdapter

        return TeamsAdminAdapter(self.graph, self.cmdlets)

    @cached_property
    def teams_apps(self) -> "TeamsApps":
        """The tenant's Teams app catalog and users' app installations (microsoft/teams_apps.py)."""
        from teamsvoice.microsoft.teams_apps import GraphTeamsApps

        return GraphTeamsApps(self.graph)

    @cached_property
    def service_users(self) -> "Users":
        """Directory writes for teamsvoice's own service accounts (microsoft/teams_apps.py)."""
        from teamsvoice.microsoft.teams_apps import GraphUsers

        return GraphUsers(self.graph)

    @cached_property
    def tenant_voice(self) -> TenantVoiceAdmin:
        """The whole tenant's Teams voice state, for plan and apply (microsoft/voice_state.py)."""
        from teamsvoice.microsoft.voice_state import TenantVoiceAdapter

        return TenantVoiceAdapter(self)

    @cached_property
    def user_accounts(self) -> UserAccounts:
        """Offboarding users in Entra ID (microsoft/voice_state.py)."""
        from teamsvoice.microsoft.voice_state import UserAccountsAdapter

        return UserAccountsAdapter(self)
