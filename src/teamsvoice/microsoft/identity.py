"""Every Entra ID token goes through MSAL. The authority host is a setting: the emulator or Microsoft."""

import threading
import time
from typing import Any
from urllib.parse import urlencode, urlparse

import anyio
import msal
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from teamsvoice.core.errors import UpstreamError
# The resources and the redeemed code are the port's (microsoft/ports.py); named here too for the adapters.
from teamsvoice.microsoft.ports import GRAPH_RESOURCE as GRAPH_RESOURCE
from teamsvoice.microsoft.ports import TEAMS_ADMIN_RESOURCE as TEAMS_ADMIN_RESOURCE
from teamsvoice.microsoft.ports import RedeemedCode

MICROSOFT_LOGIN_HOSTS = {"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"}


class MicrosoftIdentity:
    """Builds sign-in URLs, redeems authorization codes and gets app-only tokens, all through msal."""

    def __init__(self, *, login_url: str, client_id: str, client_secret: str, ca_bundle: str | None) -> None:
        self._login_url = login_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = requests.Session()
        # A kept-alive connection the sign-in service closes just as it is reused (its idle timeout meeting our
        # request) answers nothing: the request goes once more, on a new connection. Safe for every request MSAL
        # sends: discovery reads, token requests (a code the service did redeem is refused the second time, never
        # redeemed twice). No retry on a status: MSAL reads those.
        once_more = Retry(total=1, connect=1, read=1, status=0, other=0, redirect=False, allowed_methods=None,
                          raise_on_status=False)
        for scheme in ("https://", "http://"):
            self._http.mount(scheme, HTTPAdapter(max_retries=once_more))
        if ca_bundle:
            # requests lets REQUESTS_CA_BUNDLE override a session's `verify`; an explicit CA must win.
            self._http.trust_env = False
            self._http.verify = ca_bundle
        # Instance discovery asks login.microsoftonline.com about the host: only meaningful for Microsoft's hosts.
        self._instance_discovery = urlparse(self._login_url).hostname in MICROSOFT_LOGIN_HOSTS
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._lock = threading.Lock()  # guards the two dicts
        self._building: dict[str, threading.Lock] = {}  # per tenant: one build of its msal application at a time
        self._app_tokens: dict[tuple[str, str], tuple[str, float]] = {}

    @property
    def client_id(self) -> str:
        return self._client_id

    def close(self) -> None:
        """Closes the sign-in service's kept-alive connections (left open, the emulator's HTTPS server waited
        for them at every stop of `serve` and logged "timeout graceful shutdown exceeded")."""
        self._http.close()

    def _app(self, tenant: str) -> msal.ConfidentialClientApplication:
        """The tenant's msal application, built once. Building one reads the tenant's OpenID configuration from the
        sign-in service (a round trip), so each tenant's is built under a lock of its own: under one lock for all,
        a worker starting a change in twenty tenants at once read their configurations one after another, and a
        tenant whose read hung held up every other's tokens."""
        with self._lock:
            app = self._apps.get(tenant)
            if app is not None:
                return app
            building = self._building.setdefault(tenant, threading.Lock())
        with building:
            app = self._apps.get(tenant)
            if app is None:
                try:
                    app = msal.ConfidentialClientApplication(
                        self._client_id, client_credential=self._client_secret,
                        authority=f"{self._login_url}/{tenant}", http_client=self._http,
                        instance_discovery=self._instance_discovery,
                    )
                except (ValueError, requests.RequestException) as exc:
                    raise UpstreamError(f"Microsoft sign-in service unavailable: {exc}", retryable=True) from exc
                with self._lock:
                    self._apps[tenant] = app
            return app

    async def authorization_url(
        self, *, scopes: list[str], redirect_uri: str, state: str, nonce: str, prompt: str | None = None
    ) -> str:
        def build() -> str:
            url = self._app("common").get_authorization_request_url(
                scopes, redirect_uri=redirect_uri, state=state, nonce=nonce, response_type="code id_token", prompt=prompt,
            )
            # The vendor's URL shape (hybrid "id_token code" with form_post). This msal method takes no
            # response_mode, and Entra requires form_post (or fragment) once id_token is asked for.
            return f"{url}&{urlencode({'response_mode': 'form_post'})}"

        return await anyio.to_thread.run_sync(build)

    async def redeem_code(self, *, code: str, scopes: list[str], redirect_uri: str, nonce: str) -> RedeemedCode:
        def redeem() -> dict[str, Any]:
            return self._app("common").acquire_token_by_authorization_code(
                code, scopes=scopes, redirect_uri=redirect_uri, nonce=nonce
            )

        try:
            result = await anyio.to_thread.run_sync(redeem)
        except (ValueError, requests.RequestException) as exc:
            raise UpstreamError(f"Could not redeem the authorization code: {exc}", retryable=False) from exc
        if "access_token" not in result:
            raise UpstreamError(
                f"Microsoft refused the authorization code: {result.get('error')}: {result.get('error_description')}",
                retryable=False, upstream_code=result.get("error"),
            )
        return RedeemedCode(
            access_token=result["access_token"], id_token=result.get("id_token", ""),
            id_token_claims=result.get("id_token_claims", {}), expires_in=int(result.get("expires_in", 0)),
            scopes=str(result.get("scope", "")).split(),
        )

    async def app_token(self, tenant_id: str, resource: str) -> str:
        """An app-only token for our application in the customer's tenant (needs the tenant's admin consent).

        msal caches tokens, but asking it costs a thread hop and a cache search; under load (thousands of
        calls per tenant) a token is reused from here until five minutes before it expires."""
        key = (tenant_id.lower(), resource)
        cached = self._app_tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]

        def acquire() -> dict[str, Any]:
            return self._app(tenant_id).acquire_token_for_client(scopes=[f"{resource}/.default"])

        try:
            result = await anyio.to_thread.run_sync(acquire)
        except (ValueError, requests.RequestException) as exc:
            raise UpstreamError(f"Microsoft sign-in service unavailable: {exc}", retryable=True) from exc
        if "access_token" not in result:
            raise UpstreamError(
                f"No app-only access to tenant {tenant_id}: {result.get('error')}: {result.get('error_description')}",
                retryable=False, upstream_code=result.get("error"),
            )
        lifetime = int(result.get("expires_in") or 0) - 300
        if lifetime > 0:
            self._app_tokens[key] = (str(result["access_token"]), time.monotonic() + lifetime)
        return str(result["access_token"])
