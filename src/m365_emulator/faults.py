"""Graph-like throttling and run-time fault injection (emulator-only; configured through /_admin/faults).

Configuration, `PUT /_admin/faults` (replaces the whole configuration; every key optional, absent = off;
`GET` returns it with counters, `DELETE` turns everything off and clears the buckets):

    {
      "latencyMs": 100,                       # added before every request
      "throttle": {                           # token bucket per (appid, tenant) of the caller's token
        "requestsPerSecond": 20,              #   refill rate (units per second)
        "burst": 40,                          #   bucket size
        "costModel": "requests"               #   "requests": every request costs 1; "resourceUnits": Graph's
      },                                      #   identity costs (GET /users 2, /subscribedSkus 3, ...)
      "storm429": {"count": 50, "retryAfterSeconds": 1},   # the next N requests get 429
      "errorRate5xx": 0.05,                   # probability a request fails with a 5xx before doing any work
      "errorStatus": 503,                     # which 5xx (500, 502, 503 or 504); default 503
      "cmdletTimeout": {"cmdlet": "Set-CsPhoneNumberAssignment", "count": 1, "seconds": 5,
                        "afterApply": false}, # the next N invocations of that cmdlet hang `seconds`, then
                                              # answer 504; afterApply=true applies the change first
      "seed": 42,                             # seeds the 5xx and latency draws, so a run is reproducible
      "limits": "microsoft",                  # Microsoft's published budgets (below); "off" disables them
      "profile": "microsoft",                 # realistic latencies (below); "none" (default): latencyMs only
      "numberOperationMs": 1500               # how long a Graph number operation (assignNumber, unassignNumber,
    }                                         # updateNumber) stays notStarted/running before it completes;
                                              # default: 1-3 s with the microsoft profile, else at once

Microsoft's limits, modelled by default (an emulator started with M365_EMULATOR_LIMITS=off, as the test
suite does, defaults to "off"), each answered 429 with Retry-After like Graph: Teams service requests (Graph's
Teams APIs and the cmdlet endpoint) 30 per second per app per tenant and 300 per second per app across
tenants; directory requests by resource units (3,500 / 5,000 / 8,000 per 10 s per app per tenant for tenants
under 50, 50-500, over 500 users; the costs below) and directory writes 3,000 per 2.5 minutes per app per
tenant. The microsoft profile adds what Microsoft's services take: Graph reads 150-400 ms, writes
200-600 ms, cmdlets 1-3 s; Graph's number assignment requests answer 202 like any write (200-600 ms) and
their operation then stays notStarted / running for 1-3 s before it succeeds or fails (polling it is a read).

`GET` also shows `concurrency`: per tenant, the requests in flight now and the most seen at once since
the configuration was last put (what a client's per-tenant concurrency limit must keep under).

Faults apply to Graph (/v1.0/...) and to the cmdlet endpoint (/_powershell/invoke), never to /_admin or
to identity. An injected 429 or 5xx is answered before the request reaches its handler, so nothing was
changed and a retry is safe. Graph answers 429 with `Retry-After` (seconds), `x-ms-throttle-scope` and
`x-ms-throttle-information` and the error code "TooManyRequests"; the cmdlet endpoint answers 429 with
`Retry-After` and {"error": {"errorId": "TooManyRequests", "category": "LimitsExceeded", "message"}}.
Inside a $batch, each request is charged to the budget (and the storm) on its own when the batch
arrives, as Graph runs them in parallel; a refused one is a 429 item (with Retry-After) and its dependants
are 424. Latency and 5xx apply to the $batch call as a whole. An unreadable token is not throttled (it is
a 401 anyway)."""

import asyncio
import functools
import json
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

import jwt
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from . import clock

BATCH_ITEM = "m365_emulator.batch_item"
CMDLET_PATH = "/_powershell/invoke"


class ThrottleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requestsPerSecond: StrictFloat | StrictInt = Field(gt=0)
    burst: StrictInt = Field(ge=1)
    costModel: StrictStr = Field(default="requests", pattern="^(requests|resourceUnits)$")


class StormConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: StrictInt = Field(ge=0)
    retryAfterSeconds: StrictInt = Field(default=1, ge=0, le=3600)


class CmdletTimeoutConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cmdlet: StrictStr = Field(min_length=1)
    count: StrictInt = Field(default=1, ge=0)
    seconds: StrictFloat | StrictInt = Field(default=5, ge=0, le=600)
    afterApply: StrictBool = False


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latencyMs: StrictInt = Field(default=0, ge=0, le=60000)
    throttle: ThrottleConfig | None = None
    storm429: StormConfig | None = None
    errorRate5xx: StrictFloat | StrictInt = Field(default=0, ge=0, le=1)
    errorStatus: Literal[500, 502, 503, 504] = 503
    cmdletTimeout: CmdletTimeoutConfig | None = None
    seed: StrictInt | None = None
    limits: Literal["microsoft", "off"] | None = None  # None: the emulator's default (microsoft unless started "off")
    profile: Literal["none", "microsoft"] = "none"
    numberOperationMs: StrictInt | None = Field(default=None, ge=0, le=600000)


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class Faults:
    """The live configuration, its counters and the throttle buckets."""

    default_limits: str = "microsoft"
    tenant_size: Callable[[str], int] = lambda _tenant: 0
    now: Callable[[], float] = time.monotonic  # the budgets' clock (tests pass a still one)
    config: FaultConfig = field(default_factory=FaultConfig)
    storm_remaining: int = 0
    timeouts_remaining: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)
    _limit_buckets: dict[tuple[str, ...], _Bucket] = field(default_factory=dict)
    _sizes: dict[str, tuple[int, float]] = field(default_factory=dict)  # tenant -> (users, when counted)
    in_flight: dict[str, int] = field(default_factory=dict)  # requests being served, per tenant
    max_in_flight: dict[str, int] = field(default_factory=dict)  # the most seen at once since configured
    _random: random.Random = field(default_factory=random.Random)

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self.storm_remaining = config.storm429.count if config.storm429 else 0
        self.timeouts_remaining = config.cmdletTimeout.count if config.cmdletTimeout else 0
        self.injected = {"latency": 0, "throttled": 0, "storm429": 0, "serverErrors": 0, "cmdletTimeouts": 0}
        self._buckets = {}
        self._limit_buckets = {}
        self._random = random.Random(config.seed)
        self.max_in_flight = dict(self.in_flight)

    def reset(self) -> None:
        self.configure(FaultConfig())

    def view(self) -> dict[str, Any]:
        return {
            "config": {**self.config.model_dump(exclude_none=True), "limits": self.limits},
            "remaining": {"storm429": self.storm_remaining, "cmdletTimeout": self.timeouts_remaining},
            "injected": dict(self.injected),
            "concurrency": {tenant: {"inFlight": self.in_flight.get(tenant, 0), "max": most}
                            for tenant, most in self.max_in_flight.items()},
        }

    def enter(self, tenant_id: str) -> None:
        now = self.in_flight[tenant_id] = self.in_flight.get(tenant_id, 0) + 1
        self.max_in_flight[tenant_id] = max(now, self.max_in_flight.get(tenant_id, 0))

    def leave(self, tenant_id: str) -> None:
        self.in_flight[tenant_id] -= 1

    def _count(self, name: str) -> None:
        self.injected[name] = self.injected.get(name, 0) + 1

    # --- decisions ---

    def server_error(self) -> bool:
        if self.config.errorRate5xx and self._random.random() < self.config.errorRate5xx:
            self._count("serverErrors")
            return True
        return False

    def storm(self) -> int | None:
        if self.storm_remaining > 0 and self.config.storm429 is not None:
            self.storm_remaining -= 1
            self._count("storm429")
            return self.config.storm429.retryAfterSeconds
        return None

    def throttle(self, app_id: str, tenant_id: str, cost: int) -> int | None:
        """None when admitted, else the seconds to wait."""
        settings = self.config.throttle
        if settings is None:
            return None
        now = self.now()
        bucket = self._buckets.setdefault((app_id, tenant_id), _Bucket(float(settings.burst), now))
        bucket.tokens = min(float(settings.burst), bucket.tokens + (now - bucket.updated) * settings.requestsPerSecond)
        bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return None
        self._count("throttled")
        return max(1, math.ceil((cost - bucket.tokens) / settings.requestsPerSecond))

    def admit(self, app_id: str, tenant_id: str, method: str, path: str, query: str) -> int | None:
        """A storm 429 or the throttle budget: None when admitted, else the Retry-After seconds."""
        retry_after = self.storm()
        if retry_after is None:
            model = self.config.throttle.costModel if self.config.throttle else "requests"
            retry_after = self.throttle(app_id, tenant_id, request_cost(method, path, query, model))
        if retry_after is None and self.limits == "microsoft":
            retry_after = self.microsoft_limits(app_id, tenant_id, method, path, query)
        return retry_after

    @property
    def limits(self) -> str:
        return self.config.limits or self.default_limits

    def microsoft_limits(self, app_id: str, tenant_id: str, method: str, path: str, query: str) -> int | None:
        """Microsoft's published budgets (Graph throttling documentation): Teams service requests per app per
        tenant and per app across tenants; directory resource units per app per tenant by tenant size, and
        directory writes per app per tenant. None when admitted, else the Retry-After seconds."""
        now = self.now()
        if is_teams_request(path):
            wanted = [(("teams", app_id, tenant_id), TEAMS_PER_TENANT_PER_SECOND, TEAMS_PER_TENANT_PER_SECOND, 1),
                      (("teams", app_id), TEAMS_PER_APP_PER_SECOND, TEAMS_PER_APP_PER_SECOND, 1)]
        else:
            units = directory_units_per_10s(self._tenant_users(tenant_id, now))
            wanted = [(("directory", app_id, tenant_id), units / 10, units,
                       request_cost(method, path, query, "resourceUnits"))]
            if method != "GET":
                wanted.append((("writes", app_id, tenant_id), DIRECTORY_WRITES / DIRECTORY_WRITES_PERIOD,
                               DIRECTORY_WRITES, 1))
        buckets = []
        for key, rate, capacity, cost in wanted:
            bucket = self._limit_buckets.setdefault(key, _Bucket(float(capacity), now))
            bucket.tokens = min(float(capacity), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens < cost:
                self._count("throttled")
                return max(1, math.ceil((cost - bucket.tokens) / rate))
            buckets.append((bucket, cost))
        for bucket, cost in buckets:  # admitted only when every budget it draws on has room
            bucket.tokens -= cost
        return None

    def _tenant_users(self, tenant_id: str, now: float) -> int:
        cached = self._sizes.get(tenant_id)
        if cached is None or now - cached[1] > 60:  # tenant sizes change slowly: count at most once a minute
            cached = self._sizes[tenant_id] = (self.tenant_size(tenant_id), now)
        return cached[0]

    def latency_seconds(self, method: str, path: str) -> float:
        """The added latency: `latencyMs`, plus with the microsoft profile a draw from what Microsoft's
        services take (Graph reads 150-400 ms, writes 200-600 ms, cmdlets 1-3 s). A number operation's own
        duration is `number_operation_seconds`: its requests are ordinary Graph reads and writes."""
        seconds = self.config.latencyMs / 1000
        if self.config.profile == "microsoft":
            if path == CMDLET_PATH:
                low, high = 1.0, 3.0
            elif method == "GET":
                low, high = 0.15, 0.4
            else:
                low, high = 0.2, 0.6
            seconds += self._random.uniform(low, high)
        return seconds

    def number_operation_seconds(self) -> float:
        """How long the next Graph number operation runs before completing: `numberOperationMs` when set,
        else 1-3 s with the microsoft profile, else 0 (completed when accepted)."""
        if self.config.numberOperationMs is not None:
            return self.config.numberOperationMs / 1000
        if self.config.profile == "microsoft":
            return self._random.uniform(1.0, 3.0)
        return 0.0

    def take_cmdlet_timeout(self, cmdlet: str) -> tuple[float, bool] | None:
        settings = self.config.cmdletTimeout
        if settings is None or self.timeouts_remaining <= 0 or settings.cmdlet.lower() != cmdlet.lower():
            return None
        self.timeouts_remaining -= 1
        self._count("cmdletTimeouts")
        return float(settings.seconds), settings.afterApply


# --- Microsoft's published limits (learn.microsoft.com/graph/throttling-limits) ----------------------------

TEAMS_PER_TENANT_PER_SECOND = 30  # Teams service: requests per second per app per tenant
TEAMS_PER_APP_PER_SECOND = 300  # ... and per app across all tenants
DIRECTORY_WRITES, DIRECTORY_WRITES_PERIOD = 3000, 150.0  # directory writes per 2.5 minutes per app per tenant
_TEAMS_PREFIXES = ("/v1.0/admin/teams", "/v1.0/teams", "/v1.0/appCatalogs", "/v1.0/chats")


def is_teams_request(path: str) -> bool:
    """Teams service (Graph's Teams APIs and the Teams PowerShell endpoint) rather than the directory."""
    return path == CMDLET_PATH or path.startswith(_TEAMS_PREFIXES) or "/teamwork" in path


def directory_units_per_10s(users: int) -> int:
    """Resource units per 10 seconds per app per tenant, by tenant size."""
    return 3500 if users < 50 else 5000 if users <= 500 else 8000


# --- costs (Graph identity and access service, base costs and modifiers) ------------------------------

_READ_COSTS = (("/v1.0/users", 2), ("/v1.0/subscribedSkus", 3), ("/v1.0/applications", 2))


def request_cost(method: str, path: str, query: str, model: str) -> int:
    if model == "requests" or method != "GET":
        return 1
    segments = path.rstrip("/").split("/")
    cost = next((c for p, c in _READ_COSTS if path.rstrip("/") == p), 1)
    if len(segments) == 5 and segments[2] == "groups" and segments[4] in ("members",):
        cost = 3
    if len(segments) == 5 and segments[2] == "groups" and segments[4] == "transitiveMembers":
        cost = 5
    if len(segments) == 5 and segments[2] == "users" and segments[4] in ("memberOf", "licenseDetails"):
        cost = 2
    options = parse_qs(query)
    if "$select" in options:
        cost -= 1
    if "$expand" in options:
        cost += 1
    top = options.get("$top", [""])[0]
    if top.isascii() and top.isdigit() and len(top) <= 3 and int(top) < 20:  # ("²" isdigit; int refuses it)
        cost -= 1
    return max(cost, 1)


# --- the ASGI middleware -----------------------------------------------------------------------------


def _caller(headers: list[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """(appid, tid) of the bearer token, read without verification: the handler still verifies it, and an
    unreadable token is not throttled (it will be a 401)."""
    for key, value in headers:
        if key.lower() == b"authorization" and value[:7].lower() == b"bearer ":
            return _caller_of(value[7:])
    return None


@functools.lru_cache(maxsize=4096)
def _caller_of(token: bytes) -> tuple[str, str] | None:
    """`_caller` of one token, remembered: a client sends the same token for an hour (decoding it on every
    request was a tenth of the emulator's CPU per Graph read)."""
    try:
        claims = jwt.decode(token.decode().strip(), options={"verify_signature": False})
    except (jwt.InvalidTokenError, UnicodeDecodeError):
        return None
    if isinstance(claims.get("tid"), str):
        return str(claims.get("appid") or claims.get("azp") or ""), claims["tid"]
    return None


def _client_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == b"client-request-id"), None)


_GRAPH_5XX = {500: ("generalException", "An unexpected error occurred."),
              502: ("badGateway", "Bad gateway."),
              503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
              504: ("gatewayTimeout", "The gateway timed out.")}


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def _refuse(scope: dict[str, Any], send: Any, status: int, code: str, message: str, headers: dict[str, str]) -> None:
    if scope["path"] == CMDLET_PATH:
        category = "LimitsExceeded" if status == 429 else "ResourceUnavailable"
        await _send_json(send, status, {"error": {"errorId": code, "category": category, "message": message}}, headers)
        return
    request_id = str(uuid.uuid4())
    client_request_id = _client_request_id(scope["headers"]) or request_id
    body = {"error": {"code": code, "message": message,
                      "innerError": {"date": clock.iso_now(), "request-id": request_id, "client-request-id": client_request_id}}}
    await _send_json(send, status, body, {**headers, "request-id": request_id, "client-request-id": client_request_id})


class FaultMiddleware:
    def __init__(self, app: Any, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not (scope["path"].startswith("/v1.0/") or scope["path"] == CMDLET_PATH):
            await self.app(scope, receive, send)
            return
        caller = None if scope.get(BATCH_ITEM) else _caller(scope["headers"])
        if caller is None:
            await self._serve(scope, receive, send, None)
            return
        self.faults.enter(caller[1])  # the concurrency a tenant sees, latency included
        try:
            await self._serve(scope, receive, send, caller)
        finally:
            self.faults.leave(caller[1])

    async def _serve(self, scope: dict[str, Any], receive: Any, send: Any, caller: tuple[str, str] | None) -> None:
        faults, config = self.faults, self.faults.config
        is_item = bool(scope.get(BATCH_ITEM))
        is_batch = scope["path"] == "/v1.0/$batch"
        if not is_item:
            delay = faults.latency_seconds(scope["method"], scope["path"])
            if delay:
                faults._count("latency")
                await asyncio.sleep(delay)
            if faults.server_error():
                code, message = _GRAPH_5XX[config.errorStatus]
                await _refuse(scope, send, config.errorStatus, code if scope["path"] != CMDLET_PATH else "ServiceUnavailable", message, {})
                return
        # $batch items were admitted (or refused) by the batch handler when the batch arrived.
        if not is_batch and not is_item and caller is not None:
            retry_after = faults.admit(caller[0], caller[1], scope["method"], scope["path"],
                                       scope.get("query_string", b"").decode("latin-1"))
            if retry_after is not None:
                await _refuse(scope, send, 429, "TooManyRequests", throttled_message(retry_after),
                              throttled_headers(retry_after, *caller))
                return
        await self.app(scope, receive, send)


def throttled_message(retry_after: int) -> str:
    return (
        "Too many requests. The application has exceeded its request budget for this tenant; retry after "
        f"{retry_after} seconds."
    )


def throttled_headers(retry_after: int, app_id: str, tenant_id: str) -> dict[str, str]:
    return {
        "Retry-After": str(retry_after),
        "x-ms-throttle-scope": f"Tenant_Application/ReadWrite/{app_id}/{tenant_id}",
        "x-ms-throttle-information": "ResourceUnitLimitExceeded",
    }
