"""Prometheus metrics for /metrics: request counts and latencies by route template (not raw path, so
ids and UPNs never become label values); Microsoft requests and retry waits (recorded by the Graph
client and the cmdlet runners); durable-job figures (recorded by the workflows).

Each process keeps its own figures: API processes serve them on /metrics, a worker process with
`start_metrics_server`. Prometheus sums the counters over processes.
"""

import time
from typing import Literal

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import start_http_server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry()
REQUESTS = Counter("teamsvoice_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("teamsvoice_http_request_seconds", "HTTP request latency", ["method", "route"], registry=REGISTRY)

MICROSOFT_REQUESTS = Counter(
    "teamsvoice_microsoft_requests_total",
    "Requests sent to Microsoft, by service (graph, cmdlets, pwsh), tenant and HTTP status (or 'unreachable', "
    "'ok'/'error'/'timeout' for pwsh runs)",
    ["service", "tenant", "status"], registry=REGISTRY,
)
MICROSOFT_WAITS = Counter(
    "teamsvoice_microsoft_retry_waits_total",
    "Waits before retrying a Microsoft request, by reason: throttled (429, honouring Retry-After), "
    "server_error (5xx), unreachable (network, timeout)",
    ["service", "reason"], registry=REGISTRY,
)
MICROSOFT_WAIT_SECONDS = Counter(
    "teamsvoice_microsoft_retry_wait_seconds_total", "Seconds spent waiting before retrying Microsoft requests",
    ["service", "reason"], registry=REGISTRY,
)
BULK_ITEMS = Counter(
    "teamsvoice_bulk_items_total", "Bulk job items reaching a status (pending, running, waiting, success, error, cancelled)",
    ["status"], registry=REGISTRY,
)
JOB_RETRIES = Counter(
    "teamsvoice_job_retries_total", "Durable job steps retried after a transient failure", ["workflow"], registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "teamsvoice_job_queue_depth", "Durable work waiting in a queue, as last measured", ["queue"], registry=REGISTRY,
)

WaitReason = Literal["throttled", "server_error", "unreachable"]


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/enterprise/{enterpriseId}`), or "unmatched"."""
    return getattr(scope.get("route"), "path", "unmatched")


class RequestMetrics:
    """Counts requests and their latency by method, route template and status. Pure ASGI (no per-request
    task or body re-streaming as with an `@app.middleware("http")` function)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = route_template(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


def record_microsoft_request(service: str, tenant_id: str | None, status: int | str) -> None:
    MICROSOFT_REQUESTS.labels(service, (tenant_id or "unknown").lower(), str(status)).inc()


def wait_reason(status: int | None) -> WaitReason:
    """Why a retry waits: the status of the failed response, None when none came back."""
    if status is None:
        return "unreachable"
    return "throttled" if status == 429 else "server_error"


def record_microsoft_wait(service: str, reason: WaitReason, seconds: float) -> None:
    MICROSOFT_WAITS.labels(service, reason).inc()
    MICROSOFT_WAIT_SECONDS.labels(service, reason).inc(seconds)


def record_bulk_item(status: str) -> None:
    """Call when a bulk item enters `status` (a small fixed set: it becomes a label value)."""
    BULK_ITEMS.labels(status).inc()


def record_job_retry(workflow: str) -> None:
    """Call when a job step is retried after a transient failure; `workflow` is the workflow's name."""
    JOB_RETRIES.labels(workflow).inc()


def set_queue_depth(queue: str, depth: int) -> None:
    """Call with the number of entries waiting in `queue` whenever it is measured."""
    QUEUE_DEPTH.labels(queue).set(depth)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    """Serves this registry at http://host:port/metrics from a daemon thread (for processes without the API)."""
    start_http_server(port, addr=host, registry=REGISTRY)


def metrics_response() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
