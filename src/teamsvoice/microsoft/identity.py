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
from teamsvoice.microsoft.graph import RETRYABLE_STATUSES
# The resources and the redeemed code are the port's (microsoft/ports.py); named here too for the adapters.
from teamsvoice.microsoft.ports import GRAPH_RESOURCE as GRAPH_RESOURCE
from teamsvoice.microsoft.ports import TEAMS_ADMIN_RESOURCE as TEAMS_ADMIN_RESOURCE
from teamsvoice.microsoft.ports import TRANSIENT_SIGN_IN_ERRORS, RedeemedCode

MICROSOFT_LOGIN_HOSTS = {"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"}
# Longest one request to the sign-in service may wait for its answer (as a Graph request: connector.py).
TIMEOUT_SECONDS = 30.0


class SignInUnavailable(requests.HTTPError):
    """The sign-in service answered a status that says it cannot answer for now (429, 5xx)."""


class _SignInTransport(HTTPAdapter):
    """requests' transport for every request MSAL sends. Each has a timeout (requests has none: a sign-in service
    that never answered held a consent callback for ever), and an answer of Microsoft not answering for now (429,
    5xx) is raised as such before MSAL reads it. MSAL raised its own error type for a 5xx (no caller caught it: a
    500, the consent's state left burnt), read a 429's body as Microsoft's refusal (final), and kept either answer
    for its Retry-After under a key that is the same for every code of the app, answering it again without asking:
    one throttled consent failed every administrator's consent until then."""

    def __init__(self, timeout: float, retries: Retry) -> None:
        super().__init__(max_retries=retries)
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,  # type: ignore[override]
             verify: bool | str = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        response = super().send(request, stream=stream, timeout=self._timeout if timeout is None else timeout,
                                verify=verify, cert=cert, proxies=proxies)
        if response.status_code in RETRYABLE_STATUSES:
            response.content  # (read: the connection goes back to the pool)
            wait = response.headers.get("Retry-After")
            raise SignInUnavailable(f"the sign-in service answered {response.status_code} {response.reason}"
                                    + (f" (Retry-After: {wait})" if wait else ""), response=response)
        return response


def _not_answered(exc: Exception) -> bool:
    """Whether a failure to get the sign-in service's answer is Microsoft not answering for now (unreachable, no
    answer in time, 429, 5xx: tried again), as a Graph request's (graph.py); anything else is no answer that will
    change (a malformed answer, an ID token that fails MSAL's checks)."""
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                            SignInUnavailable))


class MicrosoftIdentity:
    """Builds sign-in URLs, redeems authorization codes and gets app-only tokens, all through msal."""

    def __init__(self, *, login_url: str, client_id: str, client_secret: str, ca_bundle: str | None,
                 timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self._login_url = login_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = requests.Session()
        # A kept-alive connection the sign-in service closes just as it is reused (its idle timeout meeting our
        # request) answers nothing: the request goes once more, on a new connection. Safe for every request MSAL
        # sends: discovery reads, token requests (a code the service did redeem is refused the second time, never
        # redeemed twice). No retry on a status: the callers decide (`_SignInTransport` raises 429 and 5xx).
        once_more = Retry(total=1, connect=1, read=1, status=0, other=0, redirect=False, allowed_methods=None,
                          raise_on_status=False)
        for scheme in ("https://", "http://"):
            self._http.mount(scheme, _SignInTransport(timeout_seconds, once_more))
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
            if _not_answered(exc):  # a code Microsoft did not answer for may be redeemed by a later try
                raise UpstreamError(f"Microsoft's sign-in service did not answer the authorization code's redemption: "
                                    f"{exc}", retryable=True) from exc
            raise UpstreamError(f"Could not redeem the authorization code: {exc}", retryable=False) from exc
        if "access_token" not in result:
            error = result.get("error")
            raise UpstreamError(
                f"Microsoft refused the authorization code: {error}: {result.get('error_description')}",
                retryable=error in TRANSIENT_SIGN_IN_ERRORS, upstream_code=error,
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
            error = result.get("error")
            raise UpstreamError(
                f"No app-only access to tenant {tenant_id}: {error}: {result.get('error_description')}",
                retryable=error in TRANSIENT_SIGN_IN_ERRORS, upstream_code=error,
            )
        lifetime = int(result.get("expires_in") or 0) - 300
        if lifetime > 0:
            self._app_tokens[key] = (str(result["access_token"]), time.monotonic() + lifetime)
        return str(result["access_token"])
