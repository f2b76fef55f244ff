"""Builds tenant connections (Graph + Teams voice) from settings; the one place that knows the transport."""

import ssl

import httpx

from teamsvoice.core.errors import UpstreamError
from teamsvoice.microsoft.cmdlets import CmdletEndpointRunner
from teamsvoice.microsoft.graph import GraphClient, TokenProvider
from teamsvoice.microsoft.identity import GRAPH_RESOURCE, TEAMS_ADMIN_RESOURCE, MicrosoftIdentity
from teamsvoice.microsoft.ports import TenantConnection
from teamsvoice.microsoft.teams_voice import GraphDirectory, TeamsVoiceAdapter
from teamsvoice.settings import Settings


class MicrosoftConnector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.identity = MicrosoftIdentity(
            login_url=settings.microsoft_login_url, client_id=settings.microsoft_client_id,
            client_secret=settings.microsoft_client_secret, ca_bundle=settings.microsoft_ca_bundle,
        )
        verify: ssl.SSLContext | bool = True
        if settings.microsoft_ca_bundle:
            verify = ssl.create_default_context(cafile=settings.microsoft_ca_bundle)
        self.http = httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(30.0))

    async def aclose(self) -> None:
        await self.http.aclose()

    def _app_token(self, tenant_id: str, resource: str) -> TokenProvider:
        async def provide() -> str:
            return await self.identity.app_token(tenant_id, resource)

        return provide

    def graph(self, token: TokenProvider) -> GraphClient:
        return GraphClient(self.http, self.settings.microsoft_graph_url, token)

    def connect(self, tenant_id: str, *, delegated_graph_token: str | None = None) -> TenantConnection:
        """Graph with the signed-in admin's token when given, else app-only; Teams cmdlets always app-only."""
        if delegated_graph_token is not None:
            token = delegated_graph_token

            async def delegated() -> str:
                return token

            graph = self.graph(delegated)
        else:
            graph = self.graph(self._app_token(tenant_id, GRAPH_RESOURCE))
        if not self.settings.microsoft_powershell_url:
            raise UpstreamError(
                "Teams PowerShell is not configured (TEAMSVOICE_MICROSOFT_POWERSHELL_URL)", retryable=False
            )
        cmdlets = CmdletEndpointRunner(
            self.http, self.settings.microsoft_powershell_url, self._app_token(tenant_id, TEAMS_ADMIN_RESOURCE)
        )
        return TenantConnection(tenant_id, GraphDirectory(graph), TeamsVoiceAdapter(graph, cmdlets), graph, cmdlets)
