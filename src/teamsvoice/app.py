"""The FastAPI application: both API families on one domain."""

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from sqlalchemy.exc import DataError, IntegrityError
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from teamsvoice import __version__, console
from teamsvoice.api import connecttoteams, docs, fusion, routing
from teamsvoice.api import teamsvoice as teamsvoice_api
from teamsvoice.api.connecttoteams import restricted
from teamsvoice.api.fusion import errors as fusion_errors
from teamsvoice.api.forwarded import ForwardedClient
from teamsvoice.api.stopping import ServerStopping
from teamsvoice.api.limits import RequestLimits
from teamsvoice.api.paths import EncodedSlashes, SingleSlashes
from teamsvoice.api.security_headers import SecurityHeaders
from teamsvoice.api.too_many import render_too_many
from teamsvoice.api.connecttoteams.errors import describe_validation_error, render_domain_error, spring_error
from teamsvoice.container import Container
from teamsvoice.core.db import DATABASE_BUSY, is_transient_database_error
from teamsvoice.core.errors import Conflict, DomainError, TooManyRequests, ValidationFailed
from teamsvoice.core.logging import RequestLogMiddleware
from teamsvoice.core.metrics import RequestMetrics, metrics_response
from teamsvoice.jobs.runtime import Role, resume_orphaned_work, start_jobs, stop_jobs
from teamsvoice.settings import Settings


def _is_browser_route(request: Request) -> bool:
    return request.url.path.startswith("/restricted/")


UNAVAILABLE_RETRY_AFTER_SECONDS = 5  # a restarting PostgreSQL, a database locked for a moment, a server stopping


def _is_fusion_route(request: Request) -> bool:
    return request.url.path.startswith(fusion.PREFIX)


def _render_domain_error(request: Request, exc: DomainError) -> Response:
    if console.is_console_route(request):
        return console.render_error(request, exc)
    if _is_browser_route(request):
        return restricted.page("Sign-in answer rejected", exc.message, status=400)
    if _is_fusion_route(request):
        return fusion_errors.render_domain_error(exc)
    return render_domain_error(request, exc)


def describe_data_error(exc: DataError) -> str:
    detail = str(exc.orig or exc).lower()
    if "nul (0x00)" in detail:
        return "Text values must not contain NUL (\\u0000) characters"
    if "out of range" in detail:
        return "A number in the request is out of range"
    return "A value in the request cannot be stored"


def describe_integrity_error(exc: IntegrityError) -> str:
    """A constraint the request's write broke, said plainly. Routes check before they write (a name taken is a
    400 or 409 of their own); what reaches here is a write that lost a race with another request's."""
    detail = str(exc.orig or exc)
    lowered = detail.lower()
    if "unique" in lowered or "duplicate key" in lowered:
        key = re.search(r"Key \(([^)]*)\)", detail) or re.search(r"UNIQUE constraint failed: (.*)", detail)
        what = f" ({key.group(1).strip()[:200]})" if key else ""
        return f"Already exists: another request wrote the same unique value{what} at the same moment; read it, or try again"
    if "foreign key" in lowered:
        if (exc.statement or "").lstrip().upper().startswith("DELETE"):
            return "It is still referred to by other records (written at the same moment, perhaps); remove those first"
        return "Something the request refers to does not exist (or was deleted at the same moment)"
    if "not null" in lowered:
        return "A required value is missing"
    return "The request conflicts with data written at the same moment; try again"


