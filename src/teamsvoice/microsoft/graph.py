"""A Graph client on httpx: bearer auth, paging, JSON batching, retries that honour Retry-After, a
per-tenant concurrency limit, and Graph errors mapped to `UpstreamError(retryable=...)`.

Retries: 429, 500, 502, 503, 504 and transport errors are retried, waiting Retry-After when Microsoft
sends it (plus a little jitter, so that many clients throttled together do not return together), else
capped exponential backoff with full jitter. `RetryPolicy` caps both the number of attempts and the total
time spent waiting; past either cap the last failure is raised as `UpstreamError("gave up after N
attempts: ...")` with the status and Graph error code of the last response.

Budget: every request to one tenant waits for the Microsoft budget scheduler (microsoft/budget.py: token
buckets shared by every process, a concurrency that follows rate x latency with AIMD on 429, fair shares
between tenants and jobs) and holds its slot while it is on the wire (not while it sleeps before a retry).

Metrics: every request to Microsoft over HTTP (Graph and the cmdlet endpoint) goes through
`send_to_microsoft`, which counts it by service, tenant and status; each wait before a retry is counted
by reason (`core.metrics`).
"""

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from teamsvoice.core.errors import NotFound, UpstreamError, ValidationFailed
from teamsvoice.core.metrics import record_microsoft_request, record_microsoft_wait, wait_reason
from teamsvoice.microsoft.budget import BudgetScheduler, classify
from teamsvoice.microsoft.coalescing import COALESCER

TokenProvider = Callable[[], Awaitable[str]]
RETRYABLE_STATUSES = {429, 500, 502, 503, 504}
BATCH_LIMIT = 20  # Graph refuses a $batch of more than 20 requests
_QUERY_SAFE = "$,'()/:@"  # left as they are in a query Graph reads ($select=id,displayName; $filter=...)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: at most `max_attempts` tries and `max_total_wait` seconds of sleeping in all."""

    max_attempts: int = 5
    max_total_wait: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 30.0  # cap of one backoff step when Microsoft sends no Retry-After

    def delay(self, response: httpx.Response | None, attempt: int) -> float:
        return retry_delay(response, attempt, base=self.base_delay, cap=self.max_delay)


