"""Builds tenant connections (Graph + Teams voice) from settings; the one place that knows the transport.

TEAMSVOICE_MICROSOFT_MODE picks where Teams cmdlets run: `emulator` posts them to the emulator's cmdlet
endpoint (TEAMSVOICE_MICROSOFT_POWERSHELL_URL), `cloud` runs them in pwsh with the MicrosoftTeams module
(microsoft/pwsh.py; the connector refuses to start when pwsh or the certificate is missing). Nothing else
differs. Every Graph call and cmdlet to one tenant passes the connector's budget scheduler (buckets shared
by every process in the PostgreSQL database, microsoft/budget.py; TEAMSVOICE_MICROSOFT_*_PER_*, _BUDGET_SHARE
and _BUDGET_MARGIN_SECONDS) and the retry policy (TEAMSVOICE_MICROSOFT_RETRY_*).
"""

import ssl
import zlib
from urllib.parse import urlencode

import httpx

from teamsvoice.core.errors import UpstreamError
from teamsvoice.microsoft.cmdlets import CmdletEndpointRunner
from teamsvoice.microsoft.budget import BudgetScheduler, Limits, buckets_for
from teamsvoice.microsoft.graph import GraphClient, RetryPolicy, TokenProvider
from teamsvoice.microsoft.identity import GRAPH_RESOURCE, TEAMS_ADMIN_RESOURCE, MicrosoftIdentity
from teamsvoice.microsoft.ports import Cmdlets, TenantConnection
from teamsvoice.microsoft.pwsh import PwshConfig, PwshRunner
from teamsvoice.microsoft.teams_voice import GraphDirectory, TeamsVoiceAdapter
from teamsvoice.microsoft.transport import cookieless_client, pooled_transport
from teamsvoice.settings import Settings

POOLS = 16  # connection pools per process, tenants spread over them (MicrosoftConnector.pool)


