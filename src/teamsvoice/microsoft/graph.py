"""A small Graph client on httpx: bearer auth, paging, retries that honour Retry-After, error mapping."""

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from teamsvoice.core.errors import NotFound, UpstreamError

TokenProvider = Callable[[], Awaitable[str]]
RETRYABLE_STATUSES = {429, 500, 502, 503, 504}


def graph_error(response: httpx.Response) -> UpstreamError:
    try:
        error = response.json().get("error", {})
        code, message = error.get("code", ""), error.get("message", response.text)
    except ValueError:
        code, message = "", response.text
    return UpstreamError(
        f"Microsoft Graph {response.request.method} {response.request.url.path} failed ({response.status_code} {code}): {message}",
        retryable=response.status_code in RETRYABLE_STATUSES, status=response.status_code, upstream_code=code,
    )


def retry_delay(response: httpx.Response | None, attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Retry-After when Microsoft sends it, else capped exponential backoff with full jitter."""
    if response is not None and (after := response.headers.get("Retry-After")):
        try:
            return min(float(after), cap)
        except ValueError:
            pass
    return random.uniform(0, min(cap, base * 2**attempt))


class GraphClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, token: TokenProvider, *, max_attempts: int = 5) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._token = token
        self._max_attempts = max_attempts

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("http") else f"{self._base}{path}"
        response: httpx.Response | None = None
        for attempt in range(self._max_attempts):
            headers = {"Authorization": f"Bearer {await self._token()}", **kwargs.pop("headers", {})}
            try:
                response = await self._http.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                if attempt + 1 == self._max_attempts:
                    raise UpstreamError(f"Microsoft Graph unreachable: {exc}", retryable=True) from exc
                await asyncio.sleep(retry_delay(None, attempt))
                continue
            if response.status_code not in RETRYABLE_STATUSES:
                break
            if attempt + 1 < self._max_attempts:
                await asyncio.sleep(retry_delay(response, attempt))
        assert response is not None
        if response.status_code == 404:
            raise NotFound(f"Not found in Microsoft 365: {path}")
        if response.status_code >= 400:
            raise graph_error(response)
        return response

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        return (await self.request("GET", path, params=params or None)).json()

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.request("POST", path, json=body)

    async def pages(self, path: str, **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Every item of a collection, following @odata.nextLink unchanged."""
        page = await self.get(path, **params)
        while True:
            for item in page.get("value", []):
                yield item
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            page = (await self.request("GET", next_link)).json()
