"""Teams PowerShell cmdlets: against the emulator they go to its cmdlet endpoint over HTTP.

The parameters travel as JSON data, never as script text. (The pwsh runner for the Microsoft cloud,
`microsoft/pwsh.py`, has the same interface.) Throttling, 5xx and network failures are retried the way
the Graph client retries them, but only for cmdlets that are safe to repeat: by default those whose verb
is in IDEMPOTENT_VERBS (Get, Set, Grant, Remove, ...); a caller can say otherwise per call. A 429 is
retried for every cmdlet: Microsoft refused it before running it.
"""

from typing import Any

import httpx

from teamsvoice.core.errors import UpstreamError
from teamsvoice.microsoft.budget import BudgetScheduler
from teamsvoice.microsoft.graph import (
    RETRYABLE_STATUSES, RetryPolicy, TokenProvider, gave_up, send_to_microsoft, wait_before_retry,
)

# Repeating these leaves the tenant as one run would (assigning the same number twice is a no-op).
IDEMPOTENT_VERBS = frozenset({"get", "set", "grant", "remove", "test", "sync"})


def is_idempotent(cmdlet: str) -> bool:
    return cmdlet.split("-", 1)[0].lower() in IDEMPOTENT_VERBS


# The error ids (FullyQualifiedErrorId's first part) Teams' cmdlets give an object they do not have.
_NOT_FOUND_IDS = frozenset({"notfound", "objectnotfound", "managementobjectnotfound"})


def says_not_found(error: UpstreamError) -> bool:
    """Whether a cmdlet's failure says Teams has no such object (its error id; a parameter or a command not found
    is not that), whichever runner ran it: the adapters answer it as NotFound."""
    code = error.upstream_code
    return bool(code) and str(code).split(",", 1)[0].strip().lower() in _NOT_FOUND_IDS


def cmdlet_error(cmdlet: str, status: int | None, body: Any, text: str) -> UpstreamError:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message, code = str(error.get("message") or text), error.get("errorId")
    else:
        message, code = text, None
    return UpstreamError(f"{cmdlet} failed: {message}", retryable=status in RETRYABLE_STATUSES,
                         status=status, upstream_code=code)


class CmdletEndpointRunner:
    def __init__(
        self, http: httpx.AsyncClient, endpoint: str, token: TokenProvider, *, retry: RetryPolicy | None = None,
        budget: BudgetScheduler | None = None, timeout: float | None = None, tenant_id: str | None = None,
    ) -> None:
        self._http = http
        self.tenant_id = tenant_id
        self._endpoint = endpoint
        self._token = token
        self.retry = retry or RetryPolicy()
        self.budget = budget
        self._timeout = timeout

    async def _post(self, payload: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self._token()}"}
        timeout = httpx.Timeout(self._timeout) if self._timeout else httpx.USE_CLIENT_DEFAULT
        return await send_to_microsoft(self._http, "cmdlets", self.tenant_id, self.budget, "POST", self._endpoint,
                                       json=payload, headers=headers, timeout=timeout)

    async def run(
        self, cmdlet: str, parameters: dict[str, Any], *, idempotent: bool | None = None
    ) -> list[dict[str, Any]]:
        repeatable = is_idempotent(cmdlet) if idempotent is None else idempotent
        payload = {"cmdlet": cmdlet, "parameters": parameters}
        waited, attempt = 0.0, 0
        while True:
            attempt += 1
            response: httpx.Response | None = None
            try:
                response = await self._post(payload)
            except httpx.TransportError as exc:
                failure = UpstreamError(f"{cmdlet}: Teams PowerShell endpoint unreachable: {exc!r}", retryable=True)
            else:
                if response.status_code < 400:
                    return list(response.json().get("output", []))
                try:
                    body = response.json()
                except ValueError:
                    body = None
                failure = cmdlet_error(cmdlet, response.status_code, body, response.text)
                if response.status_code not in RETRYABLE_STATUSES:
                    raise failure
            # A 429 was refused before it ran, so even a non-idempotent cmdlet may go again.
            if not repeatable and (response is None or response.status_code != 429):
                raise failure
            delay = self.retry.delay(response, attempt - 1)
            if attempt >= self.retry.max_attempts or waited + delay > self.retry.max_total_wait:
                raise gave_up(attempt, failure)
            await wait_before_retry("cmdlets", response.status_code if response is not None else None, delay)
            waited += delay
