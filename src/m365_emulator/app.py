"""The emulator's ASGI application: Entra ID endpoints, Graph v1.0, the PowerShell stand-in and /_admin."""

from starlette.requests import ClientDisconnect
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import admin, powershell
from .context import Emulator
from .faults import CMDLET_PATH, FaultMiddleware, Faults
from .graph import apps as graph_apps
from .graph import batch as graph_batch
from .graph import directory as graph_directory
from .graph import teams as graph_teams
from .graph.errors import GraphError, graph_error_response
from .identity import authorize, discovery, token
from .identity.keys import SigningKey
from .settings import EmulatorSettings
from .store import Store


def create_app(settings: EmulatorSettings) -> FastAPI:
    store = Store(settings.database_path)
    app = FastAPI(
        title="Microsoft 365 emulator",
        description="Entra ID v2, a Microsoft Graph v1.0 subset and Teams voice administration, for development "
        "and tests. /_admin and /_powershell are the emulator's own endpoints.",
        docs_url="/_admin/docs",
        openapi_url="/_admin/openapi.json",
        redoc_url=None,
    )
    faults = Faults(default_limits="off" if settings.limits == "off" else "microsoft", tenant_size=store.user_count)
    faults.reset()
    app.state.emulator = Emulator(settings=settings, store=store, keys=SigningKey(store), faults=faults)
    app.add_middleware(FaultMiddleware, faults=faults)
    # A request is matched against the routes in this order, one by one (a $batch's sub-requests too): the Graph
    # routes a bulk job calls most come first, Teams' (no path shared with the directory's), then the directory's.
    app.include_router(graph_teams.router)
    app.include_router(graph_directory.router)
    app.include_router(graph_batch.router)
    app.include_router(discovery.router)
    app.include_router(authorize.router)
    app.include_router(token.router)
    app.include_router(graph_apps.router)
    app.include_router(powershell.router)
    app.include_router(admin.router)
    _install_error_handlers(app)
    return app


def _is_graph(request: Request) -> bool:
    return request.url.path.startswith("/v1.0/")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The caller left (its process stopped) before its body arrived: nothing to answer, nothing to log.
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # A defect: answered in the surface's own error format, as Microsoft answers its own failures (a
        # client reads Graph's envelope, not Starlette's text/plain). Starlette raises it again once answered,
        # so the server logs its traceback. (A $batch's request failing so is a 500 inside the batch.)
        if _is_graph(request):
            return graph_error_response(request, 500, "InternalServerError", "An unexpected error occurred.")
        if request.url.path == CMDLET_PATH:
            return JSONResponse({"error": {"errorId": "InternalServerError", "category": "NotSpecified",
                                           "message": "An unexpected error occurred."}}, status_code=500)
        return PlainTextResponse("Internal Server Error", status_code=500)

    @app.exception_handler(GraphError)
    async def graph_error(request: Request, exc: GraphError) -> JSONResponse:
        return graph_error_response(request, exc.status_code, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = f"{field}: {first.get('msg', 'invalid value')}" if field else str(first.get("msg", "invalid request"))
        if _is_graph(request):
            return graph_error_response(request, 400, "Request_BadRequest", message)
        return JSONResponse({"error": {"code": "ValidationError", "message": message}}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if _is_graph(request):
            if exc.status_code == 404:
                return graph_error_response(
                    request, 400, "BadRequest", f"Resource not found for the segment '{request.url.path.rsplit('/', 1)[-1]}'."
                )
            if exc.status_code == 405:
                return graph_error_response(
                    request, 405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
                )
            return graph_error_response(request, exc.status_code, "UnknownError", str(exc.detail))
        return JSONResponse({"error": {"code": "HttpError", "message": str(exc.detail)}}, status_code=exc.status_code)
