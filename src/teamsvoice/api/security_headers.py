"""Response hardening for every route, and who may read /metrics.

- `Cache-Control: no-store` unless the route chose its own: API answers carry tokens, client secrets and
  customer data that no browser or proxy cache should keep.
- `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` on everything.
- HTML pages (consent result pages, API docs) cannot be framed (`X-Frame-Options: DENY`, CSP
  `frame-ancestors 'none'`) and run no script but the docs' own (CSP).
- /metrics answers only as `metrics_access` allows: "off" (404), "loopback" (a client on a loopback address;
  others get 404), or "token" (`Authorization: Bearer <metrics_token>`; else 401).
"""

import hmac
import ipaddress

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from teamsvoice.settings import Settings

PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
# /docs and /redoc run Swagger UI / ReDoc from the package's own files (api/docs.py): no CDN, no inline script.
# Both set inline styles; ReDoc searches in a blob: worker.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; worker-src blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
DOCS_PATHS = ("/docs", "/redoc")


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_refusal(settings: Settings, scope: Scope) -> PlainTextResponse | None:
    """None when the caller may read /metrics, else the answer to give it."""
    if settings.metrics_access == "loopback":
        client = scope.get("client")
        return None if _is_loopback(client[0] if client else None) else PlainTextResponse("Not Found", 404)
    if settings.metrics_access == "token":
        sent = Headers(scope=scope).get("authorization", "")
        expected = f"Bearer {settings.metrics_token}" if settings.metrics_token else None
        if expected and hmac.compare_digest(sent.encode(), expected.encode()):
            return None
        return PlainTextResponse("Unauthorized", 401, headers={"WWW-Authenticate": "Bearer"})
    return PlainTextResponse("Not Found", 404)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        refusal = metrics_refusal(self.settings, scope) if path.rstrip("/") == "/metrics" else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Cache-Control", "no-store")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("X-Frame-Options", "DENY")
                    headers.setdefault("Content-Security-Policy", DOCS_CSP if path.startswith(DOCS_PATHS) else PAGE_CSP)
            await send(message)

        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