def retry_after_seconds(headers: httpx.Headers | dict[str, str] | None) -> float | None:
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def retry_delay(response: httpx.Response | None, attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Retry-After (with up to 10% jitter added) when Microsoft sends it, else capped exponential backoff
    with full jitter."""
    after = retry_after_seconds(response.headers) if response is not None else None
    if after is not None:
        return after + random.uniform(0, min(1.0, after * 0.1))
    return random.uniform(0, min(cap, base * 2**attempt))


async def send_to_microsoft(
    http: httpx.AsyncClient, service: str, tenant_id: str | None, budget: BudgetScheduler | None,
    method: str, url: str, **kwargs: Any,
) -> httpx.Response:
    """One request on the wire once the tenant's budget grants it (a slot of its lane and its tokens, see
    microsoft/budget.py), holding the slot meanwhile; counted by its outcome. Graph requests are charged
    by what they are (Teams service or directory, `$batch` per request inside); anything else sent here
    (the cmdlet endpoint) is a Teams service request."""
    if budget is None or tenant_id is None:
        return await _on_the_wire(http, service, tenant_id, method, url, **kwargs)
    cost = (budget.charge(tenant_id, method, url, kwargs.get("json")) if service == "graph"
            else budget.teams_charge(tenant_id))
    async with budget.request(tenant_id, cost) as ticket:
        response = await _on_the_wire(http, service, tenant_id, method, url, **kwargs)
        ticket.answered(response.status_code, throttled=throttled_inside(url, response))
    return response


_THROTTLED = re.compile(rb'"status"\s*:\s*429\b')


def throttled_inside(url: str, response: httpx.Response) -> int:
    """The requests inside a `$batch` that Microsoft answered 429 while the batch itself was answered 200 (its body is
    parsed only when a 429 is in it)."""
    if response.status_code != 200 or not urlsplit(url).path.endswith("/$batch"):
        return 0
    if not _THROTTLED.search(response.content):
        return 0
    try:
        answers = response.json().get("responses")
    except (ValueError, AttributeError):  # not a batch's answer after all
        return 0
    if not isinstance(answers, list):
        return 0
    return sum(1 for answer in answers if isinstance(answer, dict) and answer.get("status") == 429)


async def _on_the_wire(http: httpx.AsyncClient, service: str, tenant_id: str | None, method: str, url: str,
                       **kwargs: Any) -> httpx.Response:
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.TransportError:
        record_microsoft_request(service, tenant_id, "unreachable")
        raise
    record_microsoft_request(service, tenant_id, response.status_code)
    return response


async def wait_before_retry(service: str, status: int | None, delay: float) -> None:
    record_microsoft_wait(service, wait_reason(status), delay)
    await asyncio.sleep(delay)


def _error_fields(status: int, body: Any, text: str) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or text)
    return "", text


def graph_error(response: httpx.Response) -> UpstreamError:
    try:
        body = response.json()
    except ValueError:
        body = None
    code, message = _error_fields(response.status_code, body, response.text)
    return UpstreamError(
        f"Microsoft Graph {response.request.method} {response.request.url.path} failed ({response.status_code} {code}): {message}",
        retryable=response.status_code in RETRYABLE_STATUSES, status=response.status_code, upstream_code=code,
    )


def gave_up(attempts: int, error: UpstreamError) -> UpstreamError:
    plural = "" if attempts == 1 else "s"
    return UpstreamError(f"gave up after {attempts} attempt{plural}: {error.message}", retryable=error.retryable,
                         status=error.status, upstream_code=error.upstream_code)


@dataclass(frozen=True)
class BatchRequest:
    """One request of a JSON batch. `url` is relative to the version root, e.g. `/users/{id}`."""

    id: str
    method: str
    url: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()

    def wire(self, *, keep_dependencies: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": self.url}
        headers = dict(self.headers)
        if self.body is not None:
            item["body"] = self.body
            headers.setdefault("Content-Type", "application/json")
        if headers:
            item["headers"] = headers
        depends = [d for d in self.depends_on if d in keep_dependencies]
        if depends:
            item["dependsOn"] = depends
        return item


def wire_seconds(response: httpx.Response) -> float:
    """How long the request was on the wire (not queued before it); 0 when the transport did not time it."""
    try:
        return response.elapsed.total_seconds()
    except RuntimeError:
        return 0.0


@dataclass(frozen=True)
class BatchResponse:
    id: str
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    wire: float = 0.0  # seconds the call that answered it was on the wire (`wire_seconds`: a $batch's, or its own)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self, request: BatchRequest) -> UpstreamError | NotFound | None:
        """The domain error this sub-response stands for, or None when it succeeded."""
        if self.ok:
            return None
        if self.status == 404:
            return NotFound(f"Not found in Microsoft 365: {request.url}")
        code, message = _error_fields(self.status, self.body, str(self.body))
        return UpstreamError(
            f"Microsoft Graph {request.method.upper()} {request.url} failed ({self.status} {code}): {message}",
            retryable=self.status in RETRYABLE_STATUSES, status=self.status, upstream_code=code,
        )


class GraphClient:
    def __init__(
        self, http: httpx.AsyncClient, base_url: str, token: TokenProvider, *, max_attempts: int = 5,
        retry: RetryPolicy | None = None, budget: BudgetScheduler | None = None, tenant_id: str | None = None,
        credential: str | None = None,
    ) -> None:
        self._http = http
        self.tenant_id = tenant_id
        # Whose token this client sends, when other clients of the tenant may send the same one ("app": the app's,
        # app-only). Only such clients share calls (`shared_key`): a call goes with the token of the client that
        # sends it, and a signed-in admin's requests must never go out with the app's token, nor the other way.
        self.credential = credential
        self._base = base_url.rstrip("/")
        self._token = token
        self.retry = retry or RetryPolicy(max_attempts=max_attempts)
        self.budget = budget

    def shared_key(self, *kind: Hashable) -> tuple[Hashable, ...] | None:
        """The key under which this client's one-user requests of `kind` may share calls with other clients' of the
        same tenant and credential (microsoft/coalescing.py); None: this client's requests are sent alone."""
        return None if self.credential is None else (self.credential, self.tenant_id or "", *kind)

    @property
    def base_url(self) -> str:
        return self._base

    async def _send(self, method: str, url: str, headers: dict[str, str], kwargs: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self._token()}", **headers}
        return await send_to_microsoft(self._http, "graph", self.tenant_id, self.budget, method, url,
                                       headers=headers, **kwargs)

    async def request(self, method: str, path: str, *, retry: RetryPolicy | None = None, **kwargs: Any) -> httpx.Response:
        """One Graph call with retries. 404 raises NotFound; other failures UpstreamError."""
        policy = retry or self.retry
        url = path if path.startswith("http") else f"{self._base}{path}"
        extra_headers: dict[str, str] = dict(kwargs.pop("headers", None) or {})
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            response: httpx.Response | None = None
            try:
                response = await self._send(method, url, extra_headers, kwargs)
            except httpx.InvalidURL as exc:  # a value put in the path or query past what a URL may hold
                raise ValidationFailed(f"A value in the request does not fit in a Microsoft Graph URL: {exc}") from None
            except httpx.TransportError as exc:
                failure = UpstreamError(f"Microsoft Graph unreachable ({method} {httpx.URL(url).path}): {exc!r}",
                                        retryable=True)
            else:
                if response.status_code not in RETRYABLE_STATUSES:
                    break
                failure = graph_error(response)
            delay = policy.delay(response, attempt - 1)
            if attempt >= policy.max_attempts or waited + delay > policy.max_total_wait:
                raise gave_up(attempt, failure)
            await wait_before_retry("graph", response.status_code if response is not None else None, delay)
            waited += delay
        if response.status_code == 404:
            raise NotFound(f"Not found in Microsoft 365: {httpx.URL(url).path}")
        if response.status_code >= 400:
            raise graph_error(response)
        return response

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        return (await self.request("GET", path, params=params or None)).json()

    async def get_batched(self, path: str, **params: Any) -> dict[str, Any]:
        """As `get`, possibly sent in one `$batch` with the other requests of this tenant that this process has
        waiting (`batched`). Errors as `get`'s: NotFound, UpstreamError."""
        url = f"{path}?{urlencode(params, safe=_QUERY_SAFE, quote_via=quote)}" if params else path
        return (await self.batched("GET", url)).body  # type: ignore[no-any-return]

    async def batched(self, method: str, url: str, body: Any = None) -> "BatchResponse":
        """One request (`url` relative to the version root, its query in it), possibly sent in one `$batch` with the
        other requests of this tenant and service that this process has waiting (microsoft/coalescing.py: a bulk
        job's items each read their user and its voice state, start its number's assignment and look at that
        operation; up to 20 in one round trip where each was one). A request alone is sent as it is. Answers its
        status, headers (names in lower case), body and the wire time of the call that answered it; raises as
        `request` does (NotFound, UpstreamError). An absolute `url` (a Location Graph answered) goes in a `$batch`
        when it is under this client's version root, else alone."""
        if url.startswith(f"{self._base}/"):
            url = url[len(self._base):]
        alone = url.startswith("http")  # under another root: no $batch of this client can hold it
        member = json.dumps([method.upper(), url, body], separators=(",", ":"))

        async def send(members: list[str]) -> dict[str, Any]:
            wanted = [json.loads(m) for m in members]
            if len(wanted) == 1:
                [(method_, url_, body_)] = wanted
                response = await self.request(method_, url_, **({"json": body_} if body_ is not None else {}))
                return {members[0]: BatchResponse("0", response.status_code, response.json() if response.content else None,
                                                  {k.lower(): v for k, v in response.headers.items()}, wire_seconds(response))}
            requests = [BatchRequest(str(i), m, u, body=b) for i, (m, u, b) in enumerate(wanted)]
            responses = await self.batch(requests)
            return {member_: responses[request.id].error(request) or responses[request.id]
                    for request, member_ in zip(requests, members)}

        # A batch holds requests of one service (Teams or directory): the budget counts it on its first request's lane.
        service, _ = classify(method, f"/v1.0{url}")
        key = None if alone else self.shared_key("batched", service)
        return await COALESCER.join(key, member, send, limit=BATCH_LIMIT)  # type: ignore[no-any-return]

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.request("POST", path, json=body)

    async def patch(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.request("PATCH", path, json=body)

    async def delete(self, path: str) -> httpx.Response:
        return await self.request("DELETE", path)

    async def page_iter(
        self, path: str, *, headers: dict[str, str] | None = None, params: dict[str, Any] | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Each page of a collection, following @odata.nextLink unchanged."""
        response = await self.request("GET", path, params=params or None, headers=headers)
        while True:
            page = response.json()
            yield list(page.get("value", []))
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            response = await self.request("GET", next_link, headers=headers)

    async def pages(self, path: str, *, headers: dict[str, str] | None = None, **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Every item of a collection, across pages."""
        async for page in self.page_iter(path, headers=headers, params=params):
            for item in page:
                yield item

    async def batch(self, requests: Sequence[BatchRequest], *, retry: RetryPolicy | None = None) -> dict[str, BatchResponse]:
        """Runs requests through `POST /$batch` in chunks of 20 and returns each one's response by id.

        Sub-requests answered 429/5xx are sent again (alone, in a later batch) after the longest Retry-After
        among them, within the retry policy's caps; what is still failing then is returned as it is, for the
        caller to turn into errors (`BatchResponse.error`). A sub-request that failed only because a
        dependency did (424) is retried along with that dependency."""
        policy = retry or self.retry
        ids = [r.id.lower() for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("batch request ids must be unique")
        results: dict[str, BatchResponse] = {}
        for start in range(0, len(requests), BATCH_LIMIT):
            chunk = list(requests[start:start + BATCH_LIMIT])
            results.update(await self._batch_chunk(chunk, policy))
        return results

    async def _batch_chunk(self, chunk: list[BatchRequest], policy: RetryPolicy) -> dict[str, BatchResponse]:
        results: dict[str, BatchResponse] = {}
        pending = chunk
        waited = 0.0
        attempt = 0
        while pending:
            attempt += 1
            pending_ids = {r.id for r in pending}
            body = {"requests": [r.wire(keep_dependencies=pending_ids) for r in pending]}
            response = await self.request("POST", "/$batch", json=body, retry=policy)
            answered = {str(item.get("id")): item for item in response.json().get("responses", [])}
            retry_ids: set[str] = set()
            throttled = False
            longest_wait: float | None = None
            for request in pending:
                item = answered.get(request.id)
                if item is None:
                    raise UpstreamError(f"Microsoft Graph $batch returned no response for request '{request.id}'",
                                        retryable=True, status=response.status_code)
                result = BatchResponse(request.id, int(item.get("status", 0)), item.get("body"),
                                       {k.lower(): v for k, v in (item.get("headers") or {}).items()}, wire_seconds(response))
                results[request.id] = result
                if result.status in RETRYABLE_STATUSES:
                    retry_ids.add(request.id)
                    throttled = throttled or result.status == 429
                    after = retry_after_seconds(result.headers)
                    if after is not None:
                        longest_wait = max(longest_wait or 0.0, after)
            if not retry_ids:
                break
            # A 424 only means "my dependency failed": retry it when that dependency is retried.
            changed = True
            while changed:
                changed = False
                for request in pending:
                    if request.id not in retry_ids and results[request.id].status == 424 and set(request.depends_on) & retry_ids:
                        retry_ids.add(request.id)
                        changed = True
            if longest_wait is not None:
                delay = longest_wait + random.uniform(0, min(1.0, longest_wait * 0.1))
            else:
                delay = policy.delay(None, attempt - 1)
            if attempt >= policy.max_attempts or waited + delay > policy.max_total_wait:
                break
            await wait_before_retry("graph", 429 if throttled else 503, delay)
            waited += delay
            pending = [r for r in pending if r.id in retry_ids]
        return results

