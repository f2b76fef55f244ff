"""Teams PowerShell cmdlets: against the emulator they go to its cmdlet endpoint over HTTP.

The parameters travel as JSON data, never as script text. (The pwsh runner for the Microsoft cloud
is a separate adapter with the same interface.)
"""

from typing import Any

import httpx

from teamsvoice.core.errors import UpstreamError
from teamsvoice.microsoft.graph import RETRYABLE_STATUSES, TokenProvider


class CmdletEndpointRunner:
    def __init__(self, http: httpx.AsyncClient, endpoint: str, token: TokenProvider) -> None:
        self._http = http
        self._endpoint = endpoint
        self._token = token

    async def run(self, cmdlet: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            response = await self._http.post(
                self._endpoint, json={"cmdlet": cmdlet, "parameters": parameters},
                headers={"Authorization": f"Bearer {await self._token()}"},
            )
        except httpx.TransportError as exc:
            raise UpstreamError(f"Teams PowerShell endpoint unreachable: {exc}", retryable=True) from exc
        if response.status_code >= 400:
            try:
                error = response.json().get("error", {})
                message = error.get("message") or response.text
                code = error.get("errorId")
            except ValueError:
                message, code = response.text, None
            raise UpstreamError(f"{cmdlet} failed: {message}", retryable=response.status_code in RETRYABLE_STATUSES,
                                status=response.status_code, upstream_code=code)
        return list(response.json().get("output", []))