class MicrosoftConnector:
    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        """`transport`: where requests go instead of the network (tests)."""
        self.settings = settings
        self._transport = transport
        self.identity = MicrosoftIdentity(
            login_url=settings.microsoft_login_url, client_id=settings.microsoft_client_id,
            client_secret=settings.microsoft_client_secret, ca_bundle=settings.microsoft_ca_bundle,
        )
        self.retry = RetryPolicy(
            max_attempts=settings.microsoft_retry_max_attempts, max_total_wait=settings.microsoft_retry_max_wait_seconds,
            base_delay=settings.microsoft_retry_base_delay_seconds,
        )
        self.pwsh: PwshConfig | None = None
        if settings.microsoft_mode == "cloud":
            self.pwsh = PwshConfig.of_settings(settings)  # (what a start checks first: runner.check_microsoft)
        verify: ssl.SSLContext | bool = True
        if settings.microsoft_ca_bundle:
            verify = ssl.create_default_context(cafile=settings.microsoft_ca_bundle)
        self._verify = verify
        self.http = self._client()
        self._pools: list[httpx.AsyncClient | None] = [None] * POOLS
        self.budget = BudgetScheduler(budget_limits(settings), buckets_for(settings.effective_database_url),
                                      max_in_flight=settings.microsoft_tenant_concurrency)

    def _client(self, event_hooks: dict[str, list] | None = None) -> httpx.AsyncClient:
        # As many kept alive as may be open: httpcore closes an idle connection whenever the pool holds more
        # connections than the keep-alive count (all of them counted, busy ones too), so with 50 a worker that had
        # more than 50 requests in flight closed a connection after each request and opened (TLS) another.
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        transport = self._transport or pooled_transport(verify=self._verify, limits=limits)  # (microsoft/transport.py)
        return cookieless_client(timeout=httpx.Timeout(30.0), event_hooks=event_hooks, transport=transport)

    def pool(self, tenant_id: str | None) -> httpx.AsyncClient:
        """The connection pool a tenant's requests go through: one of POOLS, by the tenant. httpcore looks at
        every connection of a pool each time a request starts or ends (an idle one's socket too), so with all
        tenants in one pool a worker with a hundred connections open spent a sixth of its CPU there; split,
        each pool holds about its tenants' requests in flight. `http`'s event hooks see every pool's requests."""
        if not tenant_id:
            return self.http
        index = zlib.crc32(tenant_id.lower().encode()) % POOLS
        client = self._pools[index]
        if client is None:
            async def on_request(request: httpx.Request) -> None:
                for hook in list(self.http.event_hooks["request"]):
                    await hook(request)

            async def on_response(response: httpx.Response) -> None:
                for hook in list(self.http.event_hooks["response"]):
                    await hook(response)

            client = self._pools[index] = self._client({"request": [on_request], "response": [on_response]})
        return client

    async def aclose(self) -> None:
        for client in [self.http, *self._pools]:
            if client is not None:
                await client.aclose()
        self.identity.close()
        self.budget.close()

    def _app_token(self, tenant_id: str, resource: str) -> TokenProvider:
        async def provide() -> str:
            return await self.identity.app_token(tenant_id, resource)

        return provide

    def graph(self, token: TokenProvider, tenant_id: str | None = None, *, credential: str | None = None) -> GraphClient:
        """`credential`: whose token it is when other clients send the same one ("app"), so that they may share calls
        (GraphClient.shared_key); None for a token of this client alone (a signed-in admin's)."""
        return GraphClient(self.pool(tenant_id), self.settings.microsoft_graph_url, token, retry=self.retry,
                           budget=self.budget, tenant_id=tenant_id, credential=credential)

    def cmdlets(self, tenant_id: str) -> Cmdlets:
        """Teams cmdlets for the tenant, app-only: pwsh in cloud mode, the emulator's endpoint otherwise."""
        if self.pwsh is not None:
            return PwshRunner(self.pwsh, tenant_id, retry=self.retry, budget=self.budget)
        if not self.settings.microsoft_powershell_url:
            raise UpstreamError(
                "Teams PowerShell is not configured (TEAMSVOICE_MICROSOFT_POWERSHELL_URL)", retryable=False
            )
        return CmdletEndpointRunner(
            self.pool(tenant_id), self.settings.microsoft_powershell_url, self._app_token(tenant_id, TEAMS_ADMIN_RESOURCE),
            retry=self.retry, budget=self.budget, timeout=self.settings.microsoft_cmdlet_timeout_seconds,
            tenant_id=tenant_id,
        )

    def connect(self, tenant_id: str, *, delegated_graph_token: str | None = None) -> TenantConnection:
        """Graph with the signed-in admin's token when given, else app-only; Teams voice (Graph's admin/teams
        and the cmdlets) always app-only: the app holds the Teams permissions, an admin's token may not."""
        app_graph = self.graph(self._app_token(tenant_id, GRAPH_RESOURCE), tenant_id, credential="app")
        graph = app_graph
        if delegated_graph_token is not None:
            token = delegated_graph_token

            async def delegated() -> str:
                return token

            graph = self.graph(delegated, tenant_id)
        cmdlets = self.cmdlets(tenant_id)
        return TenantConnection(tenant_id, GraphDirectory(graph), TeamsVoiceAdapter(app_graph, cmdlets), graph, cmdlets)

    # --- before a tenant is linked (ports.Connector) --------------------------------------------------------

    async def tenant_of_domain(self, domain: str) -> str | None:
        """The tenant named by the issuer of the domain's OpenID discovery document."""
        url = f"{self.settings.microsoft_login_url.rstrip('/')}/{domain}/v2.0/.well-known/openid-configuration"
        try:
            response = await self.http.get(url)
        except httpx.TransportError as exc:
            raise UpstreamError(f"Microsoft sign-in service unreachable: {exc}", retryable=True) from exc
        if response.status_code != 200:
            return None
        parts = str(response.json().get("issuer", "")).rstrip("/").split("/")
        return parts[-2] or None if len(parts) >= 2 else None

    async def check_app_access(self, tenant_id: str, service: str) -> None:
        resources = {"graph": GRAPH_RESOURCE, "teams_admin": TEAMS_ADMIN_RESOURCE}
        if service not in resources:
            raise ValueError(f"unknown Microsoft service {service!r}")
        await self.identity.app_token(tenant_id, resources[service])

    def admin_consent_url(self, tenant_id: str, redirect_uri: str, state: str, nonce: str) -> str:
        query = urlencode({
            "client_id": self.settings.microsoft_client_id, "response_type": "code", "response_mode": "query",
            "redirect_uri": redirect_uri, "prompt": "consent", "state": state, "nonce": nonce,
            "scope": f"openid {GRAPH_RESOURCE}/.default",
        })
        return f"{self.settings.microsoft_login_url.rstrip('/')}/{tenant_id}/oauth2/v2.0/authorize?{query}"


def budget_limits(settings: Settings) -> Limits:
    return Limits(
        teams_per_tenant=settings.microsoft_teams_requests_per_second,
        teams_per_app=settings.microsoft_teams_app_requests_per_second,
        directory_units=settings.microsoft_directory_units_per_10_seconds,
        directory_writes=settings.microsoft_directory_writes_per_150_seconds, share=settings.microsoft_budget_share,
        margin=settings.microsoft_budget_margin_seconds,
    )