def create_app(settings: Settings, *, jobs_role: Role | None = "all") -> FastAPI:
    """`jobs_role`: "all" runs the job engine here (embedded default, tests), "api" only enqueues for
    worker processes, None starts no job engine."""
    container = Container.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if jobs_role is not None:
            await anyio.to_thread.run_sync(lambda: start_jobs(settings, container.keyring, role=jobs_role))
            await anyio.to_thread.run_sync(resume_orphaned_work)
        try:
            yield
        finally:
            if jobs_role is not None:
                await anyio.to_thread.run_sync(stop_jobs)
            await container.aclose()

    app = FastAPI(
        title="teamsvoice",
        version=__version__,
        description="Control plane for Microsoft Teams calling: ConnecttoTeams- and Fusion-compatible APIs.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served by api/docs.py with the package's own assets (no CDN)
    )
    app.state.container = container

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        return _render_domain_error(request, exc)

    app.add_exception_handler(TooManyRequests, render_too_many)  # type: ignore[arg-type]

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> Response:
        # Values the database cannot hold (PostgreSQL: NUL in text, integers beyond its column types) are
        # the request's fault; SQLite stores them, so this is where both backends answer alike.
        return _render_domain_error(request, ValidationFailed(describe_data_error(exc)))

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError) -> Response:
        # Two identical creates at once: both checked, found nothing, and inserted; the second's insert is refused.
        return _render_domain_error(request, Conflict(describe_integrity_error(exc)))

    @app.exception_handler(OverflowError)
    async def overflow_error(request: Request, exc: OverflowError) -> Response:
        # SQLite's driver refuses an integer past 64 bits (a path or query id) itself, not as a DataError.
        return _render_domain_error(request, ValidationFailed("A number in the request is out of range (64-bit signed)"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if console.is_console_route(request):  # a page for a person (an id in the address that is no number, say)
            return console.render_message(request, describe_validation_error(exc), status=400)
        if _is_fusion_route(request):
            return fusion_errors.fusion_error(400, fusion_errors.INVALID_REQUEST, describe_validation_error(exc))
        return spring_error(request, 400, describe_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if console.is_console_route(request):  # a page for a person: an address the console has no page at, say
            message = "The console has no page at this address" if exc.status_code == 404 else str(exc.detail)
            return console.render_message(request, message, status=exc.status_code)
        if _is_fusion_route(request):
            return fusion_errors.fusion_error(exc.status_code, fusion_errors.code_for_status(exc.status_code), str(exc.detail))
        return spring_error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        if is_transient_database_error(exc):  # the database down or restarting: worth trying again, not a defect
            return database_unavailable(request, exc)
        # Never a bare 500 page: a stable body, and the details in the server log only.
        logging.getLogger("teamsvoice").exception("Unhandled error on %s", request.url.path)
        if console.is_console_route(request):  # a page for a person, as its other errors are
            return console.render_message(request, "Something went wrong on our side; it has been logged.", status=500)
        if _is_fusion_route(request):
            return fusion_errors.fusion_error(500, fusion_errors.INTERNAL, "Internal error; it has been logged")
        return spring_error(request, 500, "Internal error; it has been logged")

    def database_unavailable(request: Request, exc: Exception) -> Response:
        """The database stopped or restarting, a deadlock lost, a lock or pool timeout. It was a 500 "Internal error",
        which tells a client and a load balancer that the request itself is at fault."""
        logging.getLogger("teamsvoice").warning("the database did not answer on %s: %s", request.url.path,
                                                str(exc).splitlines()[0][:300])
        return unavailable(request, DATABASE_BUSY, fusion_errors.DATABASE_BUSY)

    @app.exception_handler(ServerStopping)
    async def server_stopping(request: Request, exc: ServerStopping) -> Response:
        # The server is stopping while the request runs (api/stopping.py): a wait on its job, or work done inline.
        # uvicorn's own answer was a bare 500, for work that went on or could simply be sent again: the answer says
        # which (and a job's Location).
        logging.getLogger("teamsvoice").warning("stopping: %s %s answered before its work ended: %s", request.method,
                                                request.url.path, exc.message)
        return unavailable(request, exc.message, fusion_errors.STOPPED_WAITING, exc.headers)

    def unavailable(request: Request, reason: str, fusion_code: int, headers: dict[str, str] | None = None) -> Response:
        """503 with Retry-After in the family's envelope: the request was not answered as asked, for a reason of the
        server's that passes (`reason` says what; Fusion's `fusion_code` names it)."""
        if console.is_console_route(request):
            response: Response = console.render_message(request, reason, status=503)
        elif _is_fusion_route(request):
            response = fusion_errors.fusion_error(503, fusion_code, reason)
        else:
            response = spring_error(request, 503, reason)
        response.headers.update({"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS), **(headers or {})})
        return response

    for router in [*connecttoteams.ROUTERS, *fusion.ROUTERS, *teamsvoice_api.ROUTERS]:
        assert isinstance(router, routing.APIRouter), router  # a path none of its routes matches is turned away at once
        app.include_router(router)  # without a prefix: see api/routing.py
    console.install(app)  # the provider console at /console (HTML pages, its own static assets)
    docs.install(app)  # /docs, /redoc and the completed OpenAPI document

    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_request_body_bytes,  # see api/limits.py
                       max_bulk_body_bytes=settings.max_bulk_request_body_bytes, render_unexpected=unexpected)
    app.add_middleware(EncodedSlashes)  # a %2F in a path segment: a 400 before a rule by route reads it (api/paths.py)
    app.add_middleware(SecurityHeaders, settings=settings)  # headers on every answer; /metrics access
    if settings.cors_allowed_origins:  # a browser portal on another origin (Fusion's self-care portal)
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_allowed_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           # Prefer: Fusion bulk's `Prefer: respond-async` (a 202 naming the job)
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Prefer"],
                           # Location: where a 202's job (or a 201's new object, a 503's job) is read from
                           expose_headers=["X-Request-ID", "Retry-After", "Location"], max_age=600)
    app.add_middleware(RequestLogMiddleware)  # request id and access line for every answer
    app.add_middleware(ForwardedClient, settings=settings)  # who the client is, for every rule below (api/forwarded.py)
    app.add_middleware(SingleSlashes)  # outermost of all: every rule below sees the path the routes match (api/paths.py)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return metrics_response()

    @app.get("/health", tags=["operations"], summary="Liveness")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app
